"""The worker's memory over many runs: RSS idle, after the first provision, then every 10
no-change provisions of `local` (started through the client, each awaited), on the local
stack as `make demo` runs it.

    .venv/bin/python -m bench.worker_memory [--runs 200]
    .venv/bin/python -m bench.worker_memory --runs 200 --trace   # where the growth is

`--trace` runs the worker as `python -m bench.traced_worker` (tracemalloc on from run 5,
slower, RSS includes tracemalloc's own bookkeeping) and takes a snapshot after run 10, run 100 and the
last run; it prints what grew between run 10 and the last run: Python allocations by source
line, live objects by type, and glibc malloc's in-use and free bytes (native memory the
tracer does not see: the SDK's Rust core, grpc, OpenSSL).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.common import Recorder, arguments, positive_int
from bench.stack import Stack, rss_mb
from contracts.bootstrap import BootstrapInput, bootstrap_workflow_id
from operations.settings import TASK_QUEUE
from workflows.bootstrap import BootstrapWorkflow

TRACE_FROM = 5  # tracemalloc starts after this run (bench/traced_worker.py says why)
TRACE_AT = (10, 100)


def take_snapshot(prefix: Path, taken: int, pid: int) -> None:
    """Ask the traced worker for snapshot number `taken` and wait until it is written."""
    os.kill(pid, signal.SIGUSR1)
    done = Path(f"{prefix}-{taken}.json")
    deadline = time.monotonic() + 300
    while not done.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the traced worker wrote no {done}")
        time.sleep(0.2)


def compare(prefix: Path, first: int, last: int, top: int = 25) -> dict[str, object]:
    """What grew from snapshot `first` to `last`: by source line, by object type, in malloc."""
    old = tracemalloc.Snapshot.load(f"{prefix}-{first}.snapshot")
    new = tracemalloc.Snapshot.load(f"{prefix}-{last}.snapshot")
    by_line = new.compare_to(old, "lineno")
    by_trace = new.compare_to(old, "traceback")
    a, b = (json.loads(Path(f"{prefix}-{i}.json").read_text()) for i in (first, last))
    types = {
        name: b["by_type"].get(name, 0) - a["by_type"].get(name, 0)
        for name in set(a["by_type"]) | set(b["by_type"])
    }
    grown = sorted(((d, n) for n, d in types.items() if d), reverse=True)
    malloc = {k: b["mallinfo2"][k] - a["mallinfo2"].get(k, 0) for k in b["mallinfo2"]}
    return {
        "tracemalloc_growth_bytes": b["tracemalloc_bytes"] - a["tracemalloc_bytes"],
        "tracemalloc_overhead_growth_bytes": b["tracemalloc_overhead_bytes"]
        - a["tracemalloc_overhead_bytes"],
        "gc_objects_growth": b["gc_objects"] - a["gc_objects"],
        "types_grown": [f"{n}: {d:+d}" for d, n in grown[:top]],
        "types_shrunk": [f"{n}: {d:+d}" for d, n in grown[-5:] if d < 0],
        "mallinfo2_growth": malloc,
        "rss": [a["rss"], b["rss"]],
        "rss_after_malloc_trim": [a["rss_after_malloc_trim"], b["rss_after_malloc_trim"]],
        "threads": [a["os_threads"], b["os_threads"]],
        "by_line": [str(stat) for stat in by_line[:top]],
        "by_traceback": [
            f"{stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks\n    "
            + "\n    ".join(stat.traceback.format()[-16:])
            for stat in by_trace[:8]
        ],
    }


async def runs(
    stack: Stack, pid: int, count: int, rec: Recorder, trace: Path | None = None
) -> None:
    client = await stack.client()
    env = stack.load("local")
    taken = 0
    for i in range(count + 1):
        started = time.perf_counter()
        await client.execute_workflow(
            BootstrapWorkflow.run,
            BootstrapInput(environment=env, requested_by="bench"),
            id=bootstrap_workflow_id(env.name),
            task_queue=TASK_QUEUE,
        )
        rec.add("run-seconds" if i else "first-run-seconds", time.perf_counter() - started)
        if i % 10 == 0:
            rec.add("rss-mb", rss_mb(pid))
            print(f"after run {i}: RSS {rss_mb(pid):.1f} MB", flush=True)
        if trace is not None and i == TRACE_FROM:
            os.kill(pid, signal.SIGUSR2)
        if trace is not None and (i in TRACE_AT or i == count):
            take_snapshot(trace, taken, pid)
            taken += 1


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rounds=1)
    parser.add_argument("--runs", type=positive_int, default=200)
    parser.add_argument(
        "--trace",
        action="store_true",
        help="run the worker under tracemalloc (bench/traced_worker.py) and compare snapshots "
        "after run 10 and the last run",
    )
    args = parser.parse_args()
    rec = Recorder("worker_memory", args)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        stack = Stack(Path(tmp), args.code).up()
        trace = Path(tmp) / "trace" if args.trace else None
        try:
            if trace is None:
                pid = stack.start_worker().pid
            else:
                command = ("-m", "bench.traced_worker")
                pid = stack.start_worker(command, {"BENCH_TRACE_PREFIX": str(trace)}).pid
            time.sleep(2)
            idle = rss_mb(pid)
            asyncio.run(runs(stack, pid, args.runs, rec, trace))
            if trace is not None:
                last = sum(at < args.runs for at in TRACE_AT)
                rec.extra["trace"] = compare(trace, 0, last)
                if last > 1:
                    rec.extra["trace_second_half"] = compare(trace, 1, last)
        finally:
            stack.down()
    series = rec.samples["rss-mb"]
    series += series[-1:] * (2 - len(series))  # fewer than 10 runs: no "after run 10"
    rec.extra["idle_mb"] = idle
    text = (
        f"## worker RSS over {args.runs} no-change provisions\n\n"
        f"idle {idle:.1f} MB; after the first run {series[0]:.1f} MB; after run 10 "
        f"{series[1]:.1f} MB; peak {max(series):.1f} MB; after run {args.runs} "
        f"{series[-1]:.1f} MB (growth from run 10: {series[-1] - series[1]:+.1f} MB); "
        f"run time {fmt_runs(rec)}\n\nevery 10 runs: " + ", ".join(f"{v:.0f}" for v in series)
    )
    if "trace" in rec.extra:
        text += "\n\n## run 10 -> last run, traced\n\n" + json.dumps(rec.extra["trace"], indent=1)
    rec.write(text)


def fmt_runs(rec: Recorder) -> str:
    s = rec.stats("run-seconds")
    return f"median {s['median']:.3f}s ({s['min']:.3f}–{s['max']:.3f})"


if __name__ == "__main__":
    main()
