"""Re-record the workflow histories the replay test checks (run by hand, then commit the JSON).

    .venv/bin/python -m tests.histories.record_histories [bootstrap] [drift] [upgrade]
        [live-drift] [operator] [at-once] [redeclare-at-gate] [notify] [left-alone]
        # default: all nine

Record again only on purpose: a history recorded before a change is what proves the change
does not break workflows that are already running. The files a previous release of the
workflows recorded stay as they are (the "previous release" fixtures: `replay-upgrade.json`
planned inline, before PLAN_RECORDED_PATCH); a change behind `workflow.patched` records
its histories under new names beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from pathlib import Path

from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from adapters.errors import ErrorType, activity_error
from contracts.bootstrap import BootstrapInput, Redeclaration, RunState
from contracts.drift_check import DriftCheckInput, DriftState
from contracts.operator import OperatorRequest
from contracts.upgrade import UpgradeInput
from declared_state.loader import load_environment
from declared_state.models import (
    ChartSpec,
    DriftPolicy,
    NotificationsSpec,
    UndeclaredNamespaces,
    Webhook,
)
from tests.helpers import assert_eventually, new_worker
from tests.helpers.fakes import StepFakes
from tests.helpers.webhook_receiver import webhook_receiver
from workflows.bootstrap import BootstrapWorkflow
from workflows.drift_check import DriftCheckWorkflow
from workflows.upgrade import UpgradeWorkflow

HERE = Path(__file__).resolve().parent
FRESH = ("ensure_ca_bundle", "install_chart", "register_namespaces")


def bootstrap_input(approval: bool = False) -> BootstrapInput:
    env = load_environment("staging").model_copy(update={"approval_required": approval})
    return BootstrapInput(environment=env, requested_by="recorder")


async def waiting(handle: WorkflowHandle, query=BootstrapWorkflow.progress, on: str = "") -> None:
    """Until the run waits for an operator (on something whose description names `on`)."""

    async def check() -> None:
        progress = await handle.query(query)
        assert progress.state == RunState.WAITING_FOR_OPERATOR
        assert on in (progress.waiting_for or "")

    await assert_eventually(check)


async def main(which: set[str]) -> None:
    path = shutil.which("temporal-test-server", path=str(Path(sys.executable).parent))
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=pydantic_data_converter
    )
    if "bootstrap" in which:
        await record_bootstrap(env)
    if "drift" in which:
        await record_drift_checks(env)
    if "upgrade" in which:
        await record_upgrade(env)
    if "live-drift" in which:
        await record_live_drift_check(env)
    if "operator" in which:
        await record_operator_input(env)
    if "at-once" in which:
        await record_at_once(env)
    if "redeclare-at-gate" in which:
        await record_redeclare_at_gate(env)
    if "notify" in which:
        await record_notify(env)
    if "left-alone" in which:
        await record_left_alone(env)
    await env.shutdown()


async def record_bootstrap(env: WorkflowEnvironment) -> None:
    fakes = StepFakes(missing=FRESH)
    async with new_worker(env.client, BootstrapWorkflow, activities=fakes.all()) as worker:
        # 1. every step succeeds
        handle = await env.client.start_workflow(
            BootstrapWorkflow.run,
            bootstrap_input(),
            id="replay-all-steps",
            task_queue=worker.task_queue,
        )
        await handle.result()
        await save(handle)
        # 2. stale schema: waits for an operator, then `retry`
        fakes.failures["check_database"] = (
            1,
            activity_error("schema outdated", ErrorType.SCHEMA_OUTDATED),
        )
        handle = await env.client.start_workflow(
            BootstrapWorkflow.run,
            bootstrap_input(),
            id="replay-retry",
            task_queue=worker.task_queue,
        )
        await waiting(handle)
        await handle.signal(BootstrapWorkflow.retry_signal, OperatorRequest(by="dba"))
        await handle.result()
        await save(handle)
        # 3. approval gate, then abort
        handle = await env.client.start_workflow(
            BootstrapWorkflow.run,
            bootstrap_input(approval=True),
            id="replay-abort",
            task_queue=worker.task_queue,
        )
        await waiting(handle)
        await handle.signal(BootstrapWorkflow.abort_signal, OperatorRequest(by="cab"))
        with contextlib.suppress(WorkflowFailureError):  # the abort is the recorded outcome
            await handle.result()
        await save(handle)


async def record_drift_checks(env: WorkflowEnvironment) -> None:
    fakes = StepFakes()
    async with new_worker(env.client, DriftCheckWorkflow, activities=fakes.all()) as worker:
        staging = load_environment("staging")
        # 4. drift in two steps, remediated
        fakes.drifted = {"ensure_ca_bundle", "install_chart"}
        handle = await env.client.start_workflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(environment=staging, policy=DriftPolicy.REMEDIATE),
            id="replay-drift-remediate",
            task_queue=worker.task_queue,
        )
        await handle.result()
        await save(handle)
        # 5. policy ask: approved while waiting
        fakes.drifted = {"register_namespaces"}
        handle = await env.client.start_workflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(environment=staging, policy=DriftPolicy.ASK),
            id="replay-drift-ask",
            task_queue=worker.task_queue,
        )
        while (await handle.query(DriftCheckWorkflow.progress)).state != (
            DriftState.WAITING_FOR_APPROVAL
        ):
            await asyncio.sleep(0.1)
        await handle.signal(DriftCheckWorkflow.approve_signal, OperatorRequest(by="oncall"))
        await handle.result()
        await save(handle)


async def record_operator_input(env: WorkflowEnvironment) -> None:
    """Operator input as the starter sends it (updates) and as a careless CLI user might
    (a malformed and an unknown signal), and a declaration handed to a waiting run."""
    fakes = StepFakes(missing=FRESH)
    async with new_worker(env.client, BootstrapWorkflow, activities=fakes.all()) as worker:
        # 6. a failed step: a malformed retry signal, an unknown one, a refused update, then
        #    a new declaration (redeclare) and the gate approved by update
        fakes.failures["check_database"] = (
            1,
            activity_error("port refused", ErrorType.CONFIGURATION_MISMATCH),
        )
        first = bootstrap_input(approval=True)
        handle = await env.client.start_workflow(
            BootstrapWorkflow.run, first, id="replay-operator-input", task_queue=worker.task_queue
        )
        await waiting(handle)
        await handle.signal("retry", args=[{"by": "a"}, {"by": "b"}])
        await handle.signal("approv", {"by": "a"})
        with contextlib.suppress(WorkflowUpdateFailedError):
            await handle.execute_update(BootstrapWorkflow.pause, OperatorRequest(by="a"))
        fixed = first.environment.model_copy(
            update={"rds": first.environment.rds.model_copy(update={"port": 3307})}
        )
        await handle.execute_update(
            BootstrapWorkflow.redeclare, Redeclaration(environment=fixed, by="dba")
        )
        await waiting(handle)  # the approval gate
        await handle.execute_update(BootstrapWorkflow.approve, OperatorRequest(by="cab"))
        await handle.result()
        await save(handle)


async def record_redeclare_at_gate(env: WorkflowEnvironment) -> None:
    """A declaration handed over while the approval gate waits (REDECLARE_AT_GATE): the gate
    asks again, then is approved."""
    fakes = StepFakes(missing=FRESH)
    async with new_worker(env.client, BootstrapWorkflow, activities=fakes.all()) as worker:
        first = bootstrap_input(approval=True)
        handle = await env.client.start_workflow(
            BootstrapWorkflow.run,
            first,
            id="replay-redeclare-at-gate",
            task_queue=worker.task_queue,
        )
        await waiting(handle, on="approval")
        fixed = first.environment.model_copy(
            update={"rds": first.environment.rds.model_copy(update={"port": 3307})}
        )
        await handle.execute_update(
            BootstrapWorkflow.redeclare, Redeclaration(environment=fixed, by="dba")
        )
        await waiting(handle, on="approval")
        await handle.execute_update(BootstrapWorkflow.approve, OperatorRequest(by="cab"))
        await handle.result()
        await save(handle)


async def record_notify(env: WorkflowEnvironment) -> None:
    """Webhooks declared (NOTIFY_PATCH): a wait for approval told, approved; a drift check
    that finds drift told (a receiver on 127.0.0.1; the URL only in this process's env)."""
    webhooks = NotificationsSpec(webhooks=(Webhook(name="ops", url_from_env="RECORDER_HOOK"),))
    fakes = StepFakes(missing=FRESH)
    with webhook_receiver() as receiver:
        os.environ["RECORDER_HOOK"] = receiver.url
        async with new_worker(
            env.client, BootstrapWorkflow, DriftCheckWorkflow, activities=fakes.all()
        ) as worker:
            run = bootstrap_input(approval=True)
            run = run.model_copy(
                update={
                    "environment": run.environment.model_copy(update={"notifications": webhooks})
                }
            )
            handle = await env.client.start_workflow(
                BootstrapWorkflow.run, run, id="replay-notify-waiting", task_queue=worker.task_queue
            )
            await waiting(handle, on="approval")
            await assert_eventually(_told(receiver, 1))
            await handle.execute_update(BootstrapWorkflow.approve, OperatorRequest(by="cab"))
            await handle.result()
            await save(handle)
            fakes.drifted = {"install_chart"}
            drift = await env.client.start_workflow(
                DriftCheckWorkflow.run,
                DriftCheckInput(environment=run.environment, policy=DriftPolicy.REPORT),
                id="replay-notify-drift",
                task_queue=worker.task_queue,
            )
            await drift.result()
            await save(drift)
        assert [p.body["event"] for p in receiver.accepted()] == ["waiting", "drift_found"]


def _told(receiver, n: int):
    async def check() -> None:
        assert len(receiver.accepted()) == n

    return check


async def record_upgrade(env: WorkflowEnvironment) -> None:
    fakes = StepFakes()
    async with new_worker(env.client, UpgradeWorkflow, activities=fakes.all()) as worker:
        # 6. two hops with approval each; hop 1's helm step fails, waits, and is retried
        staging = load_environment("staging").model_copy(
            update={"approval_required": True, "chart": ChartSpec(version="0.63.0")}
        )
        fakes.failures["install_chart"] = (
            -1,
            activity_error("the chart rejected the values", ErrorType.HELM_BAD_VALUES),
        )
        handle = await env.client.start_workflow(
            UpgradeWorkflow.run,
            UpgradeInput(environment=staging, requested_by="recorder"),
            id="replay-upgrade-plan-recorded",
            task_queue=worker.task_queue,
        )
        await waiting(handle, UpgradeWorkflow.progress, on="before hop 1")
        await handle.signal(UpgradeWorkflow.approve_signal, OperatorRequest(by="cab"))
        await waiting(handle, UpgradeWorkflow.progress, on="hop 1: install_chart failed")
        fakes.failures.pop("install_chart")
        await handle.signal(UpgradeWorkflow.retry_signal, OperatorRequest(by="ops"))
        await waiting(handle, UpgradeWorkflow.progress, on="before hop 2")
        await handle.signal(UpgradeWorkflow.approve_signal, OperatorRequest(by="cab"))
        await handle.result()
        await save(handle)
    # 7. a run that waits at hop 1's approval (the plan recorded, nothing approved yet), on
    #    a cluster at 1.25.2 again: the replay test changes the version tables under it
    async with new_worker(env.client, UpgradeWorkflow, activities=StepFakes().all()) as worker:
        handle = await env.client.start_workflow(
            UpgradeWorkflow.run,
            UpgradeInput(environment=staging, requested_by="recorder"),
            id="replay-upgrade-waiting-approval",
            task_queue=worker.task_queue,
        )
        await waiting(handle, UpgradeWorkflow.progress, on="before hop 1")
        await save(handle)
        await handle.terminate("recorded while waiting")


async def record_live_drift_check(env: WorkflowEnvironment) -> None:
    """7. live objects and the cluster checked (LIVE_CHECKS_PATCH): a hand edit re-applied
    with the release in one install_chart run, one the repair leaves, Temporal drift that
    remediate cannot repair."""
    fakes = StepFakes(drifted={"install_chart", "check_live_objects", "check_temporal"})
    fakes.stubborn = True
    async with new_worker(env.client, DriftCheckWorkflow, activities=fakes.all()) as worker:
        handle = await env.client.start_workflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(environment=load_environment("staging"), policy=DriftPolicy.REMEDIATE),
            id="replay-drift-live-remediate",
            task_queue=worker.task_queue,
        )
        await handle.result()
        await save(handle)


