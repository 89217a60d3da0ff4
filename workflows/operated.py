"""What every operator-steered run shares: steps that wait for an operator instead of
failing the run, the approval gate, pause/resume, abort, and the step records the `progress`
query shows.

A step whose activity fails for good (a non-retryable error, or its deadline used up) does
not fail the run: it waits for `retry`, `skip` or `abort`. `abort` is honoured at any time
(between steps, at the gate, while a step waits); `retry`/`skip` only while a step waits, so
a late one is never applied to a later failure. `pause` holds the run before its next step.

Subclasses (`BootstrapWorkflow`, later ones) define `run` and the `progress` query over
`_step_records()`, `_run_state()` and `_allowed_actions()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from temporalio import exceptions, workflow
from temporalio.exceptions import ActivityError, ApplicationError

from contracts.base import StepResult
from contracts.bootstrap import RunState, StepProgress, StepStatus
from contracts.operator import OperatorAction, OperatorRequest
from workflows.steps import RunInput, StepActivity

_STEP_DECISIONS = (OperatorAction.RETRY, OperatorAction.SKIP, OperatorAction.ABORT)


class Aborted(Exception):
    """Raised inside the run when an operator aborted it."""


@dataclass
class _StepRecord:
    """The workflow's own, mutable record of one step; `progress()` shows a frozen copy."""

    name: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    last_error_type: str | None = None
    retry_state: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    changed: bool | None = None
    summary: str = ""
    result: StepResult | None = None
    operator_actions: list[str] = field(default_factory=list)

    def frozen(self) -> StepProgress:
        return StepProgress(
            name=self.name,
            status=self.status,
            attempts=self.attempts,
            last_error=self.last_error,
            last_error_type=self.last_error_type,
            retry_state=self.retry_state,
            started_at=self.started_at,
            ended_at=self.ended_at,
            changed=self.changed,
            summary=self.summary,
            result=self.result,  # type: ignore[arg-type]  # one of AnyStepResult
            operator_actions=tuple(self.operator_actions),
        )


