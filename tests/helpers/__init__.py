"""Helpers shared by every test module, as sdk-python keeps them in `tests/helpers`:
`new_worker` on a fresh task queue, `assert_eventually`, process lookups and polling.
The shared fake activities are in `tests/helpers/fakes.py`."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml
from temporalio.client import Client
from temporalio.worker import Worker

from adapters.charts import MIRROR_VARIABLE

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = PROJECT_ROOT / "environments"
# The product's packages (beside the worker and starter modules): what the architecture test
# reads and the packaging test imports from a plain install.
PRODUCT_PACKAGES = (
    "activities",
    "adapters",
    "base",
    "cli",
    "contracts",
    "declared_state",
    "operations",
    "workflows",
)
SHARED_CHARTS = PROJECT_ROOT.parent / "shared" / "charts"

# Build tooling, as the Makefile and .ci/run do: the developers' and CI's machines have no
# internet access but a copy of the charts beside the checkout, so the machine's chart mirror
# setting points there when it exists (and nothing else set it). The product never reads it
# by itself; tests read chart folders through MIRROR_CHARTS only.
if SHARED_CHARTS.is_dir():
    os.environ.setdefault(MIRROR_VARIABLE, str(SHARED_CHARTS))
_MIRROR = os.environ.get(MIRROR_VARIABLE, "")
MIRROR_CHARTS = Path(_MIRROR) if _MIRROR and "://" not in _MIRROR else SHARED_CHARTS
"""The machine's mirror folder: the chart folders tests copy or read directly."""


def copy_environments(dest: Path) -> Path:
    """A copy of environments/ in `dest`, with its file paths (relative to the folder) pinned
    to the originals, so the copy can live anywhere; returns `dest`."""
    from declared_state.loader import PATH_KEYS

    dest.mkdir(parents=True, exist_ok=True)
    for source in ENVIRONMENTS.glob("*.yaml"):
        data = yaml.safe_load(source.read_text()) or {}
        pinned = False
        for keys in PATH_KEYS:
            node = data
            for key in keys[:-1]:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict) and isinstance(node.get(keys[-1]), str):
                node[keys[-1]] = str((ENVIRONMENTS / node[keys[-1]]).resolve())
                pinned = True
        if pinned:
            (dest / source.name).write_text(yaml.safe_dump(data, sort_keys=False))
        else:  # byte for byte, so tests can edit it as text
            shutil.copy(source, dest / source.name)
    return dest


def declare_in(env_dir: Path, name: str = "staging", **top_level: Any) -> None:
    """Set top-level keys of environment `name` in a copied environments folder."""
    path = env_dir / f"{name}.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    data.update(top_level)
    path.write_text(yaml.safe_dump(data))


def only_problem(env_dir: Path, name: str = "staging") -> str:
    """The one problem loading environment `name` reports, as the CLI prints it."""
    import pytest

    from declared_state.loader import InvalidEnvironment, load_environment

    with pytest.raises(InvalidEnvironment) as info:
        load_environment(name, env_dir)
    (found,) = info.value.problems
    return str(found)


def new_worker(
    client: Client,
    *workflows: type,
    activities: Sequence[Callable[..., Any]] = (),
    task_queue: str | None = None,
    **options: Any,
) -> Worker:
    """A worker on a task queue of its own (fresh per call unless given), so tests never
    pick up each other's tasks; use it as `async with new_worker(...) as worker:`."""
    return Worker(
        client,
        task_queue=task_queue or f"tq-{uuid.uuid4()}",
        workflows=list(workflows),
        activities=list(activities),
        **options,
    )


async def assert_eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 30, interval: float = 0.1
) -> T:
    """Run `check` until it stops raising AssertionError and return its value; after
    `timeout` seconds the last AssertionError is raised."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() >= deadline:
                raise
        await asyncio.sleep(interval)


def wait_for(predicate: Callable[[], T], timeout: float, what: str, every: float = 0.3) -> T:
    """Poll until `predicate()` is truthy and return it; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def quiet_for(count: Callable[[], int], seconds: float) -> Callable[[], bool]:
    """A predicate for `wait_for`: true once `count()` (of log lines, writes, ...) has not
    changed for `seconds`, i.e. whatever produces them has gone quiet."""
    last: list[float] = [count(), time.monotonic()]

    def settled() -> bool:
        now, current = time.monotonic(), count()
        if current != last[0]:
            last[:] = [current, now]
        return now - last[1] >= seconds

    return settled


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


def drift_messages(result: Any) -> tuple[str, ...]:
    """The human lines of a step result's (or drift finding's) drift items."""
    return tuple(str(item) for item in result.drift)


def in_namespace(env: Any, namespace: str) -> Any:
    """`env` (an Environment) with its release in Kubernetes namespace `namespace`."""
    kubernetes = env.kubernetes.model_copy(update={"namespace": namespace})
    return env.model_copy(update={"kubernetes": kubernetes})


def attempt(start_to_close: timedelta = timedelta(seconds=60), **info: Any) -> Any:
    """An ActivityEnvironment whose info looks like a real attempt that just started (the
    SDK's default says it started in 1970 with a second to run); `info` overrides more."""
    from temporalio.testing import ActivityEnvironment

    activity_env = ActivityEnvironment()
    now = datetime.now(UTC)
    activity_env.info = dataclasses.replace(
        activity_env.info,
        scheduled_time=now,
        started_time=now,
        start_to_close_timeout=start_to_close,
        schedule_to_close_timeout=None,
        **info,
    )
    return activity_env
