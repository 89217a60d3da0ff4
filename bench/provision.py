"""`provision local` first and second run, and `drift local` at 2 and 200 namespaces, on the
local stack as `make demo` runs it (the frontend reached by port-forward through the
Kubernetes API stand-in), with per-step times from the workflow history. A fresh stack per
round; the worker's RSS is sampled after each command.

    .venv/bin/python -m bench.provision [--rounds 3]
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.common import Recorder, arguments, fmt, table
from bench.stack import Stack, rss_mb, times

COMMANDS = ("provision-first", "provision-second", "drift-2", "drift-200")


@dataclass
class Run:
    """One round's stack; `measure` times a starter command and reads its workflow's history."""

    rec: Recorder
    steps: dict[str, dict[str, list[float]]]
    stack: Stack
    worker_pid: int
    round: int

    def measure(self, key: str, argv: list[str], workflow_id: str) -> None:
        wall, _ = self.stack.starter(*argv)
        got = times(self.stack.bootstrap_address, workflow_id)
        self.rec.add(f"{key}:wall", wall)
        self.rec.add(f"{key}:activities", got["in_activities"])
        self.rec.add(f"{key}:workflow", got["workflow"])
        self.rec.add(f"{key}:overhead", wall - got["in_activities"])
        for name, sec in got["steps"].items():
            self.steps.setdefault(key, {}).setdefault(name, []).append(sec)
        self.rec.add("worker-rss-mb", rss_mb(self.worker_pid))
        print(
            f"round {self.round + 1} {key}: wall {wall:.3f}s, in activities "
            f"{got['in_activities']:.3f}s, workflow {got['workflow']:.3f}s",
            flush=True,
        )


def main() -> None:
    args = arguments(__doc__.splitlines()[0], rounds=3).parse_args()
    rec = Recorder("provision", args)
    steps: dict[str, dict[str, list[float]]] = {}
    for rnd in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-provision-") as tmp:
            stack = Stack(Path(tmp), args.code).up()
            try:
                worker = stack.start_worker()

                run = Run(rec, steps, stack, worker.pid, rnd)
                run.measure("provision-first", ["provision", "local"], "provision-local")
                run.measure("provision-second", ["provision", "local"], "provision-local")
                run.measure("drift-2", ["drift", "local"], "drift-check-local")
                stack.declare_namespaces("local", 200)
                stack.starter("provision", "local")
                run.measure("drift-200", ["drift", "local"], "drift-check-local")
            finally:
                stack.down()
    rec.extra["steps"] = steps
    rows = []
    for key in COMMANDS:
        wall, act = rec.stats(f"{key}:wall"), rec.stats(f"{key}:activities")
        over = rec.stats(f"{key}:overhead")
        rows.append(
            [
                key,
                fmt(wall),
                fmt(act),
                fmt(rec.stats(f"{key}:workflow")),
                fmt(over),
                f"{100 * over['median'] / wall['median']:.0f} %",
            ]
        )
    text = table(
        "commands on the local stack, seconds: median (min–max)",
        ["command", "wall", "in activities", "workflow start→close", "overhead", "overhead share"],
        rows,
    )
    step_rows = []
    for key in ("provision-first", "provision-second"):
        for name, samples in steps.get(key, {}).items():
            step_rows.append(
                [
                    key,
                    name,
                    fmt(
                        {
                            "median": sorted(samples)[len(samples) // 2],
                            "min": min(samples),
                            "max": max(samples),
                        }
                    ),
                ]
            )
    text += "\n\n" + table(
        "per step (scheduled → completed), seconds", ["run", "step", "time"], step_rows
    )
    rss = rec.stats("worker-rss-mb")
    text += f"\n\nworker RSS: {rss['min']:.0f}–{rss['max']:.0f} MB"
    rec.write(text)


if __name__ == "__main__":
    main()