class OperatedRun:
    """Operator interface and step runner shared by the workflows that change a cluster."""

    def __init__(self, step_names: tuple[str, ...]) -> None:
        self._steps: dict[str, _StepRecord] = {n: _StepRecord(name=n) for n in step_names}
        self._state = RunState.RUNNING
        self._paused = False
        self._decision: tuple[OperatorAction, OperatorRequest] | None = None
        self._approved_by: str | None = None
        self._waiting_for: str | None = None
        self._waiting_actions: tuple[OperatorAction, ...] = ()
        self._approval_pending = False

    # --- operator interface ---------------------------------------------------------

    @workflow.signal
    def retry(self, request: OperatorRequest | None = None) -> None:
        """Run the waiting step again (e.g. after the schema was updated by hand)."""
        self._decide(OperatorAction.RETRY, request)

    @workflow.signal
    def skip(self, request: OperatorRequest | None = None) -> None:
        """Move on past the waiting step; recorded in the result."""
        self._decide(OperatorAction.SKIP, request)

    @workflow.signal
    def abort(self, request: OperatorRequest | None = None) -> None:
        """End the run with a failure that lists what was done."""
        self._decide(OperatorAction.ABORT, request)

    @workflow.signal
    def approve(self, request: OperatorRequest | None = None) -> None:
        """Open the approval gate."""
        self._approved_by = (request or OperatorRequest()).by
        workflow.logger.info("approved by %s", self._approved_by)

    @workflow.signal
    def pause(self, request: OperatorRequest | None = None) -> None:
        """Hold the run before the next step starts."""
        self._paused = True

    @workflow.signal
    def resume(self, request: OperatorRequest | None = None) -> None:
        """Let a paused run go on."""
        self._paused = False

    def _decide(self, action: OperatorAction, request: OperatorRequest | None) -> None:
        # Abort is honoured at any time; retry/skip only mean something while a step waits.
        if action == OperatorAction.ABORT or action in self._waiting_actions:
            self._decision = (action, request or OperatorRequest())

    # --- what progress shows --------------------------------------------------------

    def _run_state(self) -> RunState:
        if self._state != RunState.RUNNING:
            return self._state
        if self._waiting_for is not None:
            return RunState.WAITING_FOR_OPERATOR
        return RunState.PAUSED if self._paused else RunState.RUNNING

    def _allowed_actions(self) -> tuple[OperatorAction, ...]:
        """The actions that mean something now, for clients to offer (never parsed prose)."""
        if self._state != RunState.RUNNING:
            return ()
        if self._waiting_for is not None:
            return self._waiting_actions
        actions = [OperatorAction.RESUME if self._paused else OperatorAction.PAUSE]
        if self._approval_pending and self._approved_by is None:
            actions.append(OperatorAction.APPROVE)
        return (*actions, OperatorAction.ABORT)

    def _step_records(self) -> tuple[StepProgress, ...]:
        return tuple(record.frozen() for record in self._steps.values())

    def _done_list(self) -> str:
        parts = [
            f"{s.name} {s.status.value}" + (f" ({s.summary})" if s.summary else "")
            for s in self._steps.values()
        ]
        return "; ".join(parts)

    # --- running steps --------------------------------------------------------------

    async def _between_steps(self) -> None:
        await workflow.wait_condition(lambda: not self._paused or self._decision is not None)
        if self._decision and self._decision[0] == OperatorAction.ABORT:
            raise Aborted()

    async def _approval_gate(self, name: str, required: bool, before: str) -> None:
        """Wait for `approve` (or abort) when `required`; an earlier approve counts."""
        record = self._steps[name]
        if not required:
            self._finish(name, StepStatus.SKIPPED, summary="not required")
            return
        record.started_at = workflow.now()
        if self._approved_by is None:
            record.status = StepStatus.WAITING_FOR_OPERATOR
            self._waiting_for = f"approval before {before}: send `approve`"
            self._waiting_actions = (OperatorAction.APPROVE, OperatorAction.ABORT)
            await workflow.wait_condition(
                lambda: (
                    self._approved_by is not None
                    or (self._decision is not None and self._decision[0] == OperatorAction.ABORT)
                )
            )
            self._waiting_for, self._waiting_actions = None, ()
            if self._approved_by is None:
                self._finish(name, StepStatus.FAILED, summary="aborted before approval")
                raise Aborted()
        self._approval_pending = False
        self._finish(
            name, StepStatus.DONE, changed=False, summary=f"approved by {self._approved_by}"
        )

    def _add_steps(self, names: tuple[str, ...]) -> None:
        """Steps known only once the run has begun (an upgrade's hops), shown from then on."""
        for name in names:
            self._steps.setdefault(name, _StepRecord(name=name))

    async def _run_step(self, step: StepActivity[RunInput], input: RunInput) -> StepResult | None:
        """Run `step` until it succeeds or an operator skips it (None) or aborts the run."""
        record = self._steps[step.name]
        record.started_at = workflow.now()
        while True:
            record.status = StepStatus.RUNNING
            record.attempts += 1
            try:
                result = await step.execute(input)
            except ActivityError as err:
                self._record_failure(record, err)
                action, request = await self._wait_for_operator(step.name, record)
                record.operator_actions.append(request.describe(action))
                if action == OperatorAction.RETRY:
                    continue
                if action == OperatorAction.SKIP:
                    self._finish(step.name, StepStatus.SKIPPED, summary=f"skipped by {request.by}")
                    return None
                self._finish(step.name, StepStatus.FAILED)
                raise Aborted() from None
            record.result = result
            self._finish(step.name, StepStatus.DONE, changed=result.changed, summary=result.summary)
            return result

    def _record_failure(self, record: _StepRecord, err: ActivityError) -> None:
        cause = err.cause
        record.retry_state = err.retry_state.name if err.retry_state else None
        if isinstance(cause, ApplicationError):
            record.last_error_type = cause.type
            record.last_error = cause.message
        elif isinstance(cause, exceptions.TimeoutError):
            record.last_error_type = f"Timeout{cause.type.name.title() if cause.type else ''}"
            inner = cause.cause.message if isinstance(cause.cause, ApplicationError) else ""
            record.last_error = (
                f"deadline reached ({cause.type.name if cause.type else 'timeout'})"
                + (f"; last error: {inner}" if inner else "")
            )
        else:
            record.last_error_type = type(cause).__name__ if cause else "ActivityError"
            record.last_error = str(cause or err)
        workflow.logger.warning(
            "step %s failed for good (%s): %s",
            record.name,
            record.last_error_type,
            record.last_error,
        )

    async def _wait_for_operator(
        self, step: str, record: _StepRecord
    ) -> tuple[OperatorAction, OperatorRequest]:
        record.status = StepStatus.WAITING_FOR_OPERATOR
        if self._decision and self._decision[0] != OperatorAction.ABORT:
            self._decision = None  # a retry/skip sent earlier was meant for another wait
        self._waiting_for = f"{step} failed: send `retry`, `skip` or `abort`"
        self._waiting_actions = _STEP_DECISIONS
        await workflow.wait_condition(lambda: self._decision is not None)
        assert self._decision is not None
        decision, self._decision = self._decision, None
        self._waiting_for, self._waiting_actions = None, ()
        return decision

    def _finish(
        self, name: str, status: StepStatus, *, changed: bool | None = None, summary: str = ""
    ) -> None:
        record = self._steps[name]
        record.status = status
        record.changed = changed
        record.summary = summary or record.summary
        record.started_at = record.started_at or workflow.now()
        record.ended_at = workflow.now()
