"""DriftCheckWorkflow: compare the declared state with what is live; report or repair.

Each bootstrap step that owns state (CA bundle ConfigMap, DB password Secret, helm release,
Temporal namespaces) runs in dry-run mode and says what it would change. Then, by the
environment's `drift_check.policy`:

- `report`: the result lists the drift; nothing is changed;
- `remediate`: the drifted steps run for real, in bootstrap order;
- `ask`: the run waits (up to `drift_check.interval`) for `approve`, then repairs.

`approve` is an update with a validator (refused unless the check waits for approval: the
sender is told what the check is doing) and a signal of the same name that takes any payload;
refused signals and unknown signal names are recorded in `refused` (workflows/operated.py's
`OperatorInbox`, shared with the bootstrap).

A check that fails (cluster unreachable, say) is reported as such and does not block: the next
scheduled run looks again. Started by hand (`starter.py drift ENV`) or by the Temporal Schedule
`drift-check-<env>` (`starter.py schedule ENV`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.bootstrap import BootstrapInput
    from contracts.drift_check import (
        DRIFT_CHECKED_STEPS,
        DriftCheckInput,
        DriftCheckResult,
        DriftFinding,
        DriftState,
        FindingStatus,
    )
    from contracts.operator import OperatorAction, OperatorRequest
    from declared_state.models import DriftPolicy
    from workflows.operated import OperatorInbox
    from workflows.steps import STEP_ACTIVITIES, StepActivity

# A dry run only reads; when it cannot read for this long the check reports that instead.
DRY_RUN_DEADLINE = timedelta(minutes=5)


def _error_text(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}"
    return str(cause or err)


@workflow.defn(name="DriftCheckWorkflow")
class DriftCheckWorkflow(OperatorInbox):
    """Check one environment for drift; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._input: DriftCheckInput | None = None
        self._findings: dict[str, DriftFinding] = {}
        self._state = DriftState.CHECKING
        self._approved_by: str | None = None
        self._checked_at: datetime | None = None

    # policy ask: `approve` (OperatorInbox) repairs the drift this run found.
    def _takes_now(self) -> tuple[OperatorAction, ...]:
        waiting = self._state == DriftState.WAITING_FOR_APPROVAL and self._approved_by is None
        return (OperatorAction.APPROVE,) if waiting else ()

    def _situation(self) -> str:
        if self._approved_by is not None:
            return f"the check was approved by {self._approved_by} already"
        return f"the check is {self._state.value}, not waiting for approval"

    def _act(self, action: OperatorAction, request: OperatorRequest) -> str:
        self._approved_by = request.by
        return "the drift found is repaired now"

    @workflow.query
    def progress(self) -> DriftCheckResult:
        return DriftCheckResult(
            environment=self._input.environment.name if self._input else "",
            policy=self._input.effective_policy if self._input else DriftPolicy.REPORT,
            state=self._state,
            findings=tuple(self._findings.values()),
            approved_by=self._approved_by,
            checked_at=self._checked_at,
            refused=self._refused_inputs(),
        )

    @workflow.run
    async def run(self, input: DriftCheckInput) -> DriftCheckResult:
        self._input = input
        self._checked_at = workflow.now()
        steps_input = BootstrapInput(
            environment=input.environment,
            requested_by=input.requested_by,
            deadlines=input.deadlines,
        )
        for name in DRIFT_CHECKED_STEPS:
            self._findings[name] = await self._check(STEP_ACTIVITIES[name], steps_input)

        drifted = [n for n, f in self._findings.items() if f.status == FindingStatus.DRIFTED]
        policy = input.effective_policy
        if drifted and policy == DriftPolicy.ASK:
            self._state = DriftState.WAITING_FOR_APPROVAL
            timeout = input.approval_timeout or input.environment.drift_check.interval
            workflow.logger.info("drift in %s: waiting up to %s for approve", drifted, timeout)
            try:
                await workflow.wait_condition(
                    lambda: self._approved_by is not None, timeout=timeout
                )
            except TimeoutError:
                workflow.logger.info("not approved in time; drift only reported")
        if drifted and (policy == DriftPolicy.REMEDIATE or self._approved_by is not None):
            self._state = DriftState.REPAIRING
            for name in drifted:
                self._findings[name] = await self._repair(
                    STEP_ACTIVITIES[name], steps_input, self._findings[name]
                )
        self._state = self._overall()
        return self.progress()

    async def _check(self, step: StepActivity, steps_input: BootstrapInput) -> DriftFinding:
        try:
            result = await step.execute(steps_input, dry_run=True, within=DRY_RUN_DEADLINE)
        except ActivityError as err:
            return DriftFinding(
                step=step.name, status=FindingStatus.CHECK_FAILED, error=_error_text(err)
            )
        if result.changed or result.drift:
            return DriftFinding(
                step=step.name,
                status=FindingStatus.DRIFTED,
                action=result.summary,
                drift=result.drift,
            )
        return DriftFinding(step=step.name, status=FindingStatus.IN_SYNC)

    async def _repair(
        self, step: StepActivity, steps_input: BootstrapInput, found: DriftFinding
    ) -> DriftFinding:
        try:
            result = await step.execute(steps_input)
        except ActivityError as err:
            return found.model_copy(
                update={"status": FindingStatus.REPAIR_FAILED, "error": _error_text(err)}
            )
        workflow.logger.info("%s repaired: %s", step.name, result.summary)
        return found.model_copy(update={"status": FindingStatus.REPAIRED, "action": result.summary})

    def _overall(self) -> DriftState:
        statuses = {f.status for f in self._findings.values()}
        if statuses & {FindingStatus.DRIFTED, FindingStatus.REPAIR_FAILED}:
            return DriftState.DRIFTED
        if FindingStatus.CHECK_FAILED in statuses:
            return DriftState.CHECK_FAILED
        if FindingStatus.REPAIRED in statuses:
            return DriftState.REPAIRED
        return DriftState.IN_SYNC
