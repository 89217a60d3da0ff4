"""Plain helpers shared by test modules in every folder (importable as `support`: pytest puts
tests/ on sys.path for its conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, every: float = 0.3) -> T:
    """Poll until `predicate()` is truthy and return it; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def pids_running(executable: str, *argv_contains: str) -> list[int]:
    """PIDs whose argv[0] is `executable` and whose arguments include every `argv_contains`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = [
                a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")
            ]
        except OSError:
            continue
        if argv and argv[0] == executable and all(a in argv for a in argv_contains):
            pids.append(int(proc.name))
    return pids
