"""UpgradeWorkflow's own logic with the shared fakes on the time-skipping test server: the
plan from the live version, hops in order and schema first, per-hop approval, refusals,
and what a failed step leaves (and says)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from adapters.errors import ErrorType, activity_error
from contracts.bootstrap import RunState, StepStatus
from contracts.operator import OperatorRequest
from contracts.upgrade import UpgradeInput, UpgradeProgress, hop_step
from declared_state.loader import load_environment
from declared_state.models import ChartSpec
from tests.helpers import assert_eventually, new_worker
from tests.helpers.fakes import StepFakes
from workflows.upgrade import HOP_STEPS, UpgradeWorkflow

TARGET = "1.6.0"


@pytest.fixture
def fakes() -> StepFakes:
    return StepFakes()


@pytest.fixture
async def worker(time_skipping_env, fakes) -> AsyncIterator[Worker]:
    async with new_worker(time_skipping_env.client, UpgradeWorkflow, activities=fakes.all()) as w:
        yield w


def upgrade_input(
    chart: str = TARGET, approval: bool = False, plan_only: bool = False
) -> UpgradeInput:
    env = load_environment("staging").model_copy(
        update={"approval_required": approval, "chart": ChartSpec(version=chart)}
    )
    return UpgradeInput(environment=env, requested_by="test", plan_only=plan_only)


async def start(env: WorkflowEnvironment, worker: Worker, input: UpgradeInput) -> WorkflowHandle:
    return await env.client.start_workflow(
        UpgradeWorkflow.run, input, id=f"upgrade-test-{uuid.uuid4()}", task_queue=worker.task_queue
    )


async def until(handle: WorkflowHandle, predicate) -> UpgradeProgress:
    async def check() -> UpgradeProgress:
        current = await handle.query(UpgradeWorkflow.progress, result_type=UpgradeProgress)
        assert predicate(current), f"not reached yet: {current}"
        return current

    return await assert_eventually(check)


async def test_six_hops_schema_first_each_with_its_snapshot(time_skipping_env, worker, fakes):
    handle = await start(time_skipping_env, worker, upgrade_input())
    result = await handle.result()
    assert result.state == RunState.DONE and result.changed
    assert [(h.chart, h.server) for h in result.plan] == [
        ("0.55.0", "1.26.2"),
        ("0.63.0", "1.27.2"),
        ("0.67.0", "1.28.1"),
        ("0.73.2", "1.29.1"),
        ("0.74.0", "1.30.3"),
        ("1.6.0", "1.31.2"),
    ]
    # Per hop: the image preflight (the chart's images and the schema Job's), snapshot, then
    # the schema, then (and only then) the chart.
    expected = []
    for hop in result.plan:
        snapshot = f"staging-before-temporal-{hop.server}-chart-{hop.chart}".replace(".", "-")
        assert hop.images is not None and hop.images.admin_tools is not None
        images = [i.reference for _, i in hop.images.components() if i]
        expected += [
            f"images {' '.join([*images, hop.images.admin_tools.reference])}",
            f"snapshot {snapshot}",
            f"schema {hop.default_schema}/{hop.visibility_schema}",
            f"install {hop.chart}",
        ]
    assert fakes.events == expected
    assert len(result.snapshots) == 6 and result.snapshots[0] == (
        "staging-before-temporal-1-26-2-chart-0-55-0"
    )
    assert [s.name for s in result.steps][:9] == [
        "read_live_versions",
        *(hop_step(1, s) for s in HOP_STEPS),
    ]
    assert (fakes.live_chart, fakes.live_server, fakes.schema) == (
        "1.6.0",
        "1.31.2",
        ("1.19", "1.14"),
    )


async def test_plan_only_reads_and_plans_and_changes_nothing(time_skipping_env, worker, fakes):
    result = await (await start(time_skipping_env, worker, upgrade_input(plan_only=True))).result()
    assert result.plan_only and len(result.plan) == 6
    assert (result.live_server, result.live_chart, result.live_schema) == (
        "1.25.2",
        "0.52.0",
        ("1.14", "1.6"),
    )
    assert fakes.events == [] and [s for s, _ in fakes.calls] == ["read_live_versions"]


async def test_nothing_to_do(time_skipping_env, worker, fakes):
    result = await (await start(time_skipping_env, worker, upgrade_input("0.52.0"))).result()
    assert result.plan == () and not result.changed and fakes.events == []


async def test_a_downgrade_is_refused_before_anything_changes(time_skipping_env, worker, fakes):
    fakes.live_server, fakes.live_chart, fakes.schema = "1.27.2", "0.63.0", ("1.16", "1.9")
    handle = await start(time_skipping_env, worker, upgrade_input("0.55.0"))
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UpgradeRefused"
    assert "cannot be downgraded" in cause.message and "snapshot" in cause.message
    assert fakes.events == []


async def test_nothing_deployed_points_at_provision(time_skipping_env, worker, fakes):
    fakes.live_server = None
    handle = await start(time_skipping_env, worker, upgrade_input())
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert "provision it first" in str(info.value.cause)


async def test_each_hop_asks_for_its_own_approval(time_skipping_env, worker, fakes):
    handle = await start(time_skipping_env, worker, upgrade_input("0.63.0", approval=True))
    waiting = await until(handle, lambda p: p.state == RunState.WAITING_FOR_OPERATOR)
    assert waiting.hop == 1 and "approval before hop 1 (to 1.26.2)" in (waiting.waiting_for or "")
    assert fakes.events == []
    await handle.execute_update(UpgradeWorkflow.approve, OperatorRequest(by="cab"))
    second = await until(handle, lambda p: p.hop == 2 and p.state == RunState.WAITING_FOR_OPERATOR)
    assert "hop 2" in (second.waiting_for or "")
    assert fakes.events[-1] == "install 0.55.0", "hop 1 ran, hop 2 waits"
    await handle.execute_update(UpgradeWorkflow.approve, OperatorRequest(by="dba"))
    result = await handle.result()
    approvals = [s.summary for s in result.steps if s.name.endswith(": approval")]
    assert approvals == ["approved by cab", "approved by dba"]


async def test_a_failure_after_the_schema_step_waits_and_says_the_cluster_is_safe(
    time_skipping_env, worker, fakes
):
    fakes.failures["install_chart"] = (
        -1,
        activity_error("helm: the chart rejected the values", ErrorType.HELM_BAD_VALUES),
    )
    handle = await start(time_skipping_env, worker, upgrade_input("0.55.0"))
    waiting = await until(handle, lambda p: p.state == RunState.WAITING_FOR_OPERATOR)
    step = next(s for s in waiting.steps if s.name == hop_step(1, "install_chart"))
    assert step.status == StepStatus.WAITING_FOR_OPERATOR
    assert waiting.cluster.startswith("server 1.25.2 (chart 0.52.0), schema 1.14 / 1.7")
    assert "safe (older binaries run on a newer schema)" in waiting.cluster
    await handle.execute_update(UpgradeWorkflow.abort, OperatorRequest(by="ops"))
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UpgradeAborted"
    assert "safe (older binaries run on a newer schema)" in cause.message
    assert fakes.events[-1] == "schema 1.14/1.7" and fakes.live_server == "1.25.2"
