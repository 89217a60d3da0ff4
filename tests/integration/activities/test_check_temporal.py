"""check_temporal against a release installed by install_chart (helm v4, chart 0.52.0) into
the Kubernetes API stand-in, its frontend pod reached by port-forward (the local stack runs a
Temporal dev server for it, answering with the pod's image version and the release's shard
count), and the TLS MariaDB behind moto's RDS and Secrets Manager."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.check_database import DatabasePreflight
from activities.check_temporal import TemporalCheck
from activities.install_chart import ChartInstaller
from adapters.temporal_target import TargetTemporalClients, read_server_info
from contracts.check_temporal import CheckTemporalInput, CheckTemporalResult
from declared_state.models import Environment

KUBECTL = str(Path(__file__).resolve().parents[3] / ".tools" / "kubectl" / "kubectl")


@pytest.fixture
def installer(helm_binaries, kube_standin) -> ChartInstaller:
    return ChartInstaller(helm_binaries["v4"], str(kube_standin.kubeconfig_path))


@pytest.fixture
def checker(installer, kube_clients, aws_clients) -> TemporalCheck:
    return TemporalCheck(
        TargetTemporalClients(kube_clients, in_cluster=False),
        DatabasePreflight(aws_clients, kube_clients),
        installer,
    )


@pytest.fixture
def env(installed_env: Environment) -> Environment:
    return installed_env


async def check(checker: TemporalCheck, env: Environment) -> CheckTemporalResult:
    return await ActivityEnvironment().run(
        checker.check_temporal, CheckTemporalInput(environment=env, dry_run=True)
    )


async def check_until(
    checker: TemporalCheck, env: Environment, done: Callable[[CheckTemporalResult], bool]
) -> CheckTemporalResult:
    """The check, again until `done` says it sees what the test waits for (a restarted
    frontend's dev server takes a second or two to serve)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        result = await check(checker, env)
        if done(result) or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.5)


async def test_a_fresh_install_is_in_sync(checker, env):
    result = await check(checker, env)
    assert (result.health, result.server_version, result.declared_server_version) == (
        "SERVING",
        "1.25.2",  # the pod's image tag, as a real server reports its own version
        "1.25.2",
    )
    assert (result.history_shards, result.declared_history_shards) == (512, 512)
    assert [(s.database, s.found, s.required) for s in result.schemas] == [
        ("temporal", "1.14", "1.14"),
        ("temporal_visibility", "1.6", "1.6"),
    ]
    assert result.drift == () and result.unchecked == ()
    assert (
        result.frontend
        == f"Service {env.kubernetes.namespace}/temporal-frontend port 7233 (port-forward)"
    )


async def test_a_lowered_schema_version_row_is_reported_with_its_fix(checker, env, mariadb):
    mariadb.set_schema_version("temporal", "1.13")
    try:
        result = await check(checker, env)
    finally:
        mariadb.set_schema_version("temporal", "1.14")
    (item,) = result.drift
    assert (item.kind, item.name, item.path, item.live, item.declared) == (
        "TemporalSchema",
        "temporal",
        "/curr_version",
        "1.13",
        "1.14",
    )
    assert not item.repairable
    assert "older than the 1.14 server 1.25.2 needs" in item.message
    assert "temporal-sql-tool --plugin mysql8" in item.how and "update-schema" in item.how
    assert "SQL_PASSWORD=<default store password: Secrets Manager secret" in item.how


async def test_a_stopped_frontend_is_reported_and_what_it_would_say_is_unchecked(
    checker, env, kube_standin
):
    kube_standin.never_serving("temporal-frontend", env.kubernetes.namespace)
    try:
        result = await check(checker, env)
    finally:
        kube_standin.allow_serving("temporal-frontend", env.kubernetes.namespace)
    assert result.health.startswith("unreachable: ")
    # #20.1: no answer is "could not check", never drift.
    assert result.drift == ()
    down, server = result.unchecked
    assert (down.kind, down.path, down.repairable) == ("TemporalFrontend", "/health", False)
    assert "could not check" in down.message and "did not answer" in down.message
    assert "kubectl -n " in down.how and "component=frontend" in down.how
    assert "server version and history shards: could not check" in server.message
    assert result.server_version is None and result.history_shards is None
    # the schemas are still read, against the declared server's needs
    assert [s.found for s in result.schemas] == ["1.14", "1.6"]


async def test_a_declared_shard_count_the_cluster_does_not_have_is_reported(checker, env):
    declared = env.model_copy(
        update={"extra_values": {"server": {"config": {"numHistoryShards": 1024}}}}
    )
    result = await check(checker, declared)
    (item,) = result.drift
    assert (item.kind, item.path, item.live, item.declared, item.repairable) == (
        "TemporalServer",
        "/numHistoryShards",
        "512",
        "1024",
        False,
    )
    assert "can never change" in item.how and "numHistoryShards 512" in item.how


async def test_a_frontend_running_another_server_version_is_reported(
    checker, env, kube_standin, image_registry
):
    # No shipped chart pins it: the registry gets it, or kubelet could not pull it.
    image_registry.add("temporalio/server:1.24.3")
    subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            str(kube_standin.kubeconfig_path),
            "-n",
            env.kubernetes.namespace,
            "set",
            "image",
            "deployment/temporal-frontend",
            "temporal-frontend=temporalio/server:1.24.3",
        ],
        check=True,
        capture_output=True,
    )

    result = await check_until(checker, env, lambda r: r.server_version == "1.24.3")
    (item,) = result.drift
    assert (item.kind, item.path, item.live, item.declared) == (
        "TemporalServer",
        "/serverVersion",
        "1.24.3",
        "1.25.2",
    )
    assert item.how == "python starter.py upgrade local (schema first, then the chart)"
    # the schemas are compared with what the running server needs (1.24.3: 1.12 / 1.6)
    assert [s.required for s in result.schemas] == ["1.12", "1.6"]


async def test_server_info_is_what_the_pod_runs_not_what_the_dev_server_is(env, kube_clients):
    async with TargetTemporalClients(kube_clients, in_cluster=False).connect(env) as frontend:
        info = await read_server_info(await frontend.client(timeout=10), timedelta(seconds=10))
    assert (info.version, info.history_shards) == ("1.25.2", 512)
