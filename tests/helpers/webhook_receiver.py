"""A webhook receiver on 127.0.0.1 for the notification tests: it records every POST
(headers and JSON body) and answers from a script of statuses (then 200), as a Slack-like
incoming webhook would. `accepted()` is what the receiver took (2xx answers): what a
person would see in the channel."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)
    """Answers to the next POSTs, in order; 200 once used up."""
    posts: list[Post] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self, event: str | None = None) -> list[Post]:
        with self.lock:
            return [
                p
                for p in self.posts
                if 200 <= p.status < 300 and (event is None or p.body.get("event") == event)
            ]


@contextmanager
def webhook_receiver(path: str = "/services/T0000/B0000/s3cr3tT0ken") -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with receiver.lock:
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.posts.append(Post(self.path, dict(self.headers.items()), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}{path}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
