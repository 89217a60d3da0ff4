"""Registering N namespaces until they are usable: the project's register_namespaces step
against the manual way, on a fresh target dev server per sample.

Methods (interleaved within each round, in a rotating order; each sample gets its own fresh
`temporal server start-dev`, so no method pays for the namespaces of another: the server grows
~3 MB per namespace and its namespace cache with it):
- `project`: the register_namespaces activity (default concurrency), run in-process through
  temporalio's ActivityEnvironment, until every namespace is usable (its own check);
- `project-c1`, `project-c16`, `project-c64`: the same with concurrency 1, 16, 64 (64: a
  too-high setting);
- `cli`: `temporal operator namespace create` once per namespace, repeated when the server
  rejects it (RESOURCE_EXHAUSTED), no usability check;
- `cli+check`: the same, each followed by `temporal workflow list --limit 1` until it answers;
- `floor`: raw RegisterNamespace calls (concurrency 8, retry after 20 ms on
  RESOURCE_EXHAUSTED), no check: N divided by the server's admission rate, the floor for
  any method that registers N namespaces.

    .venv/bin/python -m bench.namespaces [--rounds 3] [--sizes 1,20,200] [--methods ...]
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment

from activities.register_namespaces import RegisterNamespaces
from adapters.temporal_target import TargetTemporalClients
from bench.common import Recorder, arguments, choices, fmt, positive_ints, table
from contracts.register_namespaces import RegisterNamespacesInput
from contracts.step_spec import NAMESPACE_RETRY
from declared_state.loader import load_environment
from declared_state.models import Environment, FrontendSpec, TemporalNamespace
from local_stack.temporal_servers import target_server, temporal_cli

METHODS = ("project", "project-c1", "project-c16", "project-c64", "floor", "cli", "cli+check")
CLI_RETRY = 0.1  # what a careful shell loop sleeps before trying again


def environment(address: str, names: list[str]) -> Environment:
    base = load_environment(
        "local",
        variables={
            "LOCAL_STACK_DB_HOST": "127.0.0.1",
            "LOCAL_STACK_DB_PORT": "3306",
            "LOCAL_STACK_CHART_REPOSITORY": "http://127.0.0.1:1",
            "LOCAL_STACK_IMAGE_REGISTRY": "http://127.0.0.1:1",
        },
    )
    return base.model_copy(
        update={
            "frontend": FrontendSpec(connect="direct", address=address),
            "temporal_namespaces": tuple(
                TemporalNamespace(name=n, retention="168h", description="bench") for n in names
            ),
        }
    )


async def project(address: str, names: list[str], concurrency: int | None) -> dict:
    env = environment(address, names)
    run_id = str(uuid.uuid4())
    fields = {} if concurrency is None else {"concurrency": concurrency}
    clients = TargetTemporalClients()
    await clients.direct_client(env, address, 10)  # the connection is not what is measured
    started = time.perf_counter()
    # The workflow's retry policy for the step, played here: a failed attempt waits its
    # backoff and runs again as the same run's next attempt.
    policy = NAMESPACE_RETRY
    attempt, failures = 1, []
    while True:
        act_env = ActivityEnvironment()
        act_env.info = dataclasses.replace(
            act_env.info,
            activity_type="register_namespaces",
            workflow_id="provision-bench",
            workflow_run_id=run_id,
            attempt=attempt,
            started_time=datetime.now(UTC),
            start_to_close_timeout=timedelta(seconds=600),
            schedule_to_close_timeout=None,
        )
        try:
            result = await act_env.run(
                RegisterNamespaces(clients).register_namespaces,
                RegisterNamespacesInput(environment=env, **fields),
            )
            break
        except ApplicationError as exc:
            if exc.non_retryable or attempt >= 10:
                raise
            failures.append(exc.message[:120])
            assert policy.maximum_interval is not None
            wait = min(
                policy.initial_interval.total_seconds()
                * policy.backoff_coefficient ** (attempt - 1),
                policy.maximum_interval.total_seconds(),
            )
            await asyncio.sleep(wait)
            attempt += 1
    elapsed = time.perf_counter() - started
    assert [o.action for o in result.namespaces] == ["created"] * len(names), result.summary
    return {"seconds": elapsed, "attempts": attempt, "failures": failures[:3]}


async def floor(address: str, names: list[str]) -> dict:
    client = await Client.connect(address)
    rejected = 0
    limit = asyncio.Semaphore(8)

    async def one(name: str) -> None:
        nonlocal rejected
        request = RegisterNamespaceRequest(namespace=name)
        request.workflow_execution_retention_period.FromTimedelta(timedelta(days=7))
        async with limit:
            while True:
                try:
                    await client.workflow_service.register_namespace(request)
                    return
                except RPCError as exc:
                    if exc.status != RPCStatusCode.RESOURCE_EXHAUSTED:
                        raise
                    rejected += 1
                    await asyncio.sleep(0.02)

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in names))
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "rejections": rejected, "admitted_per_s": len(names) / elapsed}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([temporal_cli(), *args], capture_output=True, text=True, timeout=60)


def cli(address: str, names: list[str], check: bool) -> dict:
    rejected = 0
    started = time.perf_counter()
    for name in names:
        while True:
            done = _cli(
                "operator",
                "namespace",
                "create",
                "--namespace",
                name,
                "--retention",
                "168h",
                "--address",
                address,
            )
            if done.returncode == 0:
                break
            if "ResourceExhausted" not in done.stderr and "rate limit" not in done.stderr.lower():
                raise RuntimeError(done.stderr)
            rejected += 1
            time.sleep(CLI_RETRY)
        while check:
            listed = _cli(
                "workflow", "list", "--namespace", name, "--limit", "1", "--address", address
            )
            if listed.returncode == 0:
                break
            time.sleep(CLI_RETRY)
    return {"seconds": time.perf_counter() - started, "rejections": rejected}


def measure(method: str, address: str, names: list[str]) -> dict:
    if method == "project":
        return asyncio.run(project(address, names, None))
    if method.startswith("project-c"):
        return asyncio.run(project(address, names, int(method.removeprefix("project-c"))))
    if method == "floor":
        return asyncio.run(floor(address, names))
    return cli(address, names, check=method == "cli+check")


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rounds=3)
    parser.add_argument("--sizes", type=positive_ints, default="1,20,200")
    parser.add_argument("--methods", type=choices(METHODS), default=",".join(METHODS))
    args = parser.parse_args()
    sizes, methods = args.sizes, args.methods
    rec = Recorder("namespaces", args)
    details: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for n in sizes:
                shift = rnd % len(methods)
                for method in methods[shift:] + methods[:shift]:
                    server = target_server(Path(tmp) / f"{rnd}-{n}-{method}").start()
                    try:
                        names = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(n)]
                        got = measure(method, server.address, names)
                    finally:
                        server.stop()
                    rec.add(f"{method}@{n}", got["seconds"])
                    details.append({"round": rnd, "n": n, "method": method, **got})
                    print(f"round {rnd + 1} N={n} {method}: {got}", flush=True)
    rec.extra["details"] = details
    rows = []
    for n in sizes:
        row: list[object] = [n]
        for method in methods:
            key = f"{method}@{n}"
            row.append(fmt(rec.stats(key)) if key in rec.samples else "-")
        if "project" in methods and "cli+check" in methods:
            row.append(
                f"{rec.stats(f'cli+check@{n}')['median'] / rec.stats(f'project@{n}')['median']:.2f}×"
            )
        if "project" in methods and "floor" in methods:
            row.append(
                f"{rec.stats(f'project@{n}')['median'] / rec.stats(f'floor@{n}')['median']:.2f}×"
            )
        rows.append(row)
    header = ["N", *methods]
    if "project" in methods and "cli+check" in methods:
        header.append("cli+check / project")
    if "project" in methods and "floor" in methods:
        header.append("project / floor")
    rec.write(table("namespaces until usable, seconds: median (min–max)", header, rows))


if __name__ == "__main__":
    main()
