"""BootstrapWorkflow: provision one environment, step by step, steered by operator signals.

check_database -> ensure_ca_bundle -> ensure_db_secret -> (approval) -> install_chart ->
wait_frontend_healthy -> register_namespaces.

A step that fails for good (non-retryable error, or its deadline used up) does not fail the
run: it waits for `retry`, `skip` or `abort`. The `progress` query shows every step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.check_database import CheckDatabaseInput, CheckDatabaseResult
    from activities.ensure_ca_bundle import EnsureCaBundleInput, EnsureCaBundleResult
    from activities.ensure_db_secret import EnsureDbSecretInput, EnsureDbSecretResult
    from activities.errors import NON_RETRYABLE
    from activities.install_chart import InstallChartInput, InstallChartResult
    from activities.register_namespaces import RegisterNamespacesInput, RegisterNamespacesResult
    from activities.wait_frontend_healthy import (
        WaitFrontendHealthyInput,
        WaitFrontendHealthyResult,
    )
    from workflows.bootstrap_models import (
        BOOTSTRAP_STEPS,
        BootstrapInput,
        BootstrapProgress,
        BootstrapResult,
        OperatorSignal,
        RunState,
        StepProgress,
        StepStatus,
    )

_NON_RETRYABLE_TYPES = sorted(t.value for t in NON_RETRYABLE)

# Retry policies, one per concern. Every type the activities classify as permanent is listed,
# so a permanent error reaches the operator at once instead of burning the deadline.
PREFLIGHT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=_NON_RETRYABLE_TYPES,
)
KUBERNETES_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=_NON_RETRYABLE_TYPES,
)
HELM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=3,  # each attempt may wait the whole helm --timeout
    non_retryable_error_types=_NON_RETRYABLE_TYPES,
)
FRONTEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=1.5,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=_NON_RETRYABLE_TYPES,
)
NAMESPACE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=_NON_RETRYABLE_TYPES,
)


INSTALL_HEARTBEAT = timedelta(seconds=30)


@dataclass(frozen=True)
class StepActivity:
    """How the workflows run one step's activity: its input, timeouts and retry policy."""

    name: str
    make_input: Callable[[BootstrapInput], BaseModel]
    result_type: type[BaseModel]
    deadline: Callable[[BootstrapInput], timedelta]
    start_to_close: Callable[[BootstrapInput], timedelta]
    retry: RetryPolicy
    heartbeat: timedelta | None = None
    read_only: bool = False

    def execute(
        self, input: BootstrapInput, *, dry_run: bool = False, within: timedelta | None = None
    ) -> Awaitable[Any]:
        """Schedule this step's activity with its own timeouts and retry policy; `dry_run`
        asks it to report instead of change, `within` shortens its deadline."""
        activity_input = self.make_input(input)
        if dry_run:
            activity_input = activity_input.model_copy(update={"dry_run": True})
        deadline = self.deadline(input)
        start_to_close = self.start_to_close(input)
        if within is not None:
            deadline = min(deadline, within)
            start_to_close = min(start_to_close, deadline)
        return workflow.execute_activity(
            self.name,
            activity_input,
            result_type=self.result_type,
            schedule_to_close_timeout=deadline,
            start_to_close_timeout=start_to_close,
            heartbeat_timeout=self.heartbeat,
            retry_policy=self.retry,
        )


STEP_ACTIVITIES: dict[str, StepActivity] = {
    s.name: s
    for s in (
        StepActivity(
            "check_database",
            lambda i: CheckDatabaseInput(environment=i.environment),
            CheckDatabaseResult,
            lambda i: i.deadlines.check_database,
            lambda i: timedelta(minutes=1),
            PREFLIGHT_RETRY,
            read_only=True,
        ),
        StepActivity(
            "ensure_ca_bundle",
            lambda i: EnsureCaBundleInput(environment=i.environment),
            EnsureCaBundleResult,
            lambda i: i.deadlines.ensure_ca_bundle,
            lambda i: timedelta(minutes=1),
            KUBERNETES_WRITE_RETRY,
        ),
        StepActivity(
            "ensure_db_secret",
            lambda i: EnsureDbSecretInput(environment=i.environment),
            EnsureDbSecretResult,
            lambda i: i.deadlines.ensure_db_secret,
            lambda i: timedelta(minutes=1),
            KUBERNETES_WRITE_RETRY,
        ),
        StepActivity(
            "install_chart",
            lambda i: InstallChartInput(
                environment=i.environment,
                timeout=i.deadlines.helm_timeout,
                # A retry comes only after the previous attempt missed its heartbeats for this
                # long, so a release still pending then was left by a dead helm: recover it.
                pending_grace=INSTALL_HEARTBEAT,
            ),
            InstallChartResult,
            lambda i: i.deadlines.install_chart,
            # a pending-release recovery (rollback wait), the upgrade wait and its own rollback
            lambda i: i.deadlines.helm_timeout * 3 + timedelta(minutes=1),
            HELM_RETRY,
            heartbeat=INSTALL_HEARTBEAT,
        ),
        StepActivity(
            "wait_frontend_healthy",
            lambda i: WaitFrontendHealthyInput(
                environment=i.environment, max_wait=i.deadlines.frontend_max_wait
            ),
            WaitFrontendHealthyResult,
            lambda i: i.deadlines.wait_frontend_healthy,
            lambda i: i.deadlines.frontend_max_wait + timedelta(minutes=1),
            FRONTEND_RETRY,
            heartbeat=timedelta(seconds=30),
        ),
        StepActivity(
            "register_namespaces",
            lambda i: RegisterNamespacesInput(environment=i.environment),
            RegisterNamespacesResult,
            lambda i: i.deadlines.register_namespaces,
            lambda i: timedelta(minutes=5),
            NAMESPACE_RETRY,
            heartbeat=timedelta(seconds=30),
        ),
    )
}


