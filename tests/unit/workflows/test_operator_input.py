"""Operator input never breaks a run and is never dropped without a trace (issue #10, items
1 and 2), on the time-skipping test server with the shared fake activities.

Signals are sent here by name with raw payloads on purpose: what is tested is what the
temporal CLI can put on the wire (two inputs, a bare string, wrong types, a misspelt name),
which a typed reference cannot express.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from adapters.errors import ErrorType, activity_error
from contracts.bootstrap import BootstrapInput, BootstrapProgress, RunState, StepStatus
from contracts.drift_check import DriftCheckInput, DriftState
from contracts.operator import OperatorAction, OperatorRequest
from declared_state.loader import load_environment
from declared_state.models import DriftPolicy
from tests.helpers import assert_eventually, new_worker
from tests.helpers.fakes import StepFakes
from workflows.bootstrap import BootstrapWorkflow
from workflows.drift_check import DriftCheckWorkflow

QUERY_WITHIN = timedelta(seconds=5)


@pytest.fixture
def fakes() -> StepFakes:
    return StepFakes(missing=("install_chart",))


@pytest.fixture
async def worker(time_skipping_env, fakes) -> AsyncIterator[Worker]:
    async with new_worker(
        time_skipping_env.client, BootstrapWorkflow, DriftCheckWorkflow, activities=fakes.all()
    ) as w:
        yield w


async def start(env, worker: Worker, approval: bool = False) -> WorkflowHandle:
    environment = load_environment("staging").model_copy(update={"approval_required": approval})
    return await env.client.start_workflow(
        BootstrapWorkflow.run,
        BootstrapInput(environment=environment, requested_by="test"),
        id=f"provision-test-{uuid.uuid4()}",
        task_queue=worker.task_queue,
    )


async def progress(handle: WorkflowHandle) -> BootstrapProgress:
    # A short RPC timeout: a run whose workflow task fails never answers a query.
    return await handle.query(
        BootstrapWorkflow.progress, result_type=BootstrapProgress, rpc_timeout=QUERY_WITHIN
    )


async def until(handle: WorkflowHandle, predicate) -> BootstrapProgress:
    async def check() -> BootstrapProgress:
        current = await progress(handle)
        assert predicate(current), f"not reached yet: {current}"
        return current

    return await assert_eventually(check, timeout=30)


def step_waits(p: BootstrapProgress) -> bool:
    return p.state == RunState.WAITING_FOR_OPERATOR and OperatorAction.RETRY in p.allowed_actions


async def waiting_check_database(env, worker, fakes) -> WorkflowHandle:
    fakes.failures["check_database"] = (
        1,
        activity_error("schema of temporal is 1.12", ErrorType.SCHEMA_OUTDATED),
    )
    handle = await start(env, worker)
    await until(handle, step_waits)
    return handle


async def test_retry_signal_with_two_inputs_is_refused_and_the_run_keeps_answering(
    time_skipping_env, worker, fakes
):
    """Item 1: `temporal workflow signal --name retry --input A --input B` used to fail
    every workflow task (TypeError in the handler): no query answered, abort never ended."""
    handle = await waiting_check_database(time_skipping_env, worker, fakes)
    await handle.signal("retry", args=[{"by": "alice"}, {"by": "bob"}])

    seen = await until(handle, lambda p: len(p.refused) == 1)
    assert seen.refused[0].name == "retry"
    assert seen.refused[0].why.startswith("payload refused: 2 inputs were sent; expected one")
    assert seen.step("check_database").status == StepStatus.WAITING_FOR_OPERATOR
    assert fakes.counts()["check_database"] == 1, "a refused retry must not run the step"

    receipt = await handle.execute_update(BootstrapWorkflow.retry, OperatorRequest(by="carol"))
    assert receipt.effect == "check_database runs again"
    result = await handle.result()
    assert result.state == RunState.DONE
    check = next(s for s in result.steps if s.name == "check_database")
    assert check.operator_actions == ("retry by carol",)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"by": 123}, "by: input should be a valid string"),
        ({"by": "zed-7", "extra": 1}, "extra: extra inputs are not permitted"),
        ("zed-7", "the input is a bare string"),
        ([{"by": "zed-7"}], "the input is a list"),
        (7, "the input is a number"),
    ],
    ids=["wrong-type", "extra-key", "bare-string", "list", "number"],
)
async def test_an_approval_payload_the_model_refuses_is_recorded_not_lost(
    time_skipping_env, worker, fakes, payload, why
):
    """Item 2: a refused payload used to be dropped silently while the CLI said the signal
    succeeded, so an approval was lost without a trace."""
    handle = await start(time_skipping_env, worker, approval=True)
    await until(handle, lambda p: p.step("approval").status == StepStatus.WAITING_FOR_OPERATOR)
    await handle.signal("approve", payload)

    seen = await until(handle, lambda p: len(p.refused) == 1)
    assert seen.refused[0].name == "approve"
    assert why in seen.refused[0].why, seen.refused[0].why
    assert seen.approved_by is None
    assert "zed-7" not in seen.refused[0].why, "the refusal names the shape, never the values"

    await handle.signal(BootstrapWorkflow.approve_signal, {"by": "dana"})
    result = await handle.result()
    assert result.approved_by == "dana"


async def test_an_unknown_signal_name_is_recorded_with_a_hint(time_skipping_env, worker, fakes):
    """Item 2: `approv` used to be buffered by the SDK without any trace."""
    handle = await start(time_skipping_env, worker, approval=True)
    await until(handle, lambda p: p.step("approval").status == StepStatus.WAITING_FOR_OPERATOR)
    await handle.signal("approv", {"by": "erin"})

    seen = await until(handle, lambda p: len(p.refused) == 1)
    assert seen.refused[0].name == "approv"
    assert seen.refused[0].why == (
        "unknown signal 'approv' (did you mean approve?); this run takes: approve, retry, "
        "skip, abort, pause, resume"
    )
    await handle.execute_update(BootstrapWorkflow.abort, OperatorRequest(by="erin"))


async def test_a_signal_the_run_cannot_take_now_is_recorded_with_what_it_waits_for(
    time_skipping_env, worker, fakes
):
    """A well-formed `retry` while no step waits used to be ignored without a word."""
    handle = await start(time_skipping_env, worker, approval=True)
    await until(handle, lambda p: p.step("approval").status == StepStatus.WAITING_FOR_OPERATOR)
    await handle.signal(BootstrapWorkflow.retry_signal, {"by": "frank"})

    seen = await until(handle, lambda p: len(p.refused) == 1)
    assert seen.refused[0].why == (
        "retry is not possible now: it waits for: approval before install_chart: send "
        "`approve`; it takes: approve, abort"
    )
    await handle.execute_update(BootstrapWorkflow.abort, OperatorRequest(by="frank"))


async def test_updates_are_refused_with_what_the_run_waits_for(time_skipping_env, worker, fakes):
    handle = await start(time_skipping_env, worker, approval=True)
    await until(handle, lambda p: p.step("approval").status == StepStatus.WAITING_FOR_OPERATOR)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(BootstrapWorkflow.retry, OperatorRequest(by="gina"))
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "ActionRefused"
    assert "it waits for: approval before install_chart" in refused.value.cause.message

    # A payload the model refuses is refused before the validator, by the SDK's decoding.
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update("approve", {"by": 123})

    receipt = await handle.execute_update(BootstrapWorkflow.approve, OperatorRequest(by="gina"))
    assert (receipt.action, receipt.by, receipt.effect) == (
        OperatorAction.APPROVE,
        "gina",
        "the approval gate opens",
    )
    result = await handle.result()
    assert result.approved_by == "gina"


async def test_refused_inputs_are_kept_to_the_newest_twenty(time_skipping_env, worker, fakes):
    handle = await start(time_skipping_env, worker, approval=True)
    await until(handle, lambda p: p.step("approval").status == StepStatus.WAITING_FOR_OPERATOR)
    for n in range(25):
        await handle.signal(f"noise-{n}")
    seen = await until(handle, lambda p: p.refused and p.refused[-1].name == "noise-24")
    assert [r.name for r in seen.refused] == [f"noise-{n}" for n in range(5, 25)]
    # ... and says how many it dropped from the list (it did so silently, #20.6).
    assert seen.refused_dropped == 5
    await handle.execute_update(BootstrapWorkflow.abort, OperatorRequest(by="test"))


@pytest.mark.parametrize(
    "payload",
    [{"by": 123}, {"by": "zed-7", "extra": 1}, "zed-7", [{"by": "zed-7"}], 7, {"by": "x" * 201}],
    ids=["wrong-type", "extra-key", "bare-string", "list", "number", "too-long"],
)
async def test_an_update_with_a_wrong_payload_is_refused_as_the_signal_is(
    time_skipping_env, worker, fakes, payload
):
    """#20.7: an update sent with the temporal CLI with a wrong payload was refused with the
    SDK's raw decoding text, marked retryable. It gets the signal path's refusal, final."""
    handle = await start(time_skipping_env, worker, approval=True)
    await until(handle, lambda p: p.step("approval").status == StepStatus.WAITING_FOR_OPERATOR)
    await handle.signal("approve", payload)
    (signalled,) = (await until(handle, lambda p: len(p.refused) == 1)).refused

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("approve", payload)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.message, cause.type, cause.non_retryable) == (
        signalled.why,
        "ActionRefused",
        True,
    )
    assert (await progress(handle)).approved_by is None
    # Two inputs are refused the same way.
    with pytest.raises(WorkflowUpdateFailedError) as two:
        await handle.execute_update("approve", args=[{"by": "a"}, {"by": "b"}])
    assert isinstance(two.value.cause, ApplicationError) and two.value.cause.non_retryable
    assert two.value.cause.message.startswith("payload refused: 2 inputs were sent")
    # A bare update (no input) and a well-formed one still work.
    receipt = await handle.execute_update("approve", {"by": "hana"})
    assert receipt["by"] == "hana"
    assert (await handle.result()).approved_by == "hana"


async def test_drift_check_approve_refused_unless_it_waits(time_skipping_env, worker, fakes):
    fakes.missing.clear()
    fakes.drifted = {"ensure_db_secret"}
    fakes.hold["ensure_ca_bundle"] = asyncio.Event()
    handle = await time_skipping_env.client.start_workflow(
        DriftCheckWorkflow.run,
        DriftCheckInput(environment=load_environment("staging"), policy=DriftPolicy.ASK),
        id=f"drift-check-test-{uuid.uuid4()}",
        task_queue=worker.task_queue,
    )
    with pytest.raises(WorkflowUpdateFailedError) as early:
        await handle.execute_update(DriftCheckWorkflow.approve, OperatorRequest(by="hal"))
    assert isinstance(early.value.cause, ApplicationError)
    assert early.value.cause.message == (
        "approve is not possible now: the check is checking, not waiting for approval; "
        "it takes: no operator action"
    )
    await handle.signal("approve", "hal")
    await handle.signal("retry")
    fakes.hold["ensure_ca_bundle"].set()

    async def waiting():
        current = await handle.query(DriftCheckWorkflow.progress, rpc_timeout=QUERY_WITHIN)
        assert current.state == DriftState.WAITING_FOR_APPROVAL, current
        return current

    seen = await assert_eventually(waiting)
    assert [(r.name, r.why.split(";")[0]) for r in seen.refused] == [
        ("approve", "payload refused: the input is a bare string"),
        ("retry", "unknown signal 'retry'"),
    ]
    await handle.signal(DriftCheckWorkflow.approve_signal, {"by": "hal"})
    result = await handle.result()
    assert result.state == DriftState.REPAIRED and result.approved_by == "hal"


async def test_every_action_is_an_update_and_a_signal_of_the_same_name(
    time_skipping_env, worker, fakes
):
    """The naming the temporal CLI and the Web UI see (`__temporal_workflow_metadata`)."""
    handle = await start(time_skipping_env, worker, approval=True)
    await until(handle, lambda p: p.step("approval").status == StepStatus.WAITING_FOR_OPERATOR)
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    definition = metadata.definition
    actions = {a.value for a in OperatorAction}
    # "" is the dynamic handler that records unknown signal names
    assert {s.name for s in definition.signal_definitions} == actions | {""}
    assert {u.name for u in definition.update_definitions} == actions | {"redeclare"}
    assert {q.name for q in definition.query_definitions} >= {"progress"}
    await handle.execute_update(BootstrapWorkflow.abort, OperatorRequest(by="test"))
