"""`worker.py` with its memory open to inspection, for `bench.worker_memory --trace` only.

    python -m bench.traced_worker --local-stack      # = python worker.py --local-stack, traced

The product's worker never imports this. It runs `worker.cli()` unchanged; SIGUSR2 starts
`tracemalloc` (BENCH_TRACE_FRAMES frames per allocation, default 6), sent after a few runs:
traced from the start, the first run's imports (the kubernetes client's generated modules)
take longer than the activities' start-to-close timeouts. Only growth after that point is
compared, so nothing is lost. On SIGUSR1 it runs a full garbage collection and writes, next to
BENCH_TRACE_PREFIX, `<prefix>-<n>.snapshot` (the tracemalloc snapshot) and `<prefix>-<n>.json`
(live objects counted by type, glibc's `mallinfo2` totals: bytes malloc has handed out and
bytes it holds free, the process's RSS and thread count; then `malloc_trim(0)` and the RSS
after it). The three together tell a Python
reference leak (tracemalloc grows), native memory still in use (malloc's in-use bytes grow,
tracemalloc does not: the SDK's Rust core, grpc, OpenSSL) and fragmentation (malloc's free
bytes grow) apart.

Costs: tracemalloc slows every allocation (runs take about twice as long) and its own
bookkeeping counts in RSS, so traced RSS figures are not the benchmark's figures.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import os
import signal
import threading
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

_MALLINFO2 = (
    "arena",  # bytes from sbrk (main arena)
    "ordblks",
    "smblks",
    "hblks",
    "hblkhd",  # bytes in mmap'ed chunks
    "usmblks",
    "fsmblks",
    "uordblks",  # bytes in use
    "fordblks",  # bytes free, kept by malloc
    "keepcost",
)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2]


def mallinfo() -> dict[str, int]:
    """glibc's totals over every arena (empty where glibc has no mallinfo2)."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _MallInfo2
    info = fn()
    return {name: int(getattr(info, name)) for name in _MALLINFO2}


def _status(key: str) -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return ""


_taken = 0


def dump(_signum: int = 0, _frame: FrameType | None = None) -> None:
    global _taken
    prefix = os.environ["BENCH_TRACE_PREFIX"]
    gc.collect()
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    snapshot = tracemalloc.take_snapshot()
    traced, _peak = tracemalloc.get_traced_memory()
    facts: dict[str, Any] = {
        "gc_objects": sum(counts.values()),
        "by_type": dict(counts.most_common(300)),
        "tracemalloc_bytes": traced,
        "tracemalloc_overhead_bytes": tracemalloc.get_tracemalloc_memory(),
        "mallinfo2": mallinfo(),
        "rss": _status("VmRSS"),
        "threads": threading.active_count(),
        "os_threads": _status("Threads"),
    }
    # Then hand every free page back to the kernel: what RSS drops by was memory malloc kept
    # free (fragmentation), not memory in use.
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_trim(0)
    facts["rss_after_malloc_trim"] = _status("VmRSS")
    facts["mallinfo2_after_malloc_trim"] = mallinfo()
    snapshot.dump(f"{prefix}-{_taken}.snapshot")
    Path(f"{prefix}-{_taken}.json").write_text(json.dumps(facts, indent=1))
    _taken += 1


def start(_signum: int = 0, _frame: FrameType | None = None) -> None:
    tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "6")))


def main() -> None:
    signal.signal(signal.SIGUSR2, start)
    signal.signal(signal.SIGUSR1, dump)
    import worker

    worker.cli()


if __name__ == "__main__":
    main()
