"""Free loopback ports and subprocesses that are always stopped by PID (process group)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

LOOPBACK = "127.0.0.1"


class ProcessStartError(RuntimeError):
    """A managed process exited or did not become ready in time."""


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return `count` distinct ports that were free on `host` a moment ago."""
    # Hold all sockets open together so the kernel cannot hand out the same port twice.
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def ports_free(ports: Sequence[int], host: str = LOOPBACK) -> bool:
    """True when every one of `ports` could be listened on now."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As servers' own listeners do, so connections in TIME_WAIT do not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    return free_ports(1, host)[0]


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def process_start_time(pid: int) -> str | None:
    """Kernel start time of `pid` (clock ticks since boot), to tell PID reuse apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces/parens; fields after the last ')' are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19]


def pid_alive(pid: int, start_time: str | None = None) -> bool:
    """True if `pid` runs (zombies count as gone) and, if given, started at `start_time`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return False
    return start_time is None or fields[19] == start_time


def _signal_group(pid: int, sig: int) -> None:
    # Our processes lead their own session, so pgid == pid; fall back to the PID alone
    # if it is not a group leader (never signal someone else's group).
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # killpg(0) succeeds for zombies too; check whether any member is really running.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def stop_pid(
    pid: int,
    start_time: str | None = None,
    timeout: float = 10.0,
    popen: subprocess.Popen[Any] | None = None,
) -> bool:
    """SIGTERM the process group of `pid`, SIGKILL what is left after `timeout`.

    Returns False if the PID was already gone (or reused by another process).
    """
    if not pid_alive(pid, start_time):
        if popen is not None:
            popen.poll()
        # Leader gone but members left: Linux never hands out a PID equal to a live
        # process group id, so that group is still ours. A reused PID is someone else's.
        if not pid_alive(pid) and _group_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None:
            popen.poll()  # reap, otherwise our own child stays a zombie
        if not pid_alive(pid) and not _group_alive(pid):
            break
        time.sleep(0.05)
    else:
        _signal_group(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)
    # SIGKILL is delivered asynchronously: "stopped" means no member of the group still runs.
    settle = time.monotonic() + 5
    while _group_alive(pid) and time.monotonic() < settle:
        time.sleep(0.05)
    return True


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
