"""BootstrapWorkflow's own logic with stand-in activities on the time-skipping test server:
operator waits, retries exhausted, deadlines, approval, abort, pause/resume, dry run.

The activities here are fakes registered under the real names; what they return is built
from the real result models, so the workflow decodes them exactly as in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from adapters.errors import ErrorType, activity_error
from contracts.bootstrap import (
    BootstrapInput,
    BootstrapProgress,
    RunState,
    StepDeadlines,
    StepStatus,
)
from contracts.operator import OperatorRequest
from declared_state.loader import load_environment
from tests.helpers import assert_eventually, new_worker
from tests.helpers.fakes import StepFakes
from workflows.bootstrap import BootstrapWorkflow

# What a fresh environment looks like to the fakes: nothing exists yet but the DB Secret.
FRESH = ("ensure_ca_bundle", "install_chart", "register_namespaces")


@pytest.fixture
def fakes() -> StepFakes:
    return StepFakes(missing=FRESH)


@pytest.fixture
async def worker(time_skipping_env, fakes) -> AsyncIterator[Worker]:
    async with new_worker(time_skipping_env.client, BootstrapWorkflow, activities=fakes.all()) as w:
        yield w


def bootstrap_input(approval: bool = False, dry_run: bool = False, **deadlines) -> BootstrapInput:
    env = load_environment("staging").model_copy(update={"approval_required": approval})
    return BootstrapInput(
        environment=env, requested_by="test", deadlines=StepDeadlines(**deadlines), dry_run=dry_run
    )


async def start(env: WorkflowEnvironment, worker: Worker, input: BootstrapInput) -> WorkflowHandle:
    return await env.client.start_workflow(
        BootstrapWorkflow.run,
        input,
        id=f"provision-test-{uuid.uuid4()}",
        task_queue=worker.task_queue,
    )


async def progress(handle: WorkflowHandle) -> BootstrapProgress:
    return await handle.query(BootstrapWorkflow.progress, result_type=BootstrapProgress)


async def until(handle: WorkflowHandle, predicate, timeout: float = 30) -> BootstrapProgress:
    """The progress, once `predicate(progress)` holds."""

    async def check() -> BootstrapProgress:
        current = await progress(handle)
        assert predicate(current), f"not reached yet: {current}"
        return current

    return await assert_eventually(check, timeout=timeout)


def waiting(p: BootstrapProgress) -> bool:
    return p.state == RunState.WAITING_FOR_OPERATOR


async def test_all_steps_succeed(time_skipping_env, worker, fakes):
    handle = await start(time_skipping_env, worker, bootstrap_input())
    result = await handle.result()
    statuses = {s.name: s.status for s in result.steps}
    assert statuses == {
        "check_database": StepStatus.DONE,
        "check_images": StepStatus.DONE,
        "ensure_ca_bundle": StepStatus.DONE,
        "ensure_db_secret": StepStatus.DONE,
        "approval": StepStatus.SKIPPED,
        "install_chart": StepStatus.DONE,
        "wait_frontend_healthy": StepStatus.DONE,
        "register_namespaces": StepStatus.DONE,
    }
    by_name = {s.name: s for s in result.steps}
    assert by_name["ensure_db_secret"].changed is False
    assert by_name["install_chart"].changed is True
    assert "my-ns created" in by_name["register_namespaces"].summary
    assert result.changed is True
    assert set(fakes.counts().values()) == {1}


async def test_non_retryable_error_waits_for_operator_then_retry_completes(
    time_skipping_env, worker, fakes
):
    fakes.failures["check_database"] = (
        1,
        activity_error(
            "schema of temporal is 1.12, server 1.25.2 needs 1.14", ErrorType.SCHEMA_OUTDATED
        ),
    )
    handle = await start(time_skipping_env, worker, bootstrap_input())
    stuck = await until(handle, waiting)
    step = stuck.step("check_database")
    assert step.status == StepStatus.WAITING_FOR_OPERATOR
    assert step.last_error_type == "SchemaOutdated"
    assert "needs 1.14" in (step.last_error or "")
    assert step.retry_state == "NON_RETRYABLE_FAILURE"
    assert "retry" in (stuck.waiting_for or "")
    # non-retryable: the activity ran once, no retries burned
    assert fakes.counts()["check_database"] == 1
    # ensure_ca_bundle needs nothing of the preflight: it ran at once with it (#19.1)
    assert stuck.step("ensure_ca_bundle").status == StepStatus.DONE
    assert stuck.step("install_chart").status == StepStatus.PENDING

    await handle.execute_update(
        BootstrapWorkflow.retry, OperatorRequest(by="alice", reason="schema updated")
    )
    result = await handle.result()
    check = next(s for s in result.steps if s.name == "check_database")
    assert check.status == StepStatus.DONE
    assert check.attempts == 2
    assert check.operator_actions == ("retry by alice: schema updated",)


async def test_retries_exhausted_by_deadline_wait_then_skip(time_skipping_env, worker, fakes):
    # A retryable error forever: only the step's deadline stops the retries.
    fakes.failures["ensure_ca_bundle"] = (
        -1,
        ApplicationError(
            "Kubernetes API answered 503", type=ErrorType.KUBERNETES_UNAVAILABLE.value
        ),
    )
    handle = await start(
        time_skipping_env, worker, bootstrap_input(ensure_ca_bundle=timedelta(minutes=3))
    )
    # Skip past the step's 3-minute deadline; the retries in between happen in skipped time.
    await time_skipping_env.sleep(timedelta(minutes=4))
    stuck = await until(handle, waiting, timeout=60)
    step = stuck.step("ensure_ca_bundle")
    assert step.status == StepStatus.WAITING_FOR_OPERATOR
    assert step.last_error_type == "KubernetesUnavailable"
    assert step.retry_state == "TIMEOUT", "the deadline, not the error type, ended the retries"
    assert "503" in (step.last_error or "")
    assert fakes.counts()["ensure_ca_bundle"] > 2, "the retry policy retried before giving up"

    await handle.execute_update(BootstrapWorkflow.skip, OperatorRequest(by="bob"))
    result = await handle.result()
    skipped = next(s for s in result.steps if s.name == "ensure_ca_bundle")
    assert skipped.status == StepStatus.SKIPPED
    assert skipped.summary == "skipped by bob"
    assert fakes.counts()["register_namespaces"] == 1


async def test_approval_gate_holds_install_until_approved(time_skipping_env, worker, fakes):
    handle = await start(time_skipping_env, worker, bootstrap_input(approval=True))
    gated = await until(handle, waiting)
    assert gated.step("approval").status == StepStatus.WAITING_FOR_OPERATOR
    assert (gated.waiting_for or "").startswith("approval")
    assert fakes.counts()["install_chart"] == 0
    # retry/skip do not open the gate: refused, and the sender is told what the run waits for
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(BootstrapWorkflow.skip, OperatorRequest(by="mallory"))
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.message == (
        "skip is not possible now: it waits for: approval before install_chart: send "
        "`approve`; it takes: approve, abort"
    )
    assert (await progress(handle)).step("approval").status == StepStatus.WAITING_FOR_OPERATOR

    await handle.execute_update(BootstrapWorkflow.approve, OperatorRequest(by="carol"))
    result = await handle.result()
    assert result.approved_by == "carol"
    assert fakes.counts()["install_chart"] == 1


async def test_abort_fails_the_run_with_what_was_done(time_skipping_env, worker, fakes):
    fakes.failures["install_chart"] = (
        -1,
        activity_error("values don't meet the specifications", ErrorType.HELM_BAD_VALUES),
    )
    handle = await start(time_skipping_env, worker, bootstrap_input())
    await until(handle, waiting)
    await handle.execute_update(BootstrapWorkflow.abort, OperatorRequest(by="dave"))
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "BootstrapAborted"
    assert "check_database done" in cause.message
    assert "install_chart failed" in cause.message
    assert "register_namespaces pending" in cause.message
    assert fakes.counts()["wait_frontend_healthy"] == 0


async def test_pause_holds_between_steps_and_resume_goes_on(time_skipping_env, worker, fakes):
    fakes.hold["check_database"] = asyncio.Event()
    handle = await start(time_skipping_env, worker, bootstrap_input())
    await until(handle, lambda p: p.step("check_database").status == StepStatus.RUNNING)
    await handle.execute_update(BootstrapWorkflow.pause)
    fakes.hold["check_database"].set()
    paused = await until(handle, lambda p: p.step("check_database").status == StepStatus.DONE)
    assert paused.state == RunState.PAUSED
    await asyncio.sleep(0.5)
    # the preflight's group (ensure_ca_bundle, ensure_db_secret ran with it) ended; the next
    # group waits for resume
    assert (await progress(handle)).step("install_chart").status == StepStatus.PENDING
    assert fakes.counts()["install_chart"] == 0

    await handle.execute_update(BootstrapWorkflow.resume)
    result = await handle.result()
    assert result.state == RunState.DONE


async def test_dry_run_runs_the_read_only_preflight_only(time_skipping_env, worker, fakes):
    handle = await start(time_skipping_env, worker, bootstrap_input(dry_run=True))
    result = await handle.result()
    assert fakes.counts() == Counter({"check_database": 1, "check_images": 1})
    assert result.changed is False
    preflight = ("check_database", "check_images")
    assert [s.status for s in result.steps if s.name not in preflight] == [StepStatus.SKIPPED] * 6


async def test_two_steps_of_a_group_fail_both_show_it_and_take_decisions_in_order(
    time_skipping_env, worker, fakes
):
    """check_database and ensure_db_secret run at once (#19.1) and both fail: both show
    their error and wait, a retry goes to the first in list order, then to the second."""
    fakes.failures["check_database"] = (
        1,
        activity_error("schema of temporal is 1.12", ErrorType.SCHEMA_OUTDATED),
    )
    fakes.failures["ensure_db_secret"] = (
        1,
        activity_error("the password source is empty", ErrorType.PASSWORD_SOURCE_INVALID),
    )
    handle = await start(time_skipping_env, worker, bootstrap_input())
    stuck = await until(handle, waiting)
    assert stuck.step("ensure_ca_bundle").status == StepStatus.DONE
    for name, error in (
        ("check_database", "SchemaOutdated"),
        ("ensure_db_secret", "PasswordSourceInvalid"),
    ):
        assert stuck.step(name).status == StepStatus.WAITING_FOR_OPERATOR
        assert stuck.step(name).last_error_type == error
    assert (stuck.waiting_for or "").startswith("check_database failed")

    await handle.execute_update(BootstrapWorkflow.retry, OperatorRequest(by="dba"))
    second = await until(
        handle, lambda p: waiting(p) and (p.waiting_for or "").startswith("ensure_db_secret")
    )
    assert second.step("check_database").status == StepStatus.DONE
    assert fakes.counts()["install_chart"] == 0

    await handle.execute_update(BootstrapWorkflow.retry, OperatorRequest(by="sec"))
    result = await handle.result()
    by_name = {s.name: s for s in result.steps}
    assert by_name["check_database"].operator_actions == ("retry by dba",)
    assert by_name["ensure_db_secret"].operator_actions == ("retry by sec",)
    assert by_name["ensure_db_secret"].attempts == 2
    assert result.state == RunState.DONE
