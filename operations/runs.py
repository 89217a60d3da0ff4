"""Operations on provisioning runs (`provision-<env>`), for the starter and for tests.

Typed all the way: handles are `WorkflowHandle[BootstrapWorkflow, BootstrapResult]`,
operator actions are sent by method reference (`send(handle, BootstrapWorkflow.retry, ...)`),
and `follow` yields typed events instead of text, so the starter only renders and maps to
exit codes. Nothing here prints. Every operator-steered run (an upgrade too: its progress
and result extend the bootstrap's) is followed and steered with the same functions, given
its own `progress` query (operations/upgrade.py).

Failure modes, each a typed exception with a message an operator can act on: no such run
(`NoRun`), no worker answering queries on the task queue (`NoWorker`), the server itself
unreachable (`ServerUnavailable`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from contracts.bootstrap import (
    BootstrapInput,
    BootstrapProgress,
    BootstrapResult,
    RunState,
    StepProgress,
    StepStatus,
    bootstrap_workflow_id,
)
from contracts.operator import OperatorRequest
from contracts.upgrade import upgrade_workflow_id
from declared_state.models import Environment
from operations.settings import ClientSettings
from workflows.bootstrap import BootstrapWorkflow

BootstrapHandle: TypeAlias = WorkflowHandle[BootstrapWorkflow, BootstrapResult]

# Queries need a worker; one that does not answer in this long is treated as absent.
QUERY_TIMEOUT = timedelta(seconds=10)
POLL_INTERVAL = 1.0
WORKER_MISSING_RETRY = 2.0


class OperationError(RuntimeError):
    """An operation could not be done; the message says why and what to do."""


class NoRun(OperationError):
    pass


class NoWorker(OperationError):
    pass


class ServerUnavailable(OperationError):
    pass


def handle_for(client: Client, environment: str, *, dry_run: bool = False) -> BootstrapHandle:
    workflow_id = bootstrap_workflow_id(environment) + ("-dry-run" if dry_run else "")
    return client.get_workflow_handle_for(BootstrapWorkflow.run, workflow_id)


async def is_running(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    except RPCError:
        return False


@dataclass(frozen=True)
class Started:
    handle: WorkflowHandle[Any, Any]
    run_id: str
    attached: bool
    """True when a run was already going and this one attached to it."""


async def refuse_while_running(client: Client, workflow_id: str, doing: str) -> None:
    """An OperationError when `workflow_id` runs: provisioning and upgrading one environment
    would both run helm on its release."""
    if await is_running(client.get_workflow_handle(workflow_id)):
        raise OperationError(
            f"{workflow_id} is running: {doing} has to wait until it ends (follow it with "
            f"`temporal workflow query --workflow-id {workflow_id} --type progress`, or abort it)"
        )


async def start_or_attach(
    client: Client, settings: ClientSettings, env: Environment, *, by: str, dry_run: bool
) -> Started:
    """Start `provision-<env>` or, when one runs, attach to it (never a second run); refused
    while `upgrade-<env>` runs (a dry run only reads, and may)."""
    if not dry_run:
        await refuse_while_running(
            client, upgrade_workflow_id(env.name), f"provisioning {env.name}"
        )
    return await start_or_attach_run(
        client,
        settings,
        BootstrapWorkflow.run,
        BootstrapInput(environment=env, requested_by=by, dry_run=dry_run),
        handle_for(client, env.name, dry_run=dry_run).id,
    )


async def start_or_attach_run(
    client: Client,
    settings: ClientSettings,
    run: Callable[[Any, Any], Awaitable[Any]],
    input: Any,
    workflow_id: str,
) -> Started:
    """Start workflow `run` as `workflow_id`, or attach to the one that runs (never two)."""
    running = await is_running(client.get_workflow_handle(workflow_id))
    try:
        handle = await client.start_workflow(
            run,
            input,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        description = await handle.describe()
    except RPCError as exc:
        raise rpc_failure(f"starting {workflow_id}", exc) from None
    return Started(handle=handle, run_id=description.run_id, attached=running)


ProgressQuery: TypeAlias = Callable[[Any], BootstrapProgress]
"""A run's `progress` query by method reference: `BootstrapWorkflow.progress`, ..."""


