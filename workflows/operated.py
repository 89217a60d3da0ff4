"""What every operator-steered run shares: operator input that never breaks a run, steps that
wait for an operator instead of failing the run, the approval gate, pause/resume, abort, and
the step records the `progress` query shows.

Operator input arrives two ways, under the same names (`approve`, `retry`, `skip`, `abort`,
`pause`, `resume`; the SDK and the server keep signal and update names apart):

- **Updates** (what the starter sends, by typed reference, and
  `temporal workflow update execute --name retry ...`): each has a validator that refuses
  what the run cannot take now (`retry` while no step waits, a second `approve`, ...) with a
  message saying what the run waits for; the sender gets that refusal back and nothing is
  written to the history. An accepted update returns an `ActionReceipt`.
- **Signals** (`temporal workflow signal --name retry ...`, kept for the temporal CLI and
  the Web UI): they take any payload shape. The handlers receive the decoded inputs as they
  came (`*args`, no type hints, so the SDK never drops or chokes on them), convert them
  inside a `try`, and apply the same check as the update validators. A signal whose payload
  is refused, that comes at a time the run cannot take it, or whose name is unknown (the
  dynamic handler) is logged and recorded in `refused`, which `progress` shows (name, when,
  why). A signal handler never raises: a workflow task must never fail because of operator
  input. One limit remains in the SDK, before any handler runs: a payload that is not JSON
  at all (only possible with `--input-meta encoding=...`) is dropped with an error in the
  worker's log.

A step whose activity fails for good (a non-retryable error, or its deadline used up) does
not fail the run: it waits for `retry`, `skip` or `abort`. `abort` is honoured at any time
(between steps, at the gate, while a step waits); `retry`/`skip` only while a step waits, so
a late one is never applied to a later failure. `pause` holds the run before its next step.

Subclasses (`BootstrapWorkflow`, later ones) define `run` and the `progress` query over
`_step_records()`, `_run_state()`, `_allowed_actions()` and `_refused_inputs()`.
`DriftCheckWorkflow` uses only `OperatorInbox` (approve).

Replay rule: see workflows/__init__.py (a logic change goes behind `workflow.patched`).
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Sequence
from typing import Any, ClassVar, cast

from pydantic import ConfigDict
from temporalio import exceptions, workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import UpdateMethodMultiParam

from contracts.base import StepResult
from contracts.bootstrap import RunState, StepProgress, StepStatus
from contracts.operator import (
    REFUSED_KEPT,
    ActionReceipt,
    OperatorAction,
    OperatorRequest,
    RefusedInput,
    operator_commands,
    parse_request,
)
from contracts.step_spec import RunInput, StepSpec
from contracts.trusted_declaration import UNTRUSTED_DECLARATION
from declared_state.models import Environment, NotifyEvent
from workflows.notifying import NOTIFY_BY, Notifying
from workflows.steps import execute_step

_STEP_DECISIONS = (OperatorAction.RETRY, OperatorAction.SKIP, OperatorAction.ABORT)

ACTION_REFUSED = "ActionRefused"
"""The ApplicationError type of an update a validator refused."""


def untrusted_declaration(err: ActivityError) -> str | None:
    """The worker's refusal of the run's declaration (#23.8), or None for any other error.
    A run ends with it: retry, skip or a new declaration from the same sender cannot make it
    trusted. No history recorded before the check existed holds this error type, so ending
    the run on it changes no replay."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == UNTRUSTED_DECLARATION:
        return cause.message
    return None


def operator_action(
    action: OperatorAction, doc: str
) -> tuple[UpdateMethodMultiParam[[Any, OperatorRequest | None], ActionReceipt], Any]:
    """The update (with its validator) and the signal, both named `action`, that an
    operator-steered workflow class defines for one action:

        retry, retry_signal = operator_action(OperatorAction.RETRY, "Run the waiting step again.")
    """

    # `self` stays unannotated: the SDK drops a first parameter from the payload types only
    # when it is an unannotated `self`. The update takes its inputs untyped, as the signal
    # does, and parses them itself: a payload the model refuses (sent with the temporal CLI)
    # is then refused by the validator with the signal path's text, non-retryable, instead of
    # failing in the SDK's decoding with raw pydantic text marked retryable (#20.7).
    def update(self, *args: Any) -> ActionReceipt:
        return self._take(action, parse_request(args))

    def validator(self, *args: Any) -> None:
        self._validate_payload(args)
        self._validate(action)

    def signal(self, *args: Any) -> None:
        self._signalled(action, args)

    update.__name__, update.__doc__ = action.value, doc
    signal.__name__ = f"{action.value}_signal"
    handler = workflow.update(name=action.value)(update)
    handler.validator(validator)  # type: ignore[arg-type]
    described = f"Same as the {action.value} update, for the temporal CLI; any payload."
    # Senders use the typed reference: one OperatorRequest (or nothing).
    typed = cast(UpdateMethodMultiParam[[Any, OperatorRequest | None], ActionReceipt], handler)
    return typed, workflow.signal(name=action.value, description=described)(signal)


class OperatorInbox:
    """Operator input for a workflow: the `approve` update and signal, the check every
    action goes through, and the record of refused signals (see the module docstring).

    Subclasses say what they take now (`_takes_now`), what they are doing (`_situation`)
    and how an action changes them (`_act`)."""

    SIGNALS: ClassVar[tuple[OperatorAction, ...]] = (OperatorAction.APPROVE,)
    """The operator signals (and updates) this kind of run defines."""

    def __init__(self) -> None:
        self._refused: list[RefusedInput] = []
        self._refused_dropped = 0
        """How many refused inputs fell off the kept list (progress says so)."""

    # --- what subclasses say --------------------------------------------------------

    def _takes_now(self) -> tuple[OperatorAction, ...]:
        raise NotImplementedError

    def _situation(self) -> str:
        """What the run is doing or waiting for, for a refusal message."""
        raise NotImplementedError

    def _act(self, action: OperatorAction, request: OperatorRequest) -> str:
        """Apply an accepted action; returns what the run does now because of it."""
        raise NotImplementedError

    # --- the check every action goes through ---------------------------------------

    def _refusal(self, action: OperatorAction) -> str | None:
        """None when the run takes `action` now, else why not (what it waits for)."""
        takes = self._takes_now()
        if action in takes:
            return None
        offer = ", ".join(a.value for a in takes) or "no operator action"
        return f"{action.value} is not possible now: {self._situation()}; it takes: {offer}"

    @staticmethod
    def _validate_payload(args: Sequence[Any]) -> None:
        """An update validator's check of its inputs: the signal path's refusal, final."""
        try:
            parse_request(args)
        except ValueError as exc:
            raise ApplicationError(
                f"payload refused: {exc}", type=ACTION_REFUSED, non_retryable=True
            ) from None

    def _validate(self, action: OperatorAction) -> None:
        """An update validator's body: raise the refusal the sender gets back."""
        why = self._refusal(action)
        if why is not None:
            raise ApplicationError(why, type=ACTION_REFUSED, non_retryable=True)

    def _take(self, action: OperatorAction, request: OperatorRequest | None) -> ActionReceipt:
        """An update handler's body (its validator has passed)."""
        request = request or OperatorRequest()
        effect = self._act(action, request)
        workflow.logger.info("%s (update): %s", request.describe(action), effect)
        return ActionReceipt(action=action, by=request.by, effect=effect)

    def _signalled(self, action: OperatorAction, args: Sequence[Any]) -> None:
        """A signal handler's body: act on it, or record why not. Never raises."""
        try:
            request = parse_request(args)
            why = self._refusal(action)
            if why is not None:
                self._refuse(action.value, why)
                return
            effect = self._act(action, request)
            workflow.logger.info("%s (signal): %s", request.describe(action), effect)
        except ValueError as exc:
            self._refuse(action.value, f"payload refused: {exc}")
        except Exception as exc:  # noqa: BLE001 - operator input must never fail the task
            self._refuse(action.value, f"could not be handled ({type(exc).__name__})")

    def _refuse(self, name: str, why: str) -> None:
        workflow.logger.warning("signal %r refused: %s", name, why)
        self._refused.append(RefusedInput(name=name[:100], at=workflow.now(), why=why))
        if len(self._refused) > REFUSED_KEPT:
            self._refused_dropped += len(self._refused) - REFUSED_KEPT
            del self._refused[:-REFUSED_KEPT]

    def _refused_inputs(self) -> tuple[RefusedInput, ...]:
        return tuple(self._refused)

    @workflow.signal(dynamic=True)
    def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Any other signal name: recorded as refused, never buffered without a trace."""
        known = [a.value for a in self.SIGNALS]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        self._refuse(name, f"unknown signal {name!r}{hint}; this run takes: {', '.join(known)}")

    # --- approve --------------------------------------------------------------------

    approve, approve_signal = operator_action(
        OperatorAction.APPROVE, "Approve what the run waits for approval of."
    )


class Aborted(Exception):
    """Raised inside the run when an operator aborted it."""


class _StepRecord(StepProgress):
    """The workflow's own, mutable record of one step: StepProgress's fields and no others
    (it is one), changed in place; `progress()` shows a frozen copy."""

    model_config = ConfigDict(frozen=False)

    def frozen(self) -> StepProgress:
        # Field by field as they are (a result stays its own type), not via a dump.
        return StepProgress(**dict(self))


class OperatedRun(OperatorInbox, Notifying):
    """Operator interface and step runner shared by the workflows that change a cluster.

    A wait for an operator is announced to the environment's webhooks (`waiting`, with the
    commands that answer it; once per wait: a step's wait per attempt) and shown by the
    `runs waiting for operator` gauge; an aborted run is announced (`failed`) before it
    ends (workflows/notifying.py)."""

    SIGNALS: ClassVar[tuple[OperatorAction, ...]] = tuple(OperatorAction)

    def __init__(self, step_names: tuple[str, ...]) -> None:
        OperatorInbox.__init__(self)
        Notifying.__init__(self)
        self._steps: dict[str, _StepRecord] = {n: _StepRecord(name=n) for n in step_names}
        self._state = RunState.RUNNING
        self._paused = False
        self._decision: tuple[OperatorAction, OperatorRequest] | None = None
        self._approved_by: str | None = None
        self._waiting_for: str | None = None
        self._waiting_actions: tuple[OperatorAction, ...] = ()
        self._approval_pending = False

    # --- operator interface: one update (validated) and one signal per action ----------

    retry, retry_signal = operator_action(
        OperatorAction.RETRY, "Run the waiting step again (e.g. after the schema was updated)."
    )
    skip, skip_signal = operator_action(
        OperatorAction.SKIP, "Move on past the waiting step; recorded in the result."
    )
    abort, abort_signal = operator_action(
        OperatorAction.ABORT, "End the run with a failure that lists what was done."
    )
    pause, pause_signal = operator_action(
        OperatorAction.PAUSE, "Hold the run before the next step starts."
    )
    resume, resume_signal = operator_action(OperatorAction.RESUME, "Let a paused run go on.")

    # --- what the actions do --------------------------------------------------------

    def _takes_now(self) -> tuple[OperatorAction, ...]:
        takes = self._allowed_actions()
        if (
            self._state == RunState.RUNNING
            and self._approval_pending
            and self._approved_by is None
            and OperatorAction.APPROVE not in takes
        ):
            takes = (*takes, OperatorAction.APPROVE)  # an early approve counts at the gate
        return takes

    def _situation(self) -> str:
        if self._state != RunState.RUNNING:
            return f"the run has ended ({self._state.value})"
        if self._waiting_for is not None:
            return f"it waits for: {self._waiting_for}"
        if self._paused:
            return "it is paused before its next step"
        running = [s.name for s in self._steps.values() if s.status == StepStatus.RUNNING]
        return f"it is running {running[0]}" if running else "it is between steps"

    def _act(self, action: OperatorAction, request: OperatorRequest) -> str:
        waiting = next(
            (s.name for s in self._steps.values() if s.status == StepStatus.WAITING_FOR_OPERATOR),
            "the run",
        )
        if action == OperatorAction.APPROVE:
            self._approved_by = request.by
            return "the approval gate opens"
        if action == OperatorAction.PAUSE:
            self._paused = True
            return "the run holds before its next step"
        if action == OperatorAction.RESUME:
            self._paused = False
            return "the run goes on"
        self._decision = (action, request)
        if action == OperatorAction.ABORT:
            return "the run ends as aborted"
        return (
            f"{waiting} runs again" if action == OperatorAction.RETRY else f"{waiting} is skipped"
        )

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

    def _aborted(self, message: str, error_type: str) -> ApplicationError:
        """The error an aborted run ends with: non-retryable, with the steps so far and, as
        details, what the subclass's `progress` query shows."""
        self._state = RunState.ABORTED
        return ApplicationError(
            f"{message}: {self._done_list()}",
            self.progress().model_dump(mode="json"),  # type: ignore[attr-defined]
            type=error_type,
            non_retryable=True,
        )

    async def _abort_error(self, message: str, error_type: str) -> ApplicationError:
        """`_aborted`'s error, once the webhooks were told (`failed`)."""
        error = self._aborted(message, error_type)
        environment = self._environment()
        if environment is not None:
            self._notify(
                environment,
                NotifyEvent.FAILED,
                "aborted",
                f"{workflow.info().workflow_id} was aborted",
                lines=[
                    f"{s.name}: {s.status.value}" + (f" ({s.summary})" if s.summary else "")
                    for s in self._steps.values()
                ],
            )
            await self._notifications_sent()
        return error

    # --- what the webhooks and gauges are told ----------------------------------------

    def _environment(self) -> Environment | None:
        """The run's (latest) declaration; None before the run started."""
        run_input = getattr(self, "_input", None)
        return None if run_input is None else cast(Environment, run_input.environment)

    def _run_option(self) -> str:
        """What the starter's commands add to address this run (` --upgrade`)."""
        return ""

    def _run_label(self) -> str:
        """The `run` label of the waiting gauge."""
        return "provision"

    def _waiting_begins(self, state: str, lines: Sequence[str] = ()) -> None:
        environment = self._environment()
        if environment is None:
            return
        self._set_waiting(environment.name, self._run_label(), True)
        workflow_id = workflow.info().workflow_id
        self._notify(
            environment,
            NotifyEvent.WAITING,
            state,
            f"{workflow_id} waits for an operator: {self._waiting_for}",
            lines=lines,
            commands=operator_commands(
                environment.name,
                workflow_id,
                [
                    a
                    for a in self._waiting_actions
                    if a not in (OperatorAction.PAUSE, OperatorAction.RESUME)
                ],
                NOTIFY_BY,
                self._run_option(),
            ),
        )

    def _waiting_ends(self) -> None:
        environment = self._environment()
        if environment is not None:
            self._set_waiting(environment.name, self._run_label(), False)

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
            self._waiting_begins(name)
            try:
                await workflow.wait_condition(
                    lambda: (
                        self._approved_by is not None
                        or (
                            self._decision is not None and self._decision[0] == OperatorAction.ABORT
                        )
                    )
                )
            finally:  # a cancelled run does not stay "waiting" in the gauge
                self._waiting_ends()
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

    async def _run_step(
        self,
        step: StepSpec[RunInput],
        input: RunInput,
        failed: ActivityError | None = None,
    ) -> StepResult | None:
        """Run `step` until it succeeds or an operator skips it (None) or aborts the run;
        `failed`: its first attempt, made and recorded already (`_run_steps_at_once`), failed
        so: it begins by waiting for its operator."""
        record = self._steps[step.name]
        if failed is None:
            record.started_at = workflow.now()
        while True:
            outcome = failed or await self._attempt(step, input)
            if isinstance(outcome, ActivityError):
                if failed is None:
                    self._record_failure(record, outcome)
                failed = None
                self._end_if_untrusted(outcome)
                action, request = await self._wait_for_operator(step.name, record)
                record.operator_actions += (request.describe(action),)
                if action == OperatorAction.RETRY:
                    continue
                if action == OperatorAction.SKIP:
                    self._finish(step.name, StepStatus.SKIPPED, summary=f"skipped by {request.by}")
                    return None
                self._finish(step.name, StepStatus.FAILED)
                raise Aborted() from None
            self._done(step.name, outcome)
            return outcome

    async def _attempt(
        self, step: StepSpec[RunInput], input: RunInput
    ) -> StepResult | ActivityError:
        """One attempt of a step's activity (its own retries included): its result, or the
        error it failed with for good."""
        record = self._steps[step.name]
        record.status = StepStatus.RUNNING
        record.attempts += 1
        try:
            return await execute_step(step, self._step_input(input))
        except ActivityError as err:
            return err

    async def _run_steps_at_once(
        self, steps: Sequence[StepSpec[RunInput]], input: RunInput
    ) -> list[StepResult | None]:
        """Steps that need nothing from each other: their first attempts run at once; then
        every outcome is recorded in list order (whichever finished first: a failed step
        shows its error and waits for an operator), and the failed steps take their operator
        decisions in list order: `retry`/`skip` apply to the first that waits, as when they
        run one by one."""
        for step in steps:
            self._steps[step.name].started_at = workflow.now()
        outcomes = await asyncio.gather(*(self._attempt(step, input) for step in steps))
        for step, outcome in zip(steps, outcomes, strict=True):
            if isinstance(outcome, ActivityError):
                self._record_failure(self._steps[step.name], outcome)
                self._steps[step.name].status = StepStatus.WAITING_FOR_OPERATOR
            else:
                self._done(step.name, outcome)
        return [
            await self._run_step(step, input, failed=outcome)
            if isinstance(outcome, ActivityError)
            else outcome
            for step, outcome in zip(steps, outcomes, strict=True)
        ]

    def _end_if_untrusted(self, err: ActivityError) -> None:
        """End the run when the worker refused its declaration: every step that was
        refused is marked failed, none waits for an operator."""
        why = untrusted_declaration(err)
        if why is None:
            return
        for record in self._steps.values():
            if record.status in (StepStatus.RUNNING, StepStatus.WAITING_FOR_OPERATOR):
                self._finish(record.name, StepStatus.FAILED, summary="declaration not trusted")
        self._waiting_for, self._waiting_actions = None, ()
        raise self._aborted(f"run refused by the worker: {why} Steps", UNTRUSTED_DECLARATION)

    def _done(self, name: str, result: StepResult) -> None:
        self._steps[name].result = result
        self._finish(name, StepStatus.DONE, changed=result.changed, summary=result.summary)

    def _step_input(self, input: Any) -> Any:
        """The input each attempt of a step runs with; a subclass that lets an operator hand
        over a new declaration returns the latest one."""
        return input

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
        self._waiting_begins(
            f"{step}/attempt-{record.attempts}",
            lines=[
                f"{step} failed for good after {record.attempts} attempt(s) "
                f"({record.last_error_type}): {record.last_error}"
            ],
        )
        try:
            await workflow.wait_condition(lambda: self._decision is not None)
        finally:  # a cancelled run does not stay "waiting" in the gauge
            self._waiting_ends()
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
