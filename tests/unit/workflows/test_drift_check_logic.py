"""DriftCheckWorkflow's own logic with stand-in activities on the time-skipping test server:
report, remediate, ask (approved / not approved in time), a check that cannot run, drift
nothing can repair, the live objects repaired by install_chart re-applying, a difference
the repair leaves, what could not be checked, ignored differences.

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
from declared_state.models import ChartSpec, DriftPolicy, UndeclaredNamespaces
from tests.helpers import new_worker
from tests.helpers.fakes import StepFakes
from workflows.drift_check import DriftCheckWorkflow

CHECKED_IN_ORDER = [
    "ensure_ca_bundle",
    "ensure_db_secret",
    "install_chart",
    "check_live_objects",
    "register_namespaces",
    "check_temporal",
]


@pytest.fixture
def fakes() -> StepFakes:
    return StepFakes()


@pytest.fixture
async def worker(time_skipping_env, fakes) -> AsyncIterator[Worker]:
    async with new_worker(
        time_skipping_env.client, DriftCheckWorkflow, activities=fakes.all()
    ) as w:
        yield w


async def start(
    env, worker: Worker, policy: DriftPolicy, environment=None, **fields
) -> WorkflowHandle:
    environment = environment or load_environment("staging")
    return await env.client.start_workflow(
        DriftCheckWorkflow.run,
        DriftCheckInput(environment=environment, policy=policy, **fields),
        id=f"drift-check-test-{uuid.uuid4()}",
        task_queue=worker.task_queue,
    )


def statuses(result: DriftCheckResult) -> dict[str, FindingStatus]:
    return {f.step: f.status for f in result.findings}


async def test_in_sync_checks_every_step_read_only(time_skipping_env, worker, fakes):
    result = await (await start(time_skipping_env, worker, DriftPolicy.REMEDIATE)).result()
    assert result.state == DriftState.IN_SYNC
    assert set(statuses(result).values()) == {FindingStatus.IN_SYNC}
    # the dry runs run at once (#19.1): called in any order, found in bootstrap order
    assert sorted(fakes.calls) == sorted((step, True) for step in CHECKED_IN_ORDER)
    assert [f.step for f in result.findings] == CHECKED_IN_ORDER
    assert result.records == ()


async def test_report_lists_drift_and_changes_nothing(time_skipping_env, worker, fakes):
    fakes.drifted = {"ensure_ca_bundle", "register_namespaces"}
    result = await (await start(time_skipping_env, worker, DriftPolicy.REPORT)).result()
    assert result.state == DriftState.DRIFTED
    assert statuses(result) == {
        "ensure_ca_bundle": FindingStatus.DRIFTED,
        "ensure_db_secret": FindingStatus.IN_SYNC,
        "install_chart": FindingStatus.IN_SYNC,
        "check_live_objects": FindingStatus.IN_SYNC,
        "register_namespaces": FindingStatus.DRIFTED,
        "check_temporal": FindingStatus.IN_SYNC,
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
    assert fakes.reapplied == 0  # the live objects were as declared
    # each repaired step is checked again before the run says "repaired"
    assert fakes.calls[-2:] == [("ensure_ca_bundle", True), ("install_chart", True)]
    by_step = {f.step: f for f in result.findings}
    assert by_step["install_chart"].status == FindingStatus.REPAIRED
    assert [str(d) for d in by_step["install_chart"].drift] == [
        "values differ at: server.replicaCount"
    ]
    assert "upgraded" in by_step["install_chart"].action


async def test_version_drift_is_reported_and_never_remediated(time_skipping_env, worker, fakes):
    """A cluster behind its declared chart is drift only `upgrade` moves (schema first):
    remediate repairs what it safely can and never re-applies the release for it, not even
    for the live objects' drift that re-applying would otherwise repair."""
    behind = load_environment("staging").model_copy(update={"chart": ChartSpec(version="0.55.0")})
    fakes.drifted = {"ensure_ca_bundle", "check_live_objects", "check_temporal"}
    result = await (
        await start(time_skipping_env, worker, DriftPolicy.REMEDIATE, environment=behind)
    ).result()
    assert result.state == DriftState.DRIFTED
    by_step = {f.step: f for f in result.findings}
    assert by_step["install_chart"].status == FindingStatus.DRIFTED
    assert [d.repairable for d in by_step["install_chart"].drift] == [False]
    assert by_step["check_live_objects"].status == FindingStatus.DRIFTED
    assert by_step["check_temporal"].status == FindingStatus.DRIFTED
    assert by_step["ensure_ca_bundle"].status == FindingStatus.REPAIRED
    assert fakes.repairs() == ["ensure_ca_bundle"], "the release is left to upgrade"
    assert fakes.reapplied == 0


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
    assert sorted(step for step, _ in fakes.calls) == sorted(CHECKED_IN_ORDER)
    assert [f.step for f in result.findings] == CHECKED_IN_ORDER


