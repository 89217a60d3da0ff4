"""The frontend hold proxy stand-in with the real temporalio (Rust core) client and the
session's target Temporal dev server: calls and errors pass through, a held call waits for
`release()`, and a held call whose client gave up is dropped, not forwarded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tests.e2e.frontend_hold_proxy import FrontendHoldProxy

DESCRIBE = "/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace"


@pytest.fixture
def proxy(target_temporal) -> Iterator[FrontendHoldProxy]:
    with FrontendHoldProxy(target_temporal.address) as p:
        yield p


async def describe(client: Client, name: str, timeout: float = 10):
    return await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=name), timeout=timedelta(seconds=timeout)
    )


async def test_calls_and_errors_pass_through(proxy):
    client = await Client.connect(proxy.address)
    found = await describe(client, "default")
    assert found.namespace_info.name == "default"
    with pytest.raises(RPCError) as missing:
        await describe(client, "no-such-namespace")
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert [c.outcome for c in proxy.forwarded(DESCRIBE)] == ["ok", "error"]


async def test_held_call_waits_for_release(proxy):
    client = await Client.connect(proxy.address)
    proxy.hold(DESCRIBE)
    pending = asyncio.create_task(describe(client, "default"))
    held = await asyncio.to_thread(proxy.wait_held, 10)
    assert held.call.outcome is None, "a held call is not forwarded before release"
    assert not pending.done()
    proxy.release()
    assert (await pending).namespace_info.name == "default"
    assert held.call.outcome == "ok"


async def test_held_call_of_a_gone_client_is_dropped(proxy):
    client = await Client.connect(proxy.address)
    proxy.hold(DESCRIBE)
    with pytest.raises(RPCError) as gave_up:
        await describe(client, "default", timeout=1)  # the client stops waiting
    assert gave_up.value.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
    held = await asyncio.to_thread(proxy.wait_held, 10)
    assert await asyncio.to_thread(held.wait_client_gone, 10)
    proxy.release()
    await asyncio.to_thread(proxy.wait_done, held.call, 10)
    assert held.call.outcome == "dropped"
    assert proxy.forwarded(DESCRIBE) == []
