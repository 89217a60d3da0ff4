"""A local stack, a worker and the starter as `make demo` runs them, in a private state
directory, for the benchmarks that provision (bench/provision.py, bench/environments.py).

Everything is a real process (`python -m local_stack up`, `python worker.py --local-stack`,
`python starter.py --local-stack ...`); the stack and workers are stopped by PID at the end.
Times inside activities come from the workflow's history: each activity's
ActivityTaskStarted -> ActivityTaskCompleted (the last attempt), merged where activities ran
in parallel; everything else in a command's wall time is overhead (process start, imports,
helm template in the starter, workflow tasks, polling).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.common import ROOT
from declared_state.loader import load_environment
from declared_state.models import Environment
from tests.helpers import copy_environments

PY = str(ROOT / ".venv" / "bin" / "python")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its waited-for children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is the state; ppid, then utime stime cutime cstime at 11..14 of the full line
    return int(fields[1]), sum(int(v) for v in fields[11:15]) / _TICK


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds used so far by `roots` and every live descendant (helm runs, the frontend
    pods' dev servers), exited children included through their parents' counters."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (got := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = got
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo += children.get(pid, [])
    return total


@dataclass
class Stack:
    workdir: Path
    code: Path = ROOT
    """Where worker.py, starter.py and local_stack come from: another checkout measures
    another version (`--code`) with this one's instrument."""
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TEMPORAL_BOOTSTRAP_STATE_DIR": str(self.workdir / "state"),
            "TEMPORAL_BOOTSTRAP_ENVIRONMENTS": str(self.workdir / "environments"),
        }

    @property
    def environments(self) -> Path:
        return self.workdir / "environments"

    def up(self) -> Stack:
        copy_environments(self.environments)
        subprocess.run(
            [PY, "-m", "local_stack", "up"],
            env=self.env,
            check=True,
            capture_output=True,
            cwd=self.code,
            timeout=300,
        )
        return self

    def state(self) -> dict[str, Any]:
        return json.loads((self.workdir / "state" / "local-stack" / "stack.json").read_text())

    def pids(self) -> list[int]:
        """The stack's processes and the workers (for CPU accounting)."""
        started = [int(p["pid"]) for p in self.state()["processes"].values()]
        return started + [w.pid for w in self.workers]

    @property
    def bootstrap_address(self) -> str:
        return str(self.state()["temporal"]["bootstrap"]["address"])

    def start_worker(
        self, command: tuple[str, ...] = ("worker.py",), env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """`python worker.py --local-stack` (or `python COMMAND --local-stack`, e.g.
        `-m bench.traced_worker`), with `env` added to the stack's environment."""
        log = self.workdir / f"worker-{len(self.workers)}.log"
        proc = subprocess.Popen(
            [PY, *command, "--local-stack"],
            env={**self.env, **(env or {})},
            cwd=self.code,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(proc)
        deadline = time.monotonic() + 120
        while "worker ready" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        return proc

    def starter(self, *args: str, check: bool = True) -> tuple[float, str]:
        """Wall time of `python starter.py --local-stack ARGS` (process start included)."""
        started = time.perf_counter()
        done = subprocess.run(
            [PY, "starter.py", "--local-stack", *args],
            env=self.env,
            cwd=self.code,
            capture_output=True,
            text=True,
            timeout=600,
        )
        elapsed = time.perf_counter() - started
        if check and done.returncode not in (0, 4):
            raise RuntimeError(
                f"starter {args} exited {done.returncode}: {done.stdout}{done.stderr}"
            )
        return elapsed, done.stdout

    def declare_namespaces(self, env_name: str, count: int) -> None:
        path = self.environments / f"{env_name}.yaml"
        data = yaml.safe_load(path.read_text())
        data["temporal_namespaces"] = [
            {"name": f"ns-{i:03d}", "retention": "168h"} for i in range(count)
        ]
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def declare_environments(self, count: int, template: str = "local") -> list[str]:
        """`count` copies of `template`.yaml named <template>-NN: each its own Kubernetes
        namespace (my-app-<env>), release and frontend; the database and AWS are shared."""
        text = (self.environments / f"{template}.yaml").read_text()
        names = [f"{template}-{i:02d}" for i in range(count)]
        for name in names:
            (self.environments / f"{name}.yaml").write_text(text)
        return names

    def load(self, name: str) -> Environment:
        return load_environment(name, self.environments, variables=self.state()["env"])

    async def client(self) -> Client:
        return await Client.connect(self.bootstrap_address, data_converter=pydantic_data_converter)

    def down(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(
            [PY, "-m", "local_stack", "down"],
            env=self.env,
            cwd=self.code,
            capture_output=True,
            timeout=120,
        )


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


async def history_times(address: str, workflow_id: str) -> dict[str, Any]:
    """Per-step seconds (scheduled -> completed of the last attempt), the union of the time
    activities ran, and the workflow's own start -> close."""
    client = await Client.connect(address)
    handle = client.get_workflow_handle(workflow_id)
    scheduled: dict[int, tuple[str, float]] = {}
    started: dict[int, float] = {}
    steps: dict[str, float] = {}
    running: list[tuple[float, float]] = []
    first = last = 0.0
    async for event in handle.fetch_history_events():
        at = event.event_time.ToDatetime().timestamp()
        first = first or at
        last = at
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = (a.activity_type.name, at)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sid = event.activity_task_completed_event_attributes.scheduled_event_id
            name, sched_at = scheduled[sid]
            steps[name] = steps.get(name, 0.0) + at - sched_at
            running.append((started.get(sid, sched_at), at))
    return {"steps": steps, "in_activities": _union(running), "workflow": last - first}


def times(address: str, workflow_id: str) -> dict[str, Any]:
    return asyncio.run(history_times(address, workflow_id))


def python() -> str:
    return sys.executable