def summarize(result: dict[str, Any]) -> tuple[bool | None, str]:
    """(changed, one-line summary) of an activity result, whatever its step."""
    if "namespaces" in result:
        actions = [f"{n['name']} {n['action']}" for n in result["namespaces"]]
        any_changed = any(n["action"] in ("created", "updated") for n in result["namespaces"])
        return any_changed, ", ".join(actions) or "no namespaces declared"
    action = result.get("action")
    changed: bool | None
    if "changed" in result:
        changed = bool(result["changed"])
    elif action is not None:
        changed = action not in ("unchanged", "verified")
    else:
        changed = False if result.get("summary") or result.get("status") else None
    summary = result.get("summary") or (
        f"{action}" + (f", revision {result['revision']}" if "revision" in result else "")
        if action
        else str(result.get("status", ""))
    )
    return changed, summary


class _Aborted(Exception):
    pass


@workflow.defn(name="BootstrapWorkflow")
class BootstrapWorkflow:
    """Provision one environment; see the module docstring for the steps and signals."""

    def __init__(self) -> None:
        self._input: BootstrapInput | None = None
        self._steps: dict[str, StepProgress] = {n: StepProgress(name=n) for n in BOOTSTRAP_STEPS}
        self._state = RunState.RUNNING
        self._paused = False
        self._decision: tuple[str, OperatorSignal] | None = None
        self._approved_by: str | None = None
        self._waiting_for: str | None = None

    # --- operator interface ---------------------------------------------------------

    @workflow.signal
    def retry(self, signal: OperatorSignal | None = None) -> None:
        """Run the waiting step again (e.g. after the schema was updated by hand)."""
        self._decide("retry", signal)

    @workflow.signal
    def skip(self, signal: OperatorSignal | None = None) -> None:
        """Move on past the waiting step; recorded in the result."""
        self._decide("skip", signal)

    @workflow.signal
    def abort(self, signal: OperatorSignal | None = None) -> None:
        """End the run with a failure that lists what was done."""
        self._decide("abort", signal)

    @workflow.signal
    def approve(self, signal: OperatorSignal | None = None) -> None:
        """Open the approval gate before install_chart."""
        self._approved_by = (signal or OperatorSignal()).by
        workflow.logger.info("approved by %s", self._approved_by)

    @workflow.signal
    def pause(self, signal: OperatorSignal | None = None) -> None:
        """Hold the run before the next step starts."""
        self._paused = True

    @workflow.signal
    def resume(self, signal: OperatorSignal | None = None) -> None:
        self._paused = False

    @workflow.query
    def progress(self) -> BootstrapProgress:
        return BootstrapProgress(
            environment=self._input.environment.name if self._input else "",
            state=self._run_state(),
            steps=list(self._steps.values()),
            waiting_for=self._waiting_for,
            approved_by=self._approved_by,
            dry_run=bool(self._input and self._input.dry_run),
        )

    def _decide(self, action: str, signal: OperatorSignal | None) -> None:
        # Abort is honoured at any time; retry/skip only mean something while a step waits.
        if action == "abort" or self._waiting_for is not None:
            self._decision = (action, signal or OperatorSignal())

    def _run_state(self) -> RunState:
        if self._state != RunState.RUNNING:
            return self._state
        if self._waiting_for is not None:
            return RunState.WAITING_FOR_OPERATOR
        return RunState.PAUSED if self._paused else RunState.RUNNING

    # --- the run ----------------------------------------------------------------------

    @workflow.run
    async def run(self, input: BootstrapInput) -> BootstrapResult:
        self._input = input
        try:
            for name in BOOTSTRAP_STEPS:
                await self._between_steps()
                if input.dry_run and not (
                    name in STEP_ACTIVITIES and STEP_ACTIVITIES[name].read_only
                ):
                    self._finish(name, StepStatus.SKIPPED, summary="dry run")
                    continue
                if name == "approval":
                    await self._approval_gate(input)
                else:
                    await self._run_step(STEP_ACTIVITIES[name], input)
        except _Aborted:
            self._state = RunState.ABORTED
            raise ApplicationError(
                f"provisioning of {input.environment.name} aborted: {self._done_list()}",
                self.progress().model_dump(mode="json"),
                type="BootstrapAborted",
                non_retryable=True,
            ) from None
        self._state = RunState.DONE
        steps = list(self._steps.values())
        return BootstrapResult(
            environment=input.environment.name,
            state=self._state,
            steps=steps,
            approved_by=self._approved_by,
            changed=any(s.changed for s in steps),
        )

    async def _between_steps(self) -> None:
        await workflow.wait_condition(lambda: not self._paused or self._decision is not None)
        if self._decision and self._decision[0] == "abort":
            raise _Aborted()

    async def _approval_gate(self, input: BootstrapInput) -> None:
        progress = self._steps["approval"]
        if not input.environment.approval_required:
            self._finish("approval", StepStatus.SKIPPED, summary="not required")
            return
        progress.started_at = workflow.now()
        if self._approved_by is None:
            progress.status = StepStatus.WAITING_FOR_OPERATOR
            self._waiting_for = "approval before install_chart: send `approve`"
            await workflow.wait_condition(
                lambda: (
                    self._approved_by is not None
                    or (self._decision is not None and self._decision[0] == "abort")
                )
            )
            self._waiting_for = None
            if self._approved_by is None:
                self._finish("approval", StepStatus.FAILED, summary="aborted before approval")
                raise _Aborted()
        self._finish(
            "approval", StepStatus.DONE, changed=False, summary=f"approved by {self._approved_by}"
        )

    async def _run_step(self, step: StepActivity, input: BootstrapInput) -> None:
        progress = self._steps[step.name]
        progress.started_at = workflow.now()
        while True:
            progress.status = StepStatus.RUNNING
            progress.attempts += 1
            try:
                result = await step.execute(input)
            except ActivityError as err:
                self._record_failure(progress, err)
                action, signal = await self._wait_for_operator(step.name, progress)
                progress.operator_actions.append(
                    f"{action} by {signal.by}" + (f": {signal.reason}" if signal.reason else "")
                )
                if action == "retry":
                    continue
                if action == "skip":
                    self._finish(step.name, StepStatus.SKIPPED, summary=f"skipped by {signal.by}")
                    return
                self._finish(step.name, StepStatus.FAILED)
                raise _Aborted() from None
            details = result.model_dump(mode="json")
            changed, summary = summarize(details)
            progress.details = details
            self._finish(step.name, StepStatus.DONE, changed=changed, summary=summary)
            return

    def _record_failure(self, progress: StepProgress, err: ActivityError) -> None:
        cause = err.cause
        progress.retry_state = err.retry_state.name if err.retry_state else None
        if isinstance(cause, ApplicationError):
            progress.last_error_type = cause.type
            progress.last_error = cause.message
        elif isinstance(cause, TimeoutError):
            progress.last_error_type = f"Timeout{cause.type.name.title() if cause.type else ''}"
            inner = cause.cause.message if isinstance(cause.cause, ApplicationError) else ""
            progress.last_error = (
                f"deadline reached ({cause.type.name if cause.type else 'timeout'})"
                + (f"; last error: {inner}" if inner else "")
            )
        else:
            progress.last_error_type = type(cause).__name__ if cause else "ActivityError"
            progress.last_error = str(cause or err)
        workflow.logger.warning(
            "step %s failed for good (%s): %s",
            progress.name,
            progress.last_error_type,
            progress.last_error,
        )

    async def _wait_for_operator(
        self, step: str, progress: StepProgress
    ) -> tuple[str, OperatorSignal]:
        progress.status = StepStatus.WAITING_FOR_OPERATOR
        if self._decision and self._decision[0] != "abort":
            self._decision = None  # a retry/skip sent earlier was meant for another wait
        self._waiting_for = f"{step} failed: send `retry`, `skip` or `abort`"
        await workflow.wait_condition(lambda: self._decision is not None)
        assert self._decision is not None
        decision, self._decision = self._decision, None
        self._waiting_for = None
        return decision

    def _finish(
        self, name: str, status: StepStatus, *, changed: bool | None = None, summary: str = ""
    ) -> None:
        progress = self._steps[name]
        progress.status = status
        progress.changed = changed
        progress.summary = summary or progress.summary
        progress.started_at = progress.started_at or workflow.now()
        progress.ended_at = workflow.now()

    def _done_list(self) -> str:
        parts = [
            f"{s.name} {s.status.value}" + (f" ({s.summary})" if s.summary else "")
            for s in self._steps.values()
        ]
        return "; ".join(parts)
