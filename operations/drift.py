"""Operations on drift checks (`drift-check-<env>`) and their schedule.

`start_check` starts (or attaches to) the hand-started check, `follow_check` yields typed
events until it ends or waits for approval (each step's finding as it arrives), `approve_waiting` approves every check of an
environment that waits (hand-started or scheduled), and `upsert_schedule` /
`delete_schedule` manage the Temporal Schedule. Queries have an RPC timeout and RPC errors
become the typed errors of operations.runs. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from contracts.drift_check import (
    DriftCheckInput,
    DriftCheckResult,
    DriftFinding,
    DriftState,
    drift_check_workflow_id,
    drift_schedule_id,
)
from contracts.operator import OperatorRequest
from declared_state.models import DriftPolicy, Environment
from operations.runs import (
    QUERY_TIMEOUT,
    NoRun,
    OperationError,
    WorkerBack,
    WorkerMissing,
    poll,
    rpc_failure,
    send,
    unanswered,
)
from operations.settings import ClientSettings
from workflows.drift_check import DriftCheckWorkflow

DriftHandle: TypeAlias = WorkflowHandle[DriftCheckWorkflow, DriftCheckResult]


async def start_check(
    client: Client,
    settings: ClientSettings,
    env: Environment,
    *,
    policy: DriftPolicy | None,
    by: str,
) -> DriftHandle:
    """Start `drift-check-<env>` (or attach to the one that runs)."""
    try:
        return await client.start_workflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(environment=env, requested_by=by, policy=policy),
            id=drift_check_workflow_id(env.name),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    except RPCError as exc:
        raise rpc_failure(f"starting {drift_check_workflow_id(env.name)}", exc) from None


async def check_progress(handle: DriftHandle, task_queue: str) -> DriftCheckResult:
    try:
        return await handle.query(DriftCheckWorkflow.progress, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NoRun(f"no drift check {handle.id}: {exc.message}") from None
        raise await unanswered(handle, task_queue, f"its progress query ({exc.message})") from None


@dataclass(frozen=True)
class CheckWaiting:
    """policy ask: drift was found and the check waits for `approve`."""

    progress: DriftCheckResult


@dataclass(frozen=True)
class CheckFinished:
    result: DriftCheckResult


@dataclass(frozen=True)
class StepChecked:
    """One step's finding, as soon as the check has it (#20.3): a check whose later steps
    are slow or failing shows what it found so far instead of nothing until the end."""

    finding: DriftFinding


DriftEvent: TypeAlias = CheckWaiting | CheckFinished | StepChecked | WorkerMissing | WorkerBack


async def follow_check(handle: DriftHandle, task_queue: str) -> AsyncIterator[DriftEvent]:
    """Events until the check ends or waits for approval: each step's finding once, as it
    arrives (the findings of a check that ended between two polls come all at once)."""
    polled = poll(handle, task_queue, lambda: check_progress(handle, task_queue))
    seen: set[str] = set()
    async with aclosing(polled):
        async for current in polled:
            if isinstance(current, WorkerMissing | WorkerBack):
                yield current
                continue
            for finding in current.findings:
                if finding.step not in seen:
                    seen.add(finding.step)
                    yield StepChecked(finding)
            if current.state == DriftState.WAITING_FOR_APPROVAL:
                yield CheckWaiting(current)
                return
            if current.state not in (DriftState.CHECKING, DriftState.REPAIRING):
                break
    try:
        yield CheckFinished(await handle.result())
    except RPCError as exc:
        raise rpc_failure(f"reading the result of {handle.id}", exc) from None


async def approve_waiting(
    client: Client, environment: str, request: OperatorRequest, task_queue: str
) -> list[str]:
    """Approve every check of `environment` that waits for approval (started by hand or by
    the schedule); the ids approved, [] when none waits."""
    own = drift_check_workflow_id(environment)
    approved = []
    query = "WorkflowType = 'DriftCheckWorkflow' AND ExecutionStatus = 'Running'"
    try:
        async for execution in client.list_workflows(query):
            if execution.id != own and not execution.id.startswith(f"{own}-scheduled"):
                continue
            handle = client.get_workflow_handle_for(
                DriftCheckWorkflow.run, execution.id, run_id=execution.run_id
            )
            progress = await check_progress(handle, task_queue)
            if progress.state == DriftState.WAITING_FOR_APPROVAL:
                # An update: a check that stopped waiting in between refuses, and says why.
                await send(handle, DriftCheckWorkflow.approve, request, task_queue=task_queue)
                approved.append(execution.id)
    except RPCError as exc:
        raise rpc_failure(f"approving the drift checks of {environment}", exc) from None
    return approved


@dataclass(frozen=True)
class ScheduleUpserted:
    schedule_id: str
    created: bool
    next_run: datetime | None


async def upsert_schedule(
    client: Client,
    settings: ClientSettings,
    env: Environment,
    *,
    policy: DriftPolicy | None,
    by: str,
) -> ScheduleUpserted:
    """Create the drift-check schedule of `env`, or update it in place."""
    schedule_id = drift_schedule_id(env.name)
    snapshot = DriftCheckInput(environment=env, requested_by=by, policy=policy)
    definition = Schedule(
        action=ScheduleActionStartWorkflow(
            DriftCheckWorkflow.run,
            snapshot,
            id=f"{schedule_id}-scheduled",
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=env.drift_check.interval)]),
        # A check still waiting for approval is not stacked with another one.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"declared by {by}"),
    )
    try:
        try:
            handle = await client.create_schedule(schedule_id, definition)
            created = True
        except ScheduleAlreadyRunningError:
            handle = client.get_schedule_handle(schedule_id)
            await handle.update(lambda _: ScheduleUpdate(schedule=definition))
            created = False
        description = await handle.describe()
    except RPCError as exc:
        raise rpc_failure(f"writing schedule {schedule_id}", exc) from None
    upcoming = description.info.next_action_times[:1]
    return ScheduleUpserted(schedule_id, created, upcoming[0] if upcoming else None)


async def delete_schedule(client: Client, environment: str) -> bool:
    """Delete the drift-check schedule; False when there was none (not an error)."""
    schedule_id = drift_schedule_id(environment)
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise OperationError(f"cannot delete schedule {schedule_id}: {exc.message}") from None
    return True
