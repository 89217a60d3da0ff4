"""The worker's health endpoint (#23.7): a small stdlib HTTP server for the kubelet's probes.

    TEMPORAL_BOOTSTRAP_HEALTH_PORT=8080            # 0.0.0.0:8080 (a pod's probes reach it)
    TEMPORAL_BOOTSTRAP_HEALTH_PORT=127.0.0.1:0     # loopback, a free port (tests, a laptop)

- `GET /livez`: 200 while the worker's event loop runs (a task on the loop stamps the time
  every second; the answer is 503 once the stamp is older than `STALL_AFTER`). A blocked or
  dead loop takes every run's workflow tasks and heartbeats with it, so this is what the
  liveness probe restarts the pod for.
- `GET /readyz`: 200 while the worker polls its task queue (the SDK worker is running) and
  its Temporal server answered the last health check (`check_health`, every
  `CHECK_EVERY`) within `STALE_AFTER`; 503 with the reason otherwise. A worker that lost its
  server is not restarted for that (the SDK reconnects by itself); it is only shown unready.
- Anything else: 404. The body is one line of text; nothing in it comes from a run.

It answers from a thread of its own (`ThreadingHTTPServer`), so a stalled event loop cannot
stall the probe that reports it. Unset: no endpoint. It is separate from any Prometheus
metrics port on purpose (kept small and dependency-free); the two could share one port later
by serving these paths from the metrics server.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEALTH_PORT_VARIABLE = "TEMPORAL_BOOTSTRAP_HEALTH_PORT"
CHECK_EVERY = 10.0
"""Seconds between two health checks of the Temporal server."""
STALE_AFTER = 35.0
"""Seconds after the last good check before the worker reports unready."""
STALL_AFTER = 30.0
"""Seconds without an event-loop stamp before the worker reports not alive."""

log = logging.getLogger("temporal-bootstrap.health")


class HealthSettingError(ValueError):
    """TEMPORAL_BOOTSTRAP_HEALTH_PORT is not `[HOST:]PORT`; the message is one line."""


def parse_listen(value: str) -> tuple[str, int]:
    """`8080` -> ("0.0.0.0", 8080); `127.0.0.1:0` -> ("127.0.0.1", 0)."""
    host, _, port = value.strip().rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise HealthSettingError(
            f"{HEALTH_PORT_VARIABLE}={value!r}: expected [HOST:]PORT with a port from 0 to 65535"
        )
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass
class HealthState:
    """What the probes read; written by the worker's event loop, read by the HTTP thread."""

    loop_stamp: float = 0.0
    server_ok_at: float | None = None
    server_error: str = "not checked yet"
    polling: bool = False

    def alive(self, now: float) -> tuple[bool, str]:
        age = now - self.loop_stamp
        if age > STALL_AFTER:
            return False, f"event loop stalled: no stamp for {age:.0f} s"
        return True, "event loop running"

    def ready(self, now: float) -> tuple[bool, str]:
        if not self.polling:
            return False, "not polling its task queue"
        if self.server_ok_at is None or now - self.server_ok_at > STALE_AFTER:
            return False, f"Temporal server not answering: {self.server_error}"
        return True, "polling, Temporal server answering"


class _Handler(BaseHTTPRequestHandler):
    state: HealthState  # set on the subclass the endpoint builds

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        checks: Mapping[str, Callable[[float], tuple[bool, str]]] = {
            "/livez": self.state.alive,
            "/readyz": self.state.ready,
        }
        check = checks.get(self.path.split("?", 1)[0])
        ok, text = check(time.monotonic()) if check else (False, "not found")
        body = (text + "\n").encode()
        self.send_response(200 if ok else 404 if check is None else 503)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a probe every few seconds would drown the worker's log


class HealthEndpoint:
    """The HTTP server and the event-loop task that keeps `state` current."""

    def __init__(self, host: str, port: int) -> None:
        self.state = HealthState(loop_stamp=time.monotonic())
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-endpoint", daemon=True
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HealthEndpoint:
        self._thread.start()
        self._tasks.append(asyncio.get_running_loop().create_task(self._stamp()))
        return self

    def watch(self, check_server: Callable[[], Awaitable[object]]) -> None:
        """Check the Temporal server every CHECK_EVERY seconds from now on."""
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._check_server(check_server)))

    async def _stamp(self) -> None:
        while True:
            self.state.loop_stamp = time.monotonic()
            await asyncio.sleep(1)

    async def _check_server(self, check_server: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await asyncio.wait_for(check_server(), timeout=CHECK_EVERY)
            except Exception as exc:  # any failure means "not answering"; said in the probe
                self.state.server_error = " ".join(str(exc).split())[:200] or type(exc).__name__
            else:
                self.state.server_ok_at = time.monotonic()
            await asyncio.sleep(CHECK_EVERY)

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._server.shutdown()
        self._server.server_close()


def start_from_environment(environ: Mapping[str, str]) -> HealthEndpoint | None:
    """The endpoint TEMPORAL_BOOTSTRAP_HEALTH_PORT asks for, started; None when unset.
    Raises HealthSettingError, or OSError when the port cannot be bound."""
    value = environ.get(HEALTH_PORT_VARIABLE, "").strip()
    if not value:
        return None
    host, port = parse_listen(value)
    return HealthEndpoint(host, port).start()