async def test_drift_nothing_can_repair_is_reported_and_nothing_runs(
    time_skipping_env, worker, fakes
):
    # check_temporal answers changed=False with a finding remediate cannot repair: it is
    # drift all the same, and no step runs for real (nor does `ask` wait for an approval).
    fakes.drifted = {"check_temporal"}
    for policy in (DriftPolicy.REMEDIATE, DriftPolicy.ASK):
        result = await (await start(time_skipping_env, worker, policy)).result()
        assert result.state == DriftState.DRIFTED, policy
        finding = next(f for f in result.findings if f.step == "check_temporal")
        assert finding.status == FindingStatus.DRIFTED
        assert [d.path for d in finding.drift] == ["/curr_version"]
        assert fakes.repairs() == []
        (record,) = result.records
        assert (record.step, record.kind, record.name, record.repairable) == (
            "check_temporal",
            "TemporalSchema",
            "temporal",
            False,
        )
        assert "update-schema" in record.how


async def test_live_objects_and_release_are_repaired_by_one_reapplying_install(
    time_skipping_env, worker, fakes
):
    fakes.drifted = {"install_chart", "check_live_objects"}
    result = await (await start(time_skipping_env, worker, DriftPolicy.REMEDIATE)).result()
    assert result.state == DriftState.REPAIRED
    assert fakes.repairs() == ["install_chart"]  # one helm revision for both
    assert fakes.reapplied == 1
    assert statuses(result)["check_live_objects"] == FindingStatus.REPAIRED
    assert statuses(result)["install_chart"] == FindingStatus.REPAIRED
    # both are looked at again after the repair
    assert fakes.counts()["check_live_objects"] == 2 and fakes.counts()["install_chart"] == 3


async def test_a_difference_the_repair_leaves_is_reported_as_not_restored(
    time_skipping_env, worker, fakes
):
    fakes.drifted = {"check_live_objects"}
    fakes.stubborn = True
    result = await (await start(time_skipping_env, worker, DriftPolicy.REMEDIATE)).result()
    assert fakes.repairs() == ["install_chart"] and fakes.reapplied == 1
    assert result.state == DriftState.REPAIR_FAILED
    finding = next(f for f in result.findings if f.step == "check_live_objects")
    assert finding.status == FindingStatus.NOT_RESTORED
    assert [d.path for d in finding.drift] == ["/spec/template/spec/containers/0/env/4"]
    assert [(r.status, r.path, r.repairable) for r in result.records] == [
        (FindingStatus.NOT_RESTORED, "/spec/template/spec/containers/0/env/4", False)
    ]


async def test_what_could_not_be_checked_is_never_in_sync(time_skipping_env, worker, fakes):
    fakes.partly_unreadable = {"check_live_objects"}
    handle = await start(time_skipping_env, worker, DriftPolicy.REPORT)
    result = await handle.result()
    assert result.state == DriftState.CHECK_FAILED
    finding = next(f for f in result.findings if f.step == "check_live_objects")
    assert finding.status == FindingStatus.CHECK_FAILED
    assert "could not check" in finding.error
    (record,) = result.records
    assert (record.checked, record.repairable) == (False, False)
    assert "forbidden (403)" in record.message
    # the progress query carries the same records as the result
    assert (await handle.query(DriftCheckWorkflow.progress)).records == result.records


async def test_ignored_differences_are_counted_not_drift(time_skipping_env, worker, fakes):
    fakes.ignored_replicas = True
    result = await (await start(time_skipping_env, worker, DriftPolicy.REMEDIATE)).result()
    assert result.state == DriftState.IN_SYNC
    finding = next(f for f in result.findings if f.step == "check_live_objects")
    assert finding.status == FindingStatus.IN_SYNC and finding.ignored == 1
    assert fakes.repairs() == []
    (record,) = result.records
    assert record.ignored and not record.repairable


async def test_a_namespace_nobody_declared_is_drift_under_report_and_never_repaired(
    time_skipping_env, worker, fakes
):
    """#22.1: under `undeclared_namespaces: report` a namespace nobody declared is drift that
    is not repairable; it does not hold back the repair of the step's other differences,
    and after that repair the step is drifted (it is still there), not "not restored"."""
    fakes.undeclared = ("by-hand",)
    fakes.drifted = {"register_namespaces"}
    environment = load_environment("staging").model_copy(
        update={"undeclared_namespaces": UndeclaredNamespaces.REPORT}
    )
    result = await (
        await start(time_skipping_env, worker, DriftPolicy.REMEDIATE, environment)
    ).result()
    assert fakes.repairs() == ["register_namespaces"]  # the retention, repaired
    assert result.state == DriftState.DRIFTED
    finding = next(f for f in result.findings if f.step == "register_namespaces")
    assert finding.status == FindingStatus.DRIFTED
    assert [(r.step, r.path, r.repairable) for r in result.records] == [
        ("register_namespaces", "/temporal_namespaces/by-hand", False)
    ]
    assert "temporal operator namespace delete --namespace by-hand" in result.records[0].how

    # Nothing else differs: nothing runs for real, the check still says drifted.
    fakes.calls.clear()
    alone = await (
        await start(time_skipping_env, worker, DriftPolicy.REMEDIATE, environment)
    ).result()
    assert fakes.repairs() == [] and alone.state == DriftState.DRIFTED


async def test_a_namespace_nobody_declared_is_a_note_under_protect(
    time_skipping_env, worker, fakes
):
    fakes.undeclared = ("by-hand",)
    result = await (await start(time_skipping_env, worker, DriftPolicy.REMEDIATE)).result()
    assert result.state == DriftState.IN_SYNC and result.records == ()
    finding = next(f for f in result.findings if f.step == "register_namespaces")
    assert finding.notes == (
        "namespace by-hand: not declared, left alone (undeclared_namespaces: protect)",
    )