async def progress(
    handle: WorkflowHandle[Any, Any],
    task_queue: str,
    query: ProgressQuery = BootstrapWorkflow.progress,
) -> BootstrapProgress:
    """The run's `progress` query; `NoRun` / `NoWorker` when nobody can answer."""
    try:
        return await handle.query(query, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NoRun(f"no provisioning run {handle.id}: {exc.message}") from None
        if exc.status == RPCStatusCode.UNAVAILABLE:
            raise ServerUnavailable(
                f"the bootstrap server does not answer: {exc.message}"
            ) from None
        raise NoWorker(
            f"{handle.id} exists but no worker answers its progress query on task queue "
            f"{task_queue}: start `python worker.py` ({exc.message})"
        ) from None


async def send(
    handle: WorkflowHandle[Any, Any],
    action: Callable[[Any, OperatorRequest | None], Any],
    request: OperatorRequest,
) -> None:
    """Send an operator action by method reference, e.g. `BootstrapWorkflow.retry` (every
    operator-steered run takes the same actions)."""
    try:
        await handle.signal(action, request)
    except RPCError as exc:
        raise rpc_failure(f"sending to {handle.id}", exc) from None


# --- following a run ------------------------------------------------------------------


@dataclass(frozen=True)
class StepChanged:
    step: StepProgress


@dataclass(frozen=True)
class ActivityNote:
    """What the running activity last reported (heartbeat phase, last answer, attempt)."""

    text: str


@dataclass(frozen=True)
class WorkerMissing:
    task_queue: str


@dataclass(frozen=True)
class WorkerBack:
    pass


@dataclass(frozen=True)
class WaitingForOperator:
    progress: BootstrapProgress


@dataclass(frozen=True)
class Finished:
    result: BootstrapResult


@dataclass(frozen=True)
class Failed:
    message: str


FollowEvent: TypeAlias = (
    StepChanged | ActivityNote | WorkerMissing | WorkerBack | WaitingForOperator | Finished | Failed
)


P = TypeVar("P")


async def poll(
    handle: WorkflowHandle[Any, Any], task_queue: str, query: Callable[[], Awaitable[P]]
) -> AsyncIterator[P | WorkerMissing | WorkerBack]:
    """`query()`'s answers, one per POLL_INTERVAL (the caller stops when it has seen enough).
    While no worker answers, a running workflow yields WorkerMissing once (and WorkerBack when
    one answers again); a workflow that is no longer running ends the polling."""
    worker_missing = False
    while True:
        try:
            answer = await query()
        except NoWorker:
            if not await is_running(handle):
                return
            if not worker_missing:
                worker_missing = True
                yield WorkerMissing(task_queue)
            await asyncio.sleep(WORKER_MISSING_RETRY)
            continue
        if worker_missing:
            worker_missing = False
            yield WorkerBack()
        yield answer
        await asyncio.sleep(POLL_INTERVAL)


async def follow(
    handle: WorkflowHandle[Any, Any],
    task_queue: str,
    query: ProgressQuery = BootstrapWorkflow.progress,
) -> AsyncIterator[FollowEvent]:
    """Events until the run ends (Finished / Failed) or waits for an operator."""
    shown: dict[str, tuple[StepStatus, int]] = {}
    last_note: str | None = None
    async for current in poll(handle, task_queue, lambda: progress(handle, task_queue, query)):
        if isinstance(current, WorkerMissing | WorkerBack):
            yield current
            continue
        for step in current.steps:
            key = (step.status, step.attempts)
            if step.status != StepStatus.PENDING and shown.get(step.name) != key:
                shown[step.name] = key
                yield StepChanged(step)
        if current.state == RunState.WAITING_FOR_OPERATOR:
            yield WaitingForOperator(current)
            return
        if current.state in (RunState.DONE, RunState.ABORTED):
            break
        note = await pending_activity_note(handle)
        if note and note != last_note:
            last_note = note
            yield ActivityNote(note)
    yield await final(handle)


async def final(handle: WorkflowHandle[Any, Any]) -> Finished | Failed:
    """The run's outcome once it has ended (waits for it)."""
    try:
        return Finished(await handle.result())
    except WorkflowFailureError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        return Failed(f"{handle.id} failed: {message}")


async def pending_activity_note(handle: WorkflowHandle[Any, Any]) -> str | None:
    """What the running activity last reported (its heartbeat phase or last answer) and,
    when it is retrying, its attempt and last error; from the server, no worker needed."""
    try:
        description = await handle.describe()
    except RPCError:
        return None
    for pending in description.raw_description.pending_activities:
        parts = []
        if pending.HasField("heartbeat_details"):
            details = await description.data_converter.decode(pending.heartbeat_details.payloads)
            latest = details[-1] if details and isinstance(details[-1], dict) else {}
            if reported := latest.get("phase") or latest.get("last_answer"):
                parts.append(str(reported))
        if pending.attempt > 1:
            last = pending.last_failure.message if pending.HasField("last_failure") else ""
            parts.append(f"attempt {pending.attempt}" + (f", last error: {last}" if last else ""))
        if parts:
            return f"{pending.activity_type.name}: {'; '.join(parts)}"
    return None


def rpc_failure(what: str, exc: RPCError) -> OperationError:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return NoRun(f"{what}: no such run ({exc.message})")
    if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return ServerUnavailable(f"{what}: the bootstrap server does not answer ({exc.message})")
    return OperationError(f"{what}: {exc.status.name}: {exc.message}")
