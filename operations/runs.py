"""Operations on provisioning runs (`provision-<env>`), for the starter and for tests.

Typed all the way: handles are `WorkflowHandle[BootstrapWorkflow, BootstrapResult]`,
operator actions are sent as Temporal updates by method reference
(`send(handle, BootstrapWorkflow.retry, ...)`), so a refusal (the run's validator: `retry`
while no step waits, ...) comes back as `ActionRefused` with what the run waits for, and
`follow` yields typed events instead of text, so the starter only renders and maps to exit
codes. Nothing here prints. Every operator-steered run (an upgrade too: its progress and
result extend the bootstrap's) is followed and steered with the same functions, given its own
`progress` query (operations/upgrade.py); provisioning and upgrading one environment refuse
to start while the other runs (both would run helm on its release).

`start_or_attach` never attaches to a run with another declaration without saying so: it
reads the running run's declaration from its history (no worker needed: the start input and
any accepted `redeclare` update) and compares it with the one being provisioned. Equal:
attach. Different: `DeclarationChanged` with the differing key paths, unless the caller
chose to hand the new declaration to the waiting run (`Redeclare.UPDATE_RUN`, the
`redeclare` update) or to abort it and start again (`Redeclare.RESTART`).

Every wait has a bound: queries `QUERY_TIMEOUT`, actions `ACTION_TIMEOUT`, waiting for a
run's end `RESULT_TIMEOUT`. Failure modes, each a typed exception with a message an operator
can act on: no such run (`NoRun`), no worker answering on the task queue (`NoWorker`), a run
whose workflow task keeps failing (`RunStuck`: a worker answers but cannot process it), an
action the run refused (`ActionRefused`), the server itself unreachable
(`ServerUnavailable`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import Enum
from typing import Any, TypeAlias, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from contracts.bootstrap import (
    BootstrapInput,
    BootstrapProgress,
    BootstrapResult,
    Redeclaration,
    RunState,
    StepProgress,
    StepStatus,
    bootstrap_workflow_id,
    declaration_changes,
)
from contracts.operator import ActionReceipt, OperatorRequest, RefusedInput
from contracts.upgrade import upgrade_workflow_id
from declared_state.models import Environment
from operations.settings import ClientSettings
from workflows.bootstrap import BootstrapWorkflow

BootstrapHandle: TypeAlias = WorkflowHandle[BootstrapWorkflow, BootstrapResult]

# Queries need a worker; one that does not answer in this long is treated as absent.
QUERY_TIMEOUT = timedelta(seconds=10)
# An operator action needs a worker to validate and take it.
ACTION_TIMEOUT = timedelta(seconds=30)
# How long to wait for a run to end after it was told to (abort, restart).
RESULT_TIMEOUT = timedelta(seconds=60)
POLL_INTERVAL = 1.0
FIRST_POLL_INTERVAL = 0.125
WORKER_MISSING_RETRY = 2.0


class OperationError(RuntimeError):
    """An operation could not be done; the message says why and what to do."""


class NoRun(OperationError):
    pass


class NoWorker(OperationError):
    pass


class RunStuck(NoWorker):
    """A worker polls, but the run's workflow task keeps failing (see the worker's log)."""


class ServerUnavailable(OperationError):
    pass


class ActionRefused(OperationError):
    """The run refused the action (its update validator said why); nothing changed."""


class Redeclare(Enum):
    """What `start_or_attach` does when the running run has another declaration."""

    ASK = "ask"
    """Change nothing; raise DeclarationChanged so the operator chooses."""
    UPDATE_RUN = "update-run"
    """Hand the new declaration to the waiting run (the `redeclare` update)."""
    RESTART = "restart"
    """Abort the running run, wait for it to end, start a new one."""


UNREADABLE = "(all: the running run's declaration cannot be read by this version)"


class DeclarationChanged(OperationError):
    """A run is going with another declaration than the one being provisioned (`running`
    is None when this version cannot read it: it was started by another one)."""

    def __init__(self, workflow_id: str, running: Environment | None, new: Environment):
        self.workflow_id, self.running, self.new = workflow_id, running, new
        self.changes = declaration_changes(running, new) if running else (UNREADABLE,)
        super().__init__(
            f"{workflow_id} is running with another declaration (differs at: "
            f"{', '.join(self.changes)})"
        )


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
    redeclared: ActionReceipt | None = None
    """The running run took the new declaration (Redeclare.UPDATE_RUN)."""
    restarted: str | None = None
    """The run id of the run that was aborted to start this one (Redeclare.RESTART)."""


async def refuse_while_running(client: Client, workflow_id: str, doing: str) -> None:
    """An OperationError when `workflow_id` runs: provisioning and upgrading one environment
    would both run helm on its release."""
    if await is_running(client.get_workflow_handle(workflow_id)):
        raise OperationError(
            f"{workflow_id} is running: {doing} has to wait until it ends (follow it with "
            f"`temporal workflow query --workflow-id {workflow_id} --type progress`, or abort it)"
        )


async def running_declaration(
    client: Client, handle: WorkflowHandle[Any, Any]
) -> Environment | None:
    """The declaration a run works with, from its history (no worker needed): its start
    input, or the environment of the last `redeclare` update it accepted; None when this
    version cannot read it (another version of temporal-bootstrap started the run)."""
    converter = client.data_converter
    declared: Environment | None = None
    try:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                (start,) = await converter.decode(payloads, [BootstrapInput])
                declared = start.environment
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                accepted = event.workflow_execution_update_accepted_event_attributes
                update = accepted.accepted_request.input
                if update.name == "redeclare":
                    (handed,) = await converter.decode(update.args.payloads, [Redeclaration])
                    declared = handed.environment
    except RPCError as exc:
        raise rpc_failure(f"reading the history of {handle.id}", exc) from None
    except (ValueError, TypeError, RuntimeError):  # pydantic refused it, or the converter
        return None
    return declared


async def start_or_attach(
    client: Client,
    settings: ClientSettings,
    env: Environment,
    *,
    by: str,
    dry_run: bool,
    redeclare: Redeclare = Redeclare.ASK,
) -> Started:
    """Start `provision-<env>` or, when one runs, attach to it (never a second run). A
    running run with another declaration is attached to only as `redeclare` says. Refused
    while `upgrade-<env>` runs (a dry run only reads, and may)."""
    if not dry_run:
        await refuse_while_running(
            client, upgrade_workflow_id(env.name), f"provisioning {env.name}"
        )
    existing = handle_for(client, env.name, dry_run=dry_run)
    restarted = None
    if await is_running(existing):
        declared = await running_declaration(client, existing)
        if declared is None or declaration_changes(declared, env):
            if redeclare == Redeclare.ASK:
                raise DeclarationChanged(existing.id, declared, env)
            if redeclare == Redeclare.UPDATE_RUN:
                receipt = await send(
                    existing,
                    BootstrapWorkflow.redeclare,
                    Redeclaration(environment=env, by=by),
                )
                description = await existing.describe()
                return Started(existing, description.run_id, True, redeclared=receipt)
            restarted = (await existing.describe()).run_id
            await send(
                existing,
                BootstrapWorkflow.abort,
                OperatorRequest(by=by, reason="restarted with a new declaration"),
            )
            await final(existing)
    started = await start_or_attach_run(
        client,
        settings,
        BootstrapWorkflow.run,
        BootstrapInput(environment=env, requested_by=by, dry_run=dry_run),
        existing.id,
    )
    return replace(started, restarted=restarted)


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
    *,
    kind: str = "provisioning run",
) -> BootstrapProgress:
    """The run's `progress` query; `NoRun` / `NoWorker` / `RunStuck` when nobody can answer.
    `kind` names the run in NoRun's message (an upgrade run is not a provisioning run)."""
    try:
        return await handle.query(query, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NoRun(f"no {kind} {handle.id}: {exc.message}") from None
        if exc.status == RPCStatusCode.UNAVAILABLE:
            raise ServerUnavailable(
                f"the bootstrap server does not answer: {exc.message}"
            ) from None
        raise await unanswered(handle, task_queue, f"its progress query ({exc.message})") from None


async def unanswered(handle: WorkflowHandle[Any, Any], task_queue: str, what: str) -> NoWorker:
    """Why a run did not answer: its workflow task keeps failing (a worker is there but
    cannot process the run), or no worker serves its task queue."""
    try:
        raw = (await handle.describe(rpc_timeout=QUERY_TIMEOUT)).raw_description
    except RPCError:
        raw = None
    if raw is not None and raw.HasField("pending_workflow_task"):
        attempt = raw.pending_workflow_task.attempt
        if attempt > 1:
            return RunStuck(
                f"{handle.id} did not answer {what}: its workflow task has failed "
                f"{attempt - 1} time(s) in a row, so a worker runs but cannot process the "
                "run; the worker's log says why (`temporal workflow describe --workflow-id "
                f"{handle.id}` shows the last failure)"
            )
    return NoWorker(
        f"{handle.id} exists but no worker answers {what} on task queue {task_queue}: "
        "start `python worker.py`"
    )


async def send(
    handle: WorkflowHandle[Any, Any],
    action: UpdateMethodMultiParam[[Any, Any], ActionReceipt],
    request: OperatorRequest | Redeclaration,
    *,
    task_queue: str = "",
) -> ActionReceipt:
    """Send an operator action as an update by method reference, e.g.
    `BootstrapWorkflow.retry`; the run's receipt, or ActionRefused with its reason."""
    name = getattr(action, "__name__", "action")
    try:
        receipt: ActionReceipt = await asyncio.wait_for(
            handle.execute_update(action, request, rpc_timeout=QUERY_TIMEOUT),
            ACTION_TIMEOUT.total_seconds(),
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise ActionRefused(f"{handle.id} refused {name}: {message}") from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        stuck = await unanswered(handle, task_queue or "its task queue", f"{name}")
        raise type(stuck)(f"{stuck}; {name} was not applied") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and await _has_ended(handle):
            raise ActionRefused(f"{handle.id} has already ended; {name} was not sent") from None
        raise rpc_failure(f"sending {name} to {handle.id}", exc) from None
    return receipt


async def _has_ended(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING
    except RPCError:
        return False


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
class InputRefused:
    """An operator signal the run did not act on (newly seen while following)."""

    refused: RefusedInput


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
    StepChanged
    | ActivityNote
    | WorkerMissing
    | WorkerBack
    | InputRefused
    | WaitingForOperator
    | Finished
    | Failed
)


P = TypeVar("P")


async def _ended(handle: WorkflowHandle[Any, Any]) -> bool:
    """Returns once the run has closed (True), however it ended; False when the server cannot
    say (then polling alone decides). One long-poll on the run's close event, so waiting
    adds nothing to the run's history."""
    try:
        await handle.result(rpc_timeout=None)
    except (WorkflowFailureError, ApplicationError):
        return True
    except (RPCError, TimeoutError):
        return False
    return True


async def _pause(ended: asyncio.Future[bool], seconds: float) -> None:
    """Sleep `seconds`, or less when the run closes meanwhile."""
    if ended.done():
        await asyncio.sleep(seconds)
    else:
        await asyncio.wait({ended}, timeout=seconds)


async def poll(
    handle: WorkflowHandle[Any, Any], task_queue: str, query: Callable[[], Awaitable[P]]
) -> AsyncGenerator[P | WorkerMissing | WorkerBack, None]:
    """`query()`'s answers, at most POLL_INTERVAL apart (the caller stops when it has seen
    enough): the first ones FIRST_POLL_INTERVAL apart, doubling, while a query is cheap and
    a short run may already be done. A run that closes is noticed at once (a long-poll on its
    close raced with the pause): one more answer, then the polling ends, so `follow` returns
    as soon as the workflow answers instead of up to a poll interval later.
    While no worker answers, a running workflow yields WorkerMissing once (and WorkerBack when
    one answers again); a workflow that is no longer running ends the polling."""
    worker_missing = False
    interval = FIRST_POLL_INTERVAL
    ended: asyncio.Future[bool] = asyncio.ensure_future(_ended(handle))
    try:
        while True:
            closed = ended.done() and ended.result()
            try:
                answer = await query()
            except NoWorker:
                if closed or not await is_running(handle):
                    return
                if not worker_missing:
                    worker_missing = True
                    yield WorkerMissing(task_queue)
                await _pause(ended, WORKER_MISSING_RETRY)
                continue
            if worker_missing:
                worker_missing = False
                yield WorkerBack()
            yield answer
            if closed:
                return
            await _pause(ended, interval)
            interval = min(interval * 2, POLL_INTERVAL)
    finally:
        ended.cancel()


async def follow(
    handle: WorkflowHandle[Any, Any],
    task_queue: str,
    query: ProgressQuery = BootstrapWorkflow.progress,
) -> AsyncIterator[FollowEvent]:
    """Events until the run ends (Finished / Failed) or waits for an operator."""
    shown: dict[str, tuple[StepStatus, int]] = {}
    last_note: str | None = None
    refused_seen: tuple[RefusedInput, ...] | None = None
    polled = poll(handle, task_queue, lambda: progress(handle, task_queue, query))
    async with aclosing(polled):
        async for current in polled:
            if isinstance(current, WorkerMissing | WorkerBack):
                yield current
                continue
            if refused_seen is not None:  # the ones from before we followed are in `status`
                for refused in current.refused:
                    if refused not in refused_seen:
                        yield InputRefused(refused)
            refused_seen = current.refused
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


async def final(
    handle: WorkflowHandle[Any, Any], timeout: timedelta = RESULT_TIMEOUT
) -> Finished | Failed:
    """The run's outcome once it has ended (waits for it, at most `timeout`)."""
    try:
        return Finished(await asyncio.wait_for(handle.result(), timeout.total_seconds()))
    except WorkflowFailureError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        return Failed(f"{handle.id} failed: {message}")
    except TimeoutError:
        raise NoWorker(
            f"{handle.id} has not ended within {timeout.total_seconds():.0f}s: is a worker "
            f"running? `python starter.py status` shows where it stands"
        ) from None
    except RPCError as exc:
        raise rpc_failure(f"waiting for {handle.id}", exc) from None


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
