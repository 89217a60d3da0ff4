"""DriftCheckWorkflow: compare the declared state with what is live; report or repair.

Each bootstrap step that owns state (CA bundle ConfigMap, DB password Secret, helm release,
Temporal namespaces) runs in dry-run mode and says what it would change; two read-only
checks compare what no step's dry run sees: the chart's objects as they run, field by field
(check_live_objects), and the running Temporal cluster (check_temporal: frontend health,
server version, history shards, schema versions). A check that cannot read part of what it
checks says so ("could not check"), which is never "in sync". Then, by the environment's
`drift_check.policy`:

- `report`: the result lists the drift; nothing is changed;
- `remediate`: what can be repaired is, in bootstrap order: each drifted step runs for real,
  and the live objects' drift is repaired by install_chart re-applying the manifest (one helm
  revision, shared with the release's own repair). Findings nothing here can repair (a
  schema to update, a server to upgrade) stay drifted, each naming its command. Every
  repaired step is then checked again: what is still different (helm does not remove what
  no revision of the chart set) is reported as "not restored", and the run ends "repair
  failed" instead of claiming success;
- `ask`: when something can be repaired, the run waits (up to `drift_check.interval`) for
  `approve`, then repairs as `remediate` does.

How the running server release and both schema versions differ from the declared chart
(check_temporal) is drift that only `python starter.py upgrade ENV` moves, schema first, so
it is reported and never "remediated"; likewise a step whose drift has any item that is not
`repairable` (install_chart when the declared chart is another version) is never re-applied.

`approve` is an update with a validator (refused unless the check waits for approval: the
sender is told what the check is doing) and a signal of the same name that takes any payload;
refused signals and unknown signal names are recorded in `refused` (workflows/operated.py's
`OperatorInbox`, shared with the bootstrap).

A difference the step's run never touches (`left_alone`: a Temporal namespace nobody
declared, under `undeclared_namespaces: report`) is drift that is not repairable, but it does
not keep `remediate` from running the step for the step's other differences; when the check
after that repair finds only such differences, the step is drifted, not "not restored"
(`LEFT_ALONE_PATCH`, asked only where a left-alone difference decides, so earlier runs
replay unchanged). What a step leaves
alone because the declaration says so (`undeclared_namespaces: protect`) is in the finding's
`notes`: information, never drift.

A check that fails (cluster unreachable, say) is reported as such and does not block: the next
scheduled run looks again. Started by hand (`starter.py drift ENV`) or by the Temporal Schedule
`drift-check-<env>` (`starter.py schedule ENV`). Runs started before the two live checks
existed replay their original steps (`LIVE_CHECKS_PATCH`). The dry runs only read, so they
run at once (`CONCURRENT_CHECKS_PATCH`; earlier runs replay them one by one); the findings
are kept in CHECKED's order whatever finishes first. Repairs run one by one, in that order.

Replay rule: see workflows/__init__.py (a logic change goes behind `workflow.patched`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import notify
    from contracts.bootstrap import BootstrapInput
    from contracts.drift_check import (
        DRIFT_CHECKED_STEPS_V1,
        LEFT_ALONE_PATCH,
        LIVE_CHECKS_PATCH,
        REPAIRED_BY,
        DriftCheckInput,
        DriftCheckResult,
        DriftFinding,
        DriftState,
        FindingStatus,
        drift_records,
    )
    from contracts.operator import OperatorAction, OperatorRequest, drift_approval_commands
    from contracts.step_spec import StepSpec
    from contracts.trusted_declaration import UNTRUSTED_DECLARATION
    from declared_state.models import DriftPolicy, NotifyEvent
    from workflows.notifying import FIRST_ITEMS, NOTIFY_BY, Notifying
    from workflows.operated import OperatorInbox, untrusted_declaration
    from workflows.steps import CATALOG, activity_references, execute_step

# What the drift check compares, in bootstrap order (workflows/steps.py CATALOG, the specs
# marked `drift_checked`): the state each step owns, the live objects the chart installed
# (after the release itself) and the running cluster (last: frontend health, the server
# release and both schema versions, which only `upgrade` moves).
CHECKED: tuple[StepSpec[BootstrapInput], ...] = tuple(s for s in CATALOG if s.drift_checked)
CHECKED_BY_NAME = {s.name: s for s in CATALOG}
CONCURRENT_CHECKS_PATCH = "dry-runs-at-once"
"""Runs with this marker make their dry runs (reads only) at once; findings stay in order."""

# A dry run only reads; when it cannot read for this long the check reports that instead.
DRY_RUN_DEADLINE = timedelta(minutes=5)


def _error_text(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}"
    return str(cause or err)


class _Repair:
    """One real run of a step and the findings it repairs."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.options: dict[str, Any] = {}
        self.covers: list[str] = []


