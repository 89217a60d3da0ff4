"""BootstrapWorkflow: provision one environment, step by step, steered by an operator.

check_images (the image preflight: nothing is written before it) -> check_database,
ensure_ca_bundle, ensure_db_secret (at once: none needs another) ->
(approval) -> install_chart -> wait_frontend_healthy -> register_namespaces.

`STEPS` composes the steps' specs (contracts/<step>.py `SPEC`); what runs at once comes from
each spec's `after` (contracts/step_spec.py `waves`). Steps that run at once make their first
attempts together; their outcomes are recorded in list order and a failed one waits for its
operator in that order, so `progress` reads as before; `pause` holds the run before its
next group. Runs started before (`CONCURRENT_STEPS_PATCH` absent) replay one step at a
time, as they ran.

A step that fails for good (non-retryable error, or its deadline used up) does not fail the
run: it waits for `retry`, `skip` or `abort` (workflows/operated.py: updates with
validators, and signals of the same names that take any payload). The `progress` query shows
every step, its typed result, the operator actions the run takes now and the operator
signals it refused.

While a step waits, the `redeclare` update hands the run a corrected declaration (the
starter's `provision ENV --update-run` after a fixed environment file): validated like any
run input, recorded in the history, then the waiting step runs again with it, and so do the
later steps. At the approval gate it is taken too (behind the patch `REDECLARE_AT_GATE`):
recorded on the approval step, and the gate asks for approval again, of the new declaration. Steps already done are not run again; the receipt names them, and
`provision ENV --restart` (abort, start afresh) is the way when they are affected.

Replay rule: see workflows/__init__.py (a logic change goes behind `workflow.patched`).
"""

from __future__ import annotations

from typing import ClassVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import (
        check_database,
        check_images,
        ensure_ca_bundle,
        ensure_db_secret,
        install_chart,
        notify,
        register_namespaces,
        wait_frontend_healthy,
    )
    from contracts.bootstrap import (
        BootstrapInput,
        BootstrapProgress,
        BootstrapResult,
        Redeclaration,
        RunState,
        StepStatus,
        declaration_changes,
    )
    from contracts.check_images import BEFORE_PREFLIGHT, IMAGE_PREFLIGHT_PATCH
    from contracts.operator import ActionReceipt, OperatorAction, OperatorRequest
    from contracts.step_spec import Gate, StepItem, StepSpec, waves
    from workflows.operated import ACTION_REFUSED, Aborted, OperatedRun
    from workflows.steps import activity_references

CONCURRENT_STEPS_PATCH = "independent-steps-at-once"
"""Runs with this marker run steps that need nothing from each other at once."""


REDECLARE_AT_GATE = "redeclare-at-approval-gate"
"""Patch: `redeclare` accepted while the approval gate waits (#20.5); before it, refused."""


