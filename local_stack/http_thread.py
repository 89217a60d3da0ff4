"""The shape the local stack's plain-HTTP stand-ins share (the chart repository, the image
registry): a threading HTTP server on 127.0.0.1, served from a daemon thread of the process
that owns it, stopped by `stop()` (or leaving a `with` block)."""

from __future__ import annotations

import http.server
import threading
from typing import Any, Self

from local_stack.processes import LOOPBACK


class LoopbackHttpServer:
    """Base of a stand-in served over HTTP on 127.0.0.1 (`port` 0: a free one)."""

    def _bind(self, handler: Any, port: int, name: str) -> None:
        self._server = http.server.ThreadingHTTPServer((LOOPBACK, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    def _run(self) -> Self:
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