@workflow.defn(name="DriftCheckWorkflow")
class DriftCheckWorkflow(OperatorInbox, Notifying):
    """Check one environment for drift; see the module docstring."""

    @classmethod
    def activity_references(cls) -> tuple[object, ...]:
        """What a worker must register for this workflow."""
        return activity_references((*CHECKED, notify.SPEC))

    def __init__(self) -> None:
        OperatorInbox.__init__(self)
        Notifying.__init__(self)
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
        findings = tuple(self._findings.values())
        return DriftCheckResult(
            environment=self._input.environment.name if self._input else "",
            policy=self._input.effective_policy if self._input else DriftPolicy.REPORT,
            state=self._state,
            findings=findings,
            approved_by=self._approved_by,
            checked_at=self._checked_at,
            records=drift_records(findings),
            refused=self._refused_inputs(),
            refused_dropped=self._refused_dropped,
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
        if workflow.patched(LIVE_CHECKS_PATCH):
            await self._check_and_repair(input, steps_input)
        else:
            await self._check_and_repair_v1(input, steps_input)
        self._state = self._overall()
        self._tell_outcome(input)
        await self._notifications_sent()
        return self.progress()

    # -- what the gauges and webhooks are told (workflows/notifying.py) ----------------------
    def _counts(self) -> dict[str, int]:
        """Differences not ignored, per checked step, as they stand now."""
        left = {FindingStatus.DRIFTED, FindingStatus.NOT_RESTORED, FindingStatus.REPAIR_FAILED}
        return {
            name: len(finding.shown) if finding.status in left else 0
            for name, finding in self._findings.items()
        }

    def _tell_found(self, input: DriftCheckInput, asks: bool) -> None:
        drifted = [f for f in self._findings.values() if f.status == FindingStatus.DRIFTED]
        if not drifted:
            return
        counts = {name: n for name, n in self._counts().items() if n}
        items = [f"{f.step}: {d.message}" for f in drifted for d in f.shown]
        policy = input.effective_policy.value
        lines = items[:FIRST_ITEMS]
        if len(items) > FIRST_ITEMS:
            lines.append(f"... and {len(items) - FIRST_ITEMS} more (`starter.py drift ENV`)")
        self._notify(
            input.environment,
            NotifyEvent.DRIFT_FOUND,
            "found",
            f"drift found: {sum(counts.values())} difference(s) in "
            f"{', '.join(counts) or 'what could not be repaired'} (policy {policy})",
            lines=lines,
            commands=self._approval_commands(input) if asks else (),
            counts=counts,
        )

    def _approval_commands(self, input: DriftCheckInput) -> list[str]:
        return drift_approval_commands(
            input.environment.name, workflow.info().workflow_id, NOTIFY_BY
        )

    def _tell_outcome(self, input: DriftCheckInput) -> None:
        env = input.environment
        counts = self._counts()
        completed = None if self._state == DriftState.CHECK_FAILED else workflow.now()
        # A step that could not be checked keeps the gauge's last value: unknown is not 0.
        checked = {
            name: n
            for name, n in counts.items()
            if self._findings[name].status != FindingStatus.CHECK_FAILED
        }
        self._set_drift(env.name, checked, completed)
        if self._state == DriftState.REPAIRED:
            repaired = [
                f.step for f in self._findings.values() if f.status == FindingStatus.REPAIRED
            ]
            self._notify(
                env,
                NotifyEvent.DRIFT_REPAIRED,
                "repaired",
                f"drift repaired by {', '.join(repaired)}",
                lines=[
                    f"{f.step}: {f.action}"
                    for f in self._findings.values()
                    if f.action and f.status == FindingStatus.REPAIRED
                ],
            )
        elif self._state in (DriftState.REPAIR_FAILED, DriftState.CHECK_FAILED):
            failed = [
                f"{f.step}: {f.status.value}" + (f" ({f.error})" if f.error else "")
                for f in self._findings.values()
                if f.status
                in (
                    FindingStatus.REPAIR_FAILED,
                    FindingStatus.NOT_RESTORED,
                    FindingStatus.CHECK_FAILED,
                )
            ]
            self._notify(
                env,
                NotifyEvent.FAILED,
                self._state.value,
                f"drift check {self._state.value}",
                lines=failed[:FIRST_ITEMS],
                counts={k: n for k, n in counts.items() if n},
            )

    # -- the check ---------------------------------------------------------------------------
    async def _check_and_repair(self, input: DriftCheckInput, steps_input: BootstrapInput) -> None:
        if workflow.patched(CONCURRENT_CHECKS_PATCH):

            async def check(step: StepSpec[BootstrapInput]) -> DriftFinding:
                # `progress` shows each finding as soon as it is known (#20.3: `drift`
                # prints it then); query state only, no command, so replay is unaffected.
                finding = self._findings[step.name] = await self._check(step, steps_input)
                return finding

            found = await asyncio.gather(*(check(step) for step in CHECKED))
            self._findings = {finding.step: finding for finding in found}  # in check order
        else:  # runs started before: one dry run after the other
            for step in CHECKED:
                self._findings[step.name] = await self._check(step, steps_input)
        repairs = self._repairs()
        policy = input.effective_policy
        self._tell_found(input, asks=bool(repairs) and policy == DriftPolicy.ASK)
        if repairs and policy == DriftPolicy.ASK:
            await self._wait_for_approval(input, [r.step for r in repairs])
        if not repairs or not (policy == DriftPolicy.REMEDIATE or self._approved_by is not None):
            return
        self._state = DriftState.REPAIRING
        for repair in repairs:
            await self._repair_with(repair, steps_input)
        # helm's merge does not restore everything: look again before saying "repaired".
        for repair in repairs:
            for name in repair.covers:
                if self._findings[name].status == FindingStatus.REPAIRED:
                    await self._check_again(name, steps_input)

    def _repairs(self) -> list[_Repair]:
        """The real runs that repair what was found, one per step, in bootstrap order: a
        read-only check's drift is repaired by the step REPAIRED_BY names (install_chart,
        once, for the release and its live objects together). A step whose own finding has
        a difference its run must not touch is not run at all, for anything."""
        forbidden = {
            name
            for name, finding in self._findings.items()
            if name not in REPAIRED_BY
            and finding.status == FindingStatus.DRIFTED
            and self._forbids_its_own_run(finding)
        }
        runs: dict[str, _Repair] = {}
        for name, finding in self._findings.items():
            if finding.status != FindingStatus.DRIFTED or not finding.repairable:
                continue
            target = REPAIRED_BY.get(name, (name, {}))
            if target is None or target[0] in forbidden:
                continue
            step, options = target
            repair = runs.setdefault(step, _Repair(step))
            repair.options.update(options)
            repair.covers.append(name)
        return sorted(runs.values(), key=lambda r: [s.name for s in CHECKED].index(r.step))

    @staticmethod
    def _forbids_its_own_run(finding: DriftFinding) -> bool:
        if finding.forbids_its_own_run:
            return True
        # What is left is `left_alone` (its run never touches it): that forbids the run only
        # for runs started before LEFT_ALONE_PATCH, asked only where it decides (no history
        # recorded before it holds such a difference).
        left_alone = any(not d.repairable for d in finding.shown)
        return left_alone and finding.repairable and not workflow.patched(LEFT_ALONE_PATCH)

    async def _wait_for_approval(self, input: DriftCheckInput, steps: list[str]) -> None:
        self._state = DriftState.WAITING_FOR_APPROVAL
        timeout = input.approval_timeout or input.environment.drift_check.interval
        workflow.logger.info("drift: %s would repair it; waiting up to %s", steps, timeout)
        env = input.environment
        self._set_waiting(env.name, "drift check", True)
        self._notify(
            env,
            NotifyEvent.WAITING,
            "approval",
            f"{workflow.info().workflow_id} waits up to {timeout} for approval to repair "
            f"with {', '.join(steps)}",
            commands=self._approval_commands(input),
        )
        try:
            await workflow.wait_condition(lambda: self._approved_by is not None, timeout=timeout)
        except TimeoutError:
            workflow.logger.info("not approved in time; drift only reported")
        self._set_waiting(env.name, "drift check", False)

    async def _repair_with(self, repair: _Repair, steps_input: BootstrapInput) -> None:
        step = CHECKED_BY_NAME[repair.step]
        try:
            result = await execute_step(step, steps_input, options=repair.options or None)
        except ActivityError as err:
            for name in repair.covers:
                self._findings[name] = self._findings[name].model_copy(
                    update={"status": FindingStatus.REPAIR_FAILED, "error": _error_text(err)}
                )
            return
        workflow.logger.info("%s repaired by %s: %s", repair.covers, step.name, result.summary)
        for name in repair.covers:
            self._findings[name] = self._findings[name].model_copy(
                update={"status": FindingStatus.REPAIRED, "action": result.summary}
            )

    async def _check_again(self, name: str, steps_input: BootstrapInput) -> None:
        repaired = self._findings[name]
        again = await self._check(CHECKED_BY_NAME[name], steps_input)
        if again.status == FindingStatus.IN_SYNC:
            return
        if again.status == FindingStatus.DRIFTED:
            left = again.shown
            if (
                left
                and not again.would_change
                and all(d.left_alone for d in left)
                and workflow.patched(LEFT_ALONE_PATCH)
            ):
                # All that is left is what the repair was never to touch (namespaces nobody
                # declared): drift still to report, not a repair that failed.
                self._findings[name] = again
                return
            self._findings[name] = repaired.model_copy(
                update={
                    "status": FindingStatus.NOT_RESTORED,
                    "drift": again.drift,
                    "error": f"{len(left)} difference(s) left after the repair",
                }
            )
            return
        self._findings[name] = repaired.model_copy(
            update={
                "status": FindingStatus.CHECK_FAILED,
                "unchecked": again.unchecked,
                "error": f"repaired, but the check after the repair could not run: {again.error}",
            }
        )

    async def _check_and_repair_v1(
        self, input: DriftCheckInput, steps_input: BootstrapInput
    ) -> None:
        """The check as it was before LIVE_CHECKS_PATCH, for runs started then."""
        for name in DRIFT_CHECKED_STEPS_V1:
            self._findings[name] = await self._check(CHECKED_BY_NAME[name], steps_input)

        # Only drift that re-applying the step repairs is ever repaired (or asked about).
        drifted = [
            n
            for n, f in self._findings.items()
            if f.status == FindingStatus.DRIFTED and all(d.repairable for d in f.drift)
        ]
        policy = input.effective_policy
        if drifted and policy == DriftPolicy.ASK:
            await self._wait_for_approval(input, drifted)
        if drifted and (policy == DriftPolicy.REMEDIATE or self._approved_by is not None):
            self._state = DriftState.REPAIRING
            for name in drifted:
                repair = _Repair(name)
                repair.covers.append(name)
                await self._repair_with(repair, steps_input)

    async def _check(
        self, step: StepSpec[BootstrapInput], steps_input: BootstrapInput
    ) -> DriftFinding:
        try:
            result = await execute_step(step, steps_input, dry_run=True, within=DRY_RUN_DEADLINE)
        except ActivityError as err:
            if (why := untrusted_declaration(err)) is not None:
                # Not drift to report: the worker refuses the declaration the check carries
                # (a Schedule's input from before the trusted copy changed, say).
                raise ApplicationError(
                    f"drift check refused by the worker: {why}",
                    type=UNTRUSTED_DECLARATION,
                    non_retryable=True,
                ) from None
            return DriftFinding(
                step=step.name, status=FindingStatus.CHECK_FAILED, error=_error_text(err)
            )
        found = DriftFinding(
            step=step.name,
            status=FindingStatus.IN_SYNC,
            drift=result.drift,  # ignored differences too: they are counted
            unchecked=result.unchecked,
            would_change=result.changed,
            notes=result.notes,  # data for people only: no command depends on it
        )
        if result.changed or found.shown:
            return found.model_copy(
                update={"status": FindingStatus.DRIFTED, "action": result.summary}
            )
        if result.unchecked:
            return found.model_copy(
                update={
                    "status": FindingStatus.CHECK_FAILED,
                    "error": f"could not check {len(result.unchecked)} thing(s)",
                }
            )
        return found

    def _overall(self) -> DriftState:
        statuses = {f.status for f in self._findings.values()}
        if statuses & {FindingStatus.REPAIR_FAILED, FindingStatus.NOT_RESTORED}:
            return DriftState.REPAIR_FAILED
        if FindingStatus.DRIFTED in statuses:
            return DriftState.DRIFTED
        if FindingStatus.CHECK_FAILED in statuses:
            return DriftState.CHECK_FAILED
        if FindingStatus.REPAIRED in statuses:
            return DriftState.REPAIRED
        return DriftState.IN_SYNC
