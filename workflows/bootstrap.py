"""BootstrapWorkflow: provision one environment, step by step, steered by an operator.

check_database -> check_images (before the first write) -> ensure_ca_bundle -> ensure_db_secret -> (approval) -> install_chart ->
wait_frontend_healthy -> register_namespaces.

A step that fails for good (non-retryable error, or its deadline used up) does not fail the
run: it waits for `retry`, `skip` or `abort` (workflows/operated.py: updates with
validators, and signals of the same names that take any payload). The `progress` query shows
every step, its typed result, the operator actions the run takes now and the operator
signals it refused.

While a step waits, the `redeclare` update hands the run a corrected declaration (the
starter's `provision ENV --update-run` after a fixed environment file): validated like any
run input, recorded in the history, then the waiting step runs again with it, and so do the
later steps. Steps already done are not run again; the receipt names them, and
`provision ENV --restart` (abort, start afresh) is the way when they are affected.
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
        Redeclaration,
        RunState,
        StepStatus,
        declaration_changes,
    )
    from contracts.operator import ActionReceipt, OperatorAction, OperatorRequest
    from workflows.operated import ACTION_REFUSED, Aborted, OperatedRun
    from workflows.steps import BEFORE_PREFLIGHT, IMAGE_PREFLIGHT_PATCH, STEP_ACTIVITIES


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
            refused=self._refused_inputs(),
        )

    @workflow.update
    def redeclare(self, request: Redeclaration) -> ActionReceipt:
        """Hand the waiting run a corrected declaration; the waiting step runs again."""
        assert self._input is not None  # the validator refuses before the run started
        changed = declaration_changes(self._input.environment, request.environment)
        self._input = self._input.model_copy(update={"environment": request.environment})
        if self._steps["approval"].status == StepStatus.PENDING:
            self._approval_pending = (
                request.environment.approval_required and not self._input.dry_run
            )
        waiting = self._waiting_step()
        decision = OperatorRequest(by=request.by, reason=request.reason)
        self._steps[waiting].operator_actions.append(
            f"declaration replaced by {request.by}: {', '.join(changed)}"
            + (f" ({request.reason})" if request.reason else "")
        )
        self._decision = (OperatorAction.RETRY, decision)
        done = [s.name for s in self._steps.values() if s.status == StepStatus.DONE]
        effect = f"{waiting} runs again with the new declaration (changed: {', '.join(changed)})"
        if done:
            effect += f"; steps already done are kept: {', '.join(done)}"
        workflow.logger.info("declaration replaced by %s: %s", request.by, ", ".join(changed))
        return ActionReceipt(action=OperatorAction.RETRY, by=request.by, effect=effect)

    @redeclare.validator
    def _redeclare_possible(self, request: Redeclaration) -> None:
        why = self._refusal(OperatorAction.RETRY)
        if self._input is None:
            why = "the run has not started yet"
        elif why is None and request.environment.name != self._input.environment.name:
            why = (
                f"the declaration is for environment {request.environment.name!r}, this run "
                f"provisions {self._input.environment.name!r}"
            )
        elif why is None and not declaration_changes(self._input.environment, request.environment):
            why = "the declaration is the one the run already has; send retry instead"
        if why is not None:
            raise ApplicationError(
                why.replace("retry is not possible", "a new declaration is not possible"),
                type=ACTION_REFUSED,
                non_retryable=True,
            )

    def _waiting_step(self) -> str:
        return next(
            s.name for s in self._steps.values() if s.status == StepStatus.WAITING_FOR_OPERATOR
        )

    def _step_input(self, input: BootstrapInput) -> BootstrapInput:
        return self._input or input

    @workflow.run
    async def run(self, input: BootstrapInput) -> BootstrapResult:
        self._input = input
        self._approval_pending = input.environment.approval_required and not input.dry_run
        try:
            for name in BOOTSTRAP_STEPS:
                await self._between_steps()
                if name == "check_images" and not workflow.patched(IMAGE_PREFLIGHT_PATCH):
                    # A run recorded before the preflight existed replays without it.
                    self._finish(name, StepStatus.SKIPPED, summary=BEFORE_PREFLIGHT)
                    continue
                if input.dry_run and not (
                    name in STEP_ACTIVITIES and STEP_ACTIVITIES[name].read_only
                ):
                    self._finish(name, StepStatus.SKIPPED, summary="dry run")
                    continue
                if name == "approval":
                    await self._approval_gate(
                        name, self._input.environment.approval_required, before="install_chart"
                    )
                else:
                    await self._run_step(STEP_ACTIVITIES[name], input)
        except Aborted:
            raise self._aborted(
                f"provisioning of {input.environment.name} aborted", "BootstrapAborted"
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
