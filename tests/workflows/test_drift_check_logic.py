"""DriftCheckWorkflow's own logic with stand-in activities on the time-skipping test server:
report, remediate, ask (approved / not approved in time), a check that cannot run.

The fakes answer dry runs from `drifted` and repair a step when it runs for real; their
results are the real result models, decoded by the workflow as in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from contracts.drift_check import DriftCheckInput, DriftCheckResult, DriftState, FindingStatus
from contracts.operator import OperatorRequest
from declared_state.loader import load_environment
from declared_state.models import DriftPolicy
from tests.helpers import new_worker
from tests.helpers.fakes import StepFakes
from workflows.drift_check import DriftCheckWorkflow


@pytest.fixture
def fakes() -> StepFakes:
    return StepFakes()


@pytest.fixture
async def worker(time_skipping_env, fakes) -> AsyncIterator[Worker]:
    async with new_worker(
        time_skipping_env.client, DriftCheckWorkflow, activities=fakes.all()
    ) as w:
        yield w


async def start(env, worker: Worker, policy: DriftPolicy, **fields) -> WorkflowHandle:
    return await env.client.start_workflow(
        DriftCheckWorkflow.run,
        DriftCheckInput(environment=load_environment("staging"), policy=policy, **fields),
        id=f"drift-check-test-{uuid.uuid4()}",
        task_queue=worker.task_queue,
    )


def statuses(result: DriftCheckResult) -> dict[str, FindingStatus]:
    return {f.step: f.status for f in result.findings}


async def test_in_sync_checks_every_step_read_only(time_skipping_env, worker, fakes):
    result = await (await start(time_skipping_env, worker, DriftPolicy.REMEDIATE)).result()
    assert result.state == DriftState.IN_SYNC
    assert set(statuses(result).values()) == {FindingStatus.IN_SYNC}
    assert fakes.calls == [
        ("ensure_ca_bundle", True),
        ("ensure_db_secret", True),
        ("install_chart", True),
        ("register_namespaces", True),
    ]


async def test_report_lists_drift_and_changes_nothing(time_skipping_env, worker, fakes):
    fakes.drifted = {"ensure_ca_bundle", "register_namespaces"}
    result = await (await start(time_skipping_env, worker, DriftPolicy.REPORT)).result()
    assert result.state == DriftState.DRIFTED
    assert statuses(result) == {
        "ensure_ca_bundle": FindingStatus.DRIFTED,
        "ensure_db_secret": FindingStatus.IN_SYNC,
        "install_chart": FindingStatus.IN_SYNC,
        "register_namespaces": FindingStatus.DRIFTED,
    }
    by_step = {f.step: f for f in result.findings}
    assert [str(d) for d in by_step["register_namespaces"].drift] == [
        "namespace my-ns retention 24h"
    ]
    assert fakes.repairs() == []


async def test_remediate_repairs_only_the_drifted_steps_in_bootstrap_order(
    time_skipping_env, worker, fakes
):
    fakes.drifted = {"install_chart", "ensure_ca_bundle"}
    result = await (await start(time_skipping_env, worker, DriftPolicy.REMEDIATE)).result()
    assert result.state == DriftState.REPAIRED
    assert fakes.repairs() == ["ensure_ca_bundle", "install_chart"]
    by_step = {f.step: f for f in result.findings}
    assert by_step["install_chart"].status == FindingStatus.REPAIRED
    assert [str(d) for d in by_step["install_chart"].drift] == [
        "values differ at: server.replicaCount"
    ]
    assert "upgraded" in by_step["install_chart"].action


async def test_ask_repairs_after_approve(time_skipping_env, worker, fakes):
    fakes.drifted = {"ensure_db_secret"}
    handle = await start(time_skipping_env, worker, DriftPolicy.ASK)
    while (
        await handle.query(DriftCheckWorkflow.progress)
    ).state != DriftState.WAITING_FOR_APPROVAL:
        await asyncio.sleep(0.1)
    assert fakes.repairs() == []
    await handle.execute_update(DriftCheckWorkflow.approve, OperatorRequest(by="erin"))
    result = await handle.result()
    assert result.state == DriftState.REPAIRED
    assert result.approved_by == "erin"
    assert fakes.repairs() == ["ensure_db_secret"]


async def test_ask_without_approval_only_reports_when_the_wait_ends(
    time_skipping_env, worker, fakes
):
    fakes.drifted = {"ensure_db_secret"}
    handle = await start(
        time_skipping_env, worker, DriftPolicy.ASK, approval_timeout=timedelta(hours=2)
    )
    result = await handle.result()  # the test server skips the two hours
    assert result.state == DriftState.DRIFTED
    assert result.approved_by is None
    assert fakes.repairs() == []


async def test_a_check_that_cannot_run_is_reported_and_the_others_still_run(
    time_skipping_env, worker, fakes
):
    fakes.unreadable = {"ensure_db_secret"}
    result = await (await start(time_skipping_env, worker, DriftPolicy.REMEDIATE)).result()
    assert result.state == DriftState.CHECK_FAILED
    failed = next(f for f in result.findings if f.step == "ensure_db_secret")
    assert failed.status == FindingStatus.CHECK_FAILED
    assert "KubernetesForbidden" in failed.error and "refused the read" in failed.error
    assert [step for step, _ in fakes.calls] == [
        "ensure_ca_bundle",
        "ensure_db_secret",
        "install_chart",
        "register_namespaces",
    ]
