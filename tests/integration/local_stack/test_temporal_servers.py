from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import Client

from local_stack.processes import ProcessStartError, pid_alive
from local_stack.temporal_servers import TemporalDevServer, bootstrap_server, target_server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TemporalDevServer]]:
    work = tmp_path_factory.mktemp("temporal")
    boot, target = bootstrap_server(work), target_server(work)
    try:
        boot.start()
        target.start()
        yield {"bootstrap": boot, "target": target}
    finally:
        target.stop()
        boot.stop()


async def test_both_servers_answer_health(servers: dict[str, TemporalDevServer]) -> None:
    assert servers["bootstrap"].port != servers["target"].port
    for server in servers.values():
        assert server.address.startswith("127.0.0.1:")
        client = await Client.connect(server.address)
        assert await client.service_client.check_health() is True


def test_web_ui_only_on_bootstrap(servers: dict[str, TemporalDevServer]) -> None:
    boot, target = servers["bootstrap"], servers["target"]
    assert target.ui_url is None and "--headless" in target.argv()
    assert boot.ui_url is not None
    with urllib.request.urlopen(boot.ui_url, timeout=10) as resp:
        assert resp.status == 200


async def test_bootstrap_restart_keeps_sqlite_state(
    servers: dict[str, TemporalDevServer],
) -> None:
    boot = servers["bootstrap"]
    assert boot.db_filename is not None and Path(boot.db_filename).exists()
    client = await Client.connect(boot.address)
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace="survives-restart",
            workflow_execution_retention_period=Duration(
                seconds=int(timedelta(days=1).total_seconds())
            ),
        )
    )
    assert boot.process is not None
    old_pid, old_port = boot.process.pid, boot.port
    assert old_pid is not None
    boot.restart()
    assert not pid_alive(old_pid)
    assert boot.port == old_port
    client = await Client.connect(boot.address)
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="survives-restart")
    )
    assert described.namespace_info.name == "survives-restart"


def test_a_port_taken_before_the_server_binds_it_means_fresh_ports(tmp_path: Path) -> None:
    server = target_server(tmp_path)
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", server.port))  # someone else got there first
    taken.listen()
    try:
        server.start()
        try:
            assert server.port != taken.getsockname()[1]
            assert pid_alive(server.process.pid)  # type: ignore[union-attr]
        finally:
            server.stop()
        with pytest.raises(ProcessStartError, match="address already in use"):
            blocked = target_server(tmp_path)
            blocked.port = taken.getsockname()[1]
            blocked.start(keep_ports=True)
    finally:
        taken.close()
