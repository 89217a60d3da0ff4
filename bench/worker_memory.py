"""The worker's memory over many runs: RSS idle, after the first provision, then every 10
no-change provisions of `local` (started through the client, each awaited), on the local
stack as `make demo` runs it.

    .venv/bin/python -m bench.worker_memory [--runs 200]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import Recorder, arguments
from bench.stack import Stack, rss_mb
from contracts.bootstrap import BootstrapInput, bootstrap_workflow_id
from operations.settings import TASK_QUEUE
from workflows.bootstrap import BootstrapWorkflow


async def runs(stack: Stack, pid: int, count: int, rec: Recorder) -> None:
    client = await stack.client()
    env = stack.load("local")
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


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rounds=1)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    rec = Recorder("worker_memory", args)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        stack = Stack(Path(tmp), args.code).up()
        try:
            pid = stack.start_worker().pid
            time.sleep(2)
            idle = rss_mb(pid)
            asyncio.run(runs(stack, pid, args.runs, rec))
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
    rec.write(text)


def fmt_runs(rec: Recorder) -> str:
    s = rec.stats("run-seconds")
    return f"median {s['median']:.3f}s ({s['min']:.3f}–{s['max']:.3f})"


if __name__ == "__main__":
    main()