async def record_at_once(env: WorkflowEnvironment) -> None:
    """8. steps that need nothing from each other run at once (CONCURRENT_STEPS_PATCH,
    CONCURRENT_CHECKS_PATCH): a bootstrap whose ensure_db_secret fails while its group
    runs, waits and is retried; a drift check whose dry runs run at once, remediated."""
    fakes = StepFakes(missing=FRESH)
    async with new_worker(
        env.client, BootstrapWorkflow, DriftCheckWorkflow, activities=fakes.all()
    ) as worker:
        fakes.failures["ensure_db_secret"] = (
            1,
            activity_error("the password source is empty", ErrorType.PASSWORD_SOURCE_INVALID),
        )
        handle = await env.client.start_workflow(
            BootstrapWorkflow.run,
            bootstrap_input(),
            id="replay-at-once",
            task_queue=worker.task_queue,
        )
        await waiting(handle, on="ensure_db_secret failed")
        await handle.execute_update(BootstrapWorkflow.retry, OperatorRequest(by="ops"))
        await handle.result()
        await save(handle)
        fakes.drifted = {"ensure_ca_bundle", "install_chart", "check_live_objects"}
        handle = await env.client.start_workflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(environment=load_environment("staging"), policy=DriftPolicy.REMEDIATE),
            id="replay-drift-at-once",
            task_queue=worker.task_queue,
        )
        await handle.result()
        await save(handle)


