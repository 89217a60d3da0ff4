"""Processes by PID: free loopback ports, "is this very process alive", stop a process group.

Used by the embedded bootstrap server (a detached `temporal server start-dev` that outlives
the worker and the starter) and, beyond the product, by the local stack. A PID is always
checked together with its kernel start time, so a reused PID is never mistaken for ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


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