@workflow.defn(name="BootstrapWorkflow")
class BootstrapWorkflow(OperatedRun):
    """Provision one environment; see the module docstring for the steps and signals."""

    STEPS: ClassVar[tuple[StepItem, ...]] = (
        check_images.SPEC,
        check_database.SPEC,
        ensure_ca_bundle.SPEC,
        ensure_db_secret.SPEC,
        Gate(name="approval", before="install_chart"),
        install_chart.SPEC,
        wait_frontend_healthy.SPEC,
        register_namespaces.SPEC,
    )
    """The steps in order (a subclass composes another list the same way)."""

    @classmethod
    def activity_references(cls) -> tuple[object, ...]:
        """What a worker must register for this workflow."""
        return (*activity_references(cls.STEPS), notify.SPEC.activity)

    def __init__(self) -> None:
        super().__init__(tuple(item.name for item in self.STEPS))
        self._input: BootstrapInput | None = None

    def _run_option(self) -> str:
        return " --dry-run" if self._input and self._input.dry_run else ""

    def _run_label(self) -> str:
        return "provision dry run" if self._input and self._input.dry_run else "provision"

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
            refused_dropped=self._refused_dropped,
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
        self._steps[waiting].operator_actions += (
            f"declaration replaced by {request.by}: {', '.join(changed)}"
            + (f" ({request.reason})" if request.reason else ""),
        )
        if waiting == "approval" and workflow.patched(REDECLARE_AT_GATE):
            # The gate keeps waiting: what is approved is the new declaration. No decision
            # is left behind (a RETRY would answer a later step's failure by itself).
            workflow.logger.info("declaration replaced by %s: %s", request.by, ", ".join(changed))
            effect = (
                f"approval is asked again with the new declaration (changed: {', '.join(changed)})"
            )
            return ActionReceipt(action=OperatorAction.RETRY, by=request.by, effect=effect)
        self._decision = (OperatorAction.RETRY, decision)
        done = [s.name for s in self._steps.values() if s.status == StepStatus.DONE]
        effect = f"{waiting} runs again with the new declaration (changed: {', '.join(changed)})"
        if done:
            effect += f"; steps already done are kept: {', '.join(done)}"
        workflow.logger.info("declaration replaced by %s: %s", request.by, ", ".join(changed))
        return ActionReceipt(action=OperatorAction.RETRY, by=request.by, effect=effect)

    @redeclare.validator
    def _redeclare_possible(self, request: Redeclaration) -> None:
        # At the approval gate (not yet approved) a declaration can be fixed too (#20.5).
        at_gate = self._steps["approval"].status == StepStatus.WAITING_FOR_OPERATOR
        why = self._refusal(OperatorAction.APPROVE if at_gate else OperatorAction.RETRY)
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
                why.replace("retry is not possible", "a new declaration is not possible").replace(
                    "approve is not possible", "a new declaration is not possible"
                ),
                type=ACTION_REFUSED,
                non_retryable=True,
            )

    def _waiting_step(self) -> str:
        return next(
            s.name for s in self._steps.values() if s.status == StepStatus.WAITING_FOR_OPERATOR
        )

    def _step_input(self, input: BootstrapInput) -> BootstrapInput:
        return self._input or input

    async def _run_group(self, group: tuple[StepItem, ...], input: BootstrapInput) -> None:
        steps: list[StepSpec[BootstrapInput]] = []
        for item in group:
            if input.dry_run and not (isinstance(item, StepSpec) and item.read_only):
                self._finish(item.name, StepStatus.SKIPPED, summary="dry run")
            elif isinstance(item, Gate):
                assert self._input is not None
                await self._approval_gate(
                    item.name, self._input.environment.approval_required, before=item.before
                )
            else:
                steps.append(item)
        if len(steps) == 1:
            await self._run_step(steps[0], input)
        elif steps:
            await self._run_steps_at_once(steps, input)

    @workflow.run
    async def run(self, input: BootstrapInput) -> BootstrapResult:
        self._input = input
        self._approval_pending = input.environment.approval_required and not input.dry_run
        at_once = workflow.patched(CONCURRENT_STEPS_PATCH)
        items = self.STEPS
        if not workflow.patched(IMAGE_PREFLIGHT_PATCH):
            # A run recorded before the image preflight replays without it.
            items = tuple(i for i in items if i is not check_images.SPEC)
            if check_images.SPEC.name in self._steps:
                self._finish(check_images.SPEC.name, StepStatus.SKIPPED, summary=BEFORE_PREFLIGHT)
        groups = waves(items) if at_once else tuple((item,) for item in items)
        try:
            for group in groups:
                await self._between_steps()
                await self._run_group(group, input)
        except Aborted:
            raise await self._abort_error(
                f"provisioning of {input.environment.name} aborted", "BootstrapAborted"
            ) from None
        self._state = RunState.DONE
        await self._notifications_sent()
        steps = self._step_records()
        return BootstrapResult(
            environment=input.environment.name,
            state=self._state,
            steps=steps,
            approved_by=self._approved_by,
            changed=any(s.changed for s in steps),
        )
