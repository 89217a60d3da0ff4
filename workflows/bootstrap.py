"""BootstrapWorkflow: provision one environment, step by step, steered by an operator.

check_database -> ensure_ca_bundle -> ensure_db_secret -> (approval) -> install_chart ->
wait_frontend_healthy -> register_namespaces.

A step that fails for good (non-retryable error, or its deadline used up) does not fail the
run: it waits for `retry`, `skip` or `abort` (workflows/operated.py). The `progress` query
shows every step, its typed result, and the operator actions the run takes now.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.bootstrap import (
        BOOTSTRAP_STEPS,
        BootstrapInput,
        BootstrapProgress,
        BootstrapResult,
        RunState,
        StepStatus,
    )
    from workflows.operated import Aborted, OperatedRun
    from workflows.steps import STEP_ACTIVITIES


@workflow.defn(name="BootstrapWorkflow")
class BootstrapWorkflow(OperatedRun):
    """Provision one environment; see the module docstring for the steps and signals."""

    def __init__(self) -> None:
        super().__init__(BOOTSTRAP_STEPS)
        self._input: BootstrapInput | None = None

    @workflow.query
    def progress(self) -> BootstrapProgress:
        return BootstrapProgress(
            environment=self._input.environment.name if self._input else "",
            state=self._run_state(),
            steps=self._step_records(),
            waiting_for=self._waiting_for,
            allowed_actions=self._allowed_actions(),
            approved_by=self._approved_by,
            dry_run=bool(self._input and self._input.dry_run),
        )

    @workflow.run
    async def run(self, input: BootstrapInput) -> BootstrapResult:
        self._input = input
        self._approval_pending = input.environment.approval_required and not input.dry_run
        try:
            for name in BOOTSTRAP_STEPS:
                await self._between_steps()
                if input.dry_run and not (
                    name in STEP_ACTIVITIES and STEP_ACTIVITIES[name].read_only
                ):
                    self._finish(name, StepStatus.SKIPPED, summary="dry run")
                    continue
                if name == "approval":
                    await self._approval_gate(
                        name, input.environment.approval_required, before="install_chart"
                    )
                else:
                    await self._run_step(STEP_ACTIVITIES[name], input)
        except Aborted:
            self._state = RunState.ABORTED
            raise ApplicationError(
                f"provisioning of {input.environment.name} aborted: {self._done_list()}",
                self.progress().model_dump(mode="json"),
                type="BootstrapAborted",
                non_retryable=True,
            ) from None
        self._state = RunState.DONE
        steps = self._step_records()
        return BootstrapResult(
            environment=input.environment.name,
            state=self._state,
            steps=steps,
            approved_by=self._approved_by,
            changed=any(s.changed for s in steps),
        )
