"""Subprocesses of the local stack, always stopped by PID (process group).

The PID, port and process-group helpers are the product's (adapters/processes.py, which
the embedded bootstrap server needs too); they are re-exported here for the stack's users.
"""

from __future__ import annotations

import atexit
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from adapters.processes import (
    LOOPBACK,
    free_ports,
    pid_alive,
    ports_free,
    process_start_time,
    stop_pid,
    tcp_open,
)

__all__ = [
    "LOOPBACK",
    "ManagedProcess",
    "ProcessStartError",
    "free_port",
    "free_ports",
    "log_tail",
    "pid_alive",
    "ports_free",
    "process_start_time",
    "stop_pid",
    "tcp_open",
]


class ProcessStartError(RuntimeError):
    """A managed process exited or did not become ready in time."""


def free_port(host: str = LOOPBACK) -> int:
    return free_ports(1, host)[0]


_live: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()
_live_lock = threading.Lock()


@atexit.register
def _stop_leftovers() -> None:
    # Safety net: a crashed test run must not leave attached servers behind.
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        if not proc.detached:
            proc.stop(timeout=3)


def log_tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class ManagedProcess:
    """A subprocess in its own process group, started until `ready()` holds, stopped by PID.

    `detached=True` leaves it running when this Python process exits (used by the CLI).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: Callable[[ManagedProcess], bool] | None = None,
        ready_timeout: float = 30.0,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        detached: bool = False,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.detached = detached
        self.popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.start_time: str | None = None

    def start(self) -> ManagedProcess:
        log: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise ProcessStartError(f"{self.name}: cannot run {self.argv[0]}: {exc}") from exc
        finally:
            if not isinstance(log, int):
                log.close()
        self.pid = self.popen.pid
        self.start_time = process_start_time(self.pid)
        with _live_lock:
            _live.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop(timeout=3)
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.popen is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            code = self.popen.poll()
            if code is not None:
                raise ProcessStartError(
                    f"{self.name} exited with status {code} before it was ready "
                    f"(log {self.log_path}):\n{log_tail(self.log_path)}"
                )
            if self.ready is None or self.ready(self):
                return
            if time.monotonic() > deadline:
                raise ProcessStartError(
                    f"{self.name} not ready after {self.ready_timeout:.0f}s "
                    f"(log {self.log_path}):\n{log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.pid is not None and pid_alive(self.pid, self.start_time)

    def stop(self, timeout: float = 10.0) -> None:
        if self.pid is None:
            return
        stop_pid(self.pid, self.start_time, timeout=timeout, popen=self.popen)
        with _live_lock:
            _live.discard(self)

    def info(self) -> dict[str, Any]:
        """What the state file records to find and stop this process later."""
        return {
            "pid": self.pid,
            "start_time": self.start_time,
            "argv": self.argv,
            "log": str(self.log_path) if self.log_path else None,
        }

    def __enter__(self) -> ManagedProcess:
        return self.start() if self.popen is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_stop_signal() -> None:
    """Block the main thread until SIGTERM or SIGINT (how `down` and Ctrl-C stop a part)."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5):
        pass