async def record_left_alone(env: WorkflowEnvironment) -> None:
    """9. a namespace nobody declared under `undeclared_namespaces: report` (LEFT_ALONE_PATCH):
    remediate repairs the declared namespace's retention, leaves the other one, and the
    step ends drifted, not "not restored"."""
    fakes = StepFakes(drifted={"register_namespaces"})
    fakes.undeclared = ("by-hand",)
    staging = load_environment("staging").model_copy(
        update={"undeclared_namespaces": UndeclaredNamespaces.REPORT}
    )
    async with new_worker(env.client, DriftCheckWorkflow, activities=fakes.all()) as worker:
        handle = await env.client.start_workflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(environment=staging, policy=DriftPolicy.REMEDIATE),
            id="replay-drift-left-alone",
            task_queue=worker.task_queue,
        )
        assert (await handle.result()).state == DriftState.DRIFTED
        await save(handle)


async def save(handle) -> None:
    history = await handle.fetch_history()
    (HERE / f"{handle.id}.json").write_text(history.to_json())
    print(f"recorded {handle.id}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(
        main(
            set(sys.argv[1:])
            or {
                "bootstrap",
                "drift",
                "upgrade",
                "live-drift",
                "operator",
                "at-once",
                "redeclare-at-gate",
                "notify",
                "left-alone",
            }
        )
    )
    sys.stdout.flush()
    # Skip interpreter finalization, where the SDK's runtime can abort (PyGILState_Release).
    os._exit(0)
