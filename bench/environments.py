"""20 environments provisioned at once by one worker, and by two worker processes on the same
task queue, against one environment alone; on the local stack as `make demo` runs it (a fresh
stack per sample: each environment is its own Kubernetes namespace, helm release and frontend
pod, i.e. its own Temporal dev server; database and AWS are shared).

A first environment warms the worker(s) up untimed. Runs are started through the client in this process (not 20 starter processes, whose imports
would compete with the worker for the two cores) and timed from the first start to the last
result.

    .venv/bin/python -m bench.environments [--rounds 2] [--count 20]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import Recorder, arguments, fmt, table
from bench.stack import Stack, rss_mb, tree_cpu_seconds
from contracts.bootstrap import BootstrapInput, bootstrap_workflow_id
from operations.settings import TASK_QUEUE
from workflows.bootstrap import BootstrapWorkflow


async def provision_all(stack: Stack, names: list[str]) -> float:
    client = await stack.client()
    envs = [stack.load(n) for n in names]
    started = time.perf_counter()
    handles = [
        await client.start_workflow(
            BootstrapWorkflow.run,
            BootstrapInput(environment=env, requested_by="bench"),
            id=bootstrap_workflow_id(env.name),
            task_queue=TASK_QUEUE,
        )
        for env in envs
    ]
    results = await asyncio.gather(*(h.result() for h in handles))
    elapsed = time.perf_counter() - started
    assert all(r.changed for r in results), "a first run that changed nothing"
    return elapsed


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rounds=2)
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    rec = Recorder("environments", args)
    for rnd in range(args.rounds):
        for workers in (1, 2) if rnd % 2 == 0 else (2, 1):
            with tempfile.TemporaryDirectory(prefix="bench-envs-") as tmp:
                stack = Stack(Path(tmp), args.code).up()
                try:
                    pids = [stack.start_worker().pid for _ in range(workers)]
                    warm, one, *many = stack.declare_environments(args.count + 2)
                    # The worker's first run pays once for its start (the workflow sandbox
                    # loads the workflow modules, clients connect): not what is compared.
                    asyncio.run(provision_all(stack, [warm]))
                    cpu = tree_cpu_seconds(stack.pids())
                    alone = asyncio.run(provision_all(stack, [one]))
                    cpu_one = tree_cpu_seconds(stack.pids()) - cpu
                    together = asyncio.run(provision_all(stack, many))
                    cpu_many = tree_cpu_seconds(stack.pids()) - cpu - cpu_one
                    worker_cpu = sum(tree_cpu_seconds([p]) for p in pids)
                    rec.add(f"cpu-one@{workers}", cpu_one)
                    rec.add(f"cpu-many@{workers}", cpu_many)
                    rec.add(f"worker-cpu-total@{workers}", worker_cpu)
                    rec.add(f"one@{workers}", alone)
                    rec.add(f"many@{workers}", together)
                    rec.add(f"rss-mb@{workers}", max(rss_mb(p) for p in pids))
                    print(
                        f"round {rnd + 1}, {workers} worker(s): 1 environment {alone:.2f}s, "
                        f"{args.count} at once {together:.2f}s; CPU of stack and workers: "
                        f"{cpu_one:.1f}s for 1, {cpu_many:.1f}s for {args.count}",
                        flush=True,
                    )
                finally:
                    stack.down()
    rows = []
    base = rec.stats("one@1")["median"]
    for workers in (1, 2):
        s_one, s_many = rec.stats(f"one@{workers}"), rec.stats(f"many@{workers}")
        cpu = rec.stats(f"cpu-many@{workers}")["median"]
        rows.append(
            [
                workers,
                fmt(s_one),
                fmt(s_many),
                f"{s_many['median'] / base:.1f}×",
                f"{cpu:.1f}",
                f"{cpu / 2:.1f}",
            ]
        )
    text = table(
        f"{args.count} environments at once, seconds: median (min–max)",
        [
            "workers",
            "1 environment",
            f"{args.count} at once",
            "ratio to 1 environment, 1 worker",
            f"CPU s used by stack + workers for the {args.count}",
            "that CPU on 2 cores, s (floor)",
        ],
        rows,
    )
    rec.write(text)


if __name__ == "__main__":
    main()
