"""UpgradeWorkflow: move one environment's cluster to its declared chart, one minor at a time,
schema first, steered by an operator (`upgrade-<environment>`).

read_live_versions (what the cluster runs: never assumed) -> the plan
(declared_state/upgrade_path.py: one hop per minor, the declared chart last) -> per hop:

    approval (when approval_required) -> check_images (every image exists, before any
    write) -> snapshot_database -> update_schema ->
    install_chart (the hop's chart, images pinned) -> wait_frontend_healthy ->
    check_server_version -> soak

No Deployment is touched before the hop's update_schema step has verified the databases:
a hop that stops in between leaves old binaries on a newer schema, which they run fine on,
and the progress says so (`cluster`). A downgrade, or a cluster the tables cannot plan
from, is refused before anything changes (`UpgradeRefused`), with what to do instead. With
`plan_only` the run reads and plans only.

Every step is the operator-steered step of workflows/operated.py: a step that fails for good
waits for `retry`, `skip` or `abort`; `pause` holds the run between steps; the approval gate
asks for `approve` before each hop. The `progress` query shows the plan, the hop under way,
every step (`hop <n>: <step>`), the snapshots taken and where the cluster stands.

The plan is recorded, not recomputed: it comes from the version tables of the release of
this tool that started the run, through the `plan_upgrade` local activity
(contracts/plan_upgrade.py), so its result is a marker in the history. A newer worker that
replays a run waiting at a hop's approval (its tables gained a row meanwhile) reads the
plan that was approved and completes it. Runs started before the plan was recorded
(without the `PLAN_RECORDED_PATCH` marker) still plan inline, as they did.

Replay rule: see workflows/__init__.py (a logic change goes behind `workflow.patched`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import (
        check_images,
        check_server_version,
        install_chart,
        notify,
        read_live_versions,
        snapshot_database,
        soak,
        update_schema,
        wait_frontend_healthy,
    )
    from contracts.bootstrap import BootstrapInput, RunState, StepStatus
    from contracts.check_images import BEFORE_PREFLIGHT, IMAGE_PREFLIGHT_PATCH
    from contracts.plan_upgrade import PlanUpgradeInput, PlanUpgradeResult, plan_upgrade
    from contracts.read_live_versions import ReadLiveVersionsResult
    from contracts.snapshot_database import SnapshotDatabaseResult
    from contracts.step_spec import Gate, StepItem, StepSpec
    from contracts.update_schema import UpdateSchemaResult
    from contracts.upgrade import (
        HopInput,
        UpgradeInput,
        UpgradeProgress,
        UpgradeResult,
        hop_step,
        snapshot_id,
    )
    from declared_state import upgrade_path
    from declared_state.upgrade_path import Hop, UpgradeRefused, hop_environment
    from workflows.operated import Aborted, OperatedRun
    from workflows.steps import activity_references

# Every hop, in order: no Deployment is touched before update_schema has been verified. The
# bootstrap's install_chart and wait_frontend_healthy run with the hop's chart.
HOP: tuple[StepItem, ...] = (
    Gate(name="approval", before="the hop"),
    check_images.HOP_SPEC,
    snapshot_database.SPEC,
    update_schema.SPEC,
    install_chart.SPEC,
    wait_frontend_healthy.SPEC,
    check_server_version.SPEC,
    soak.SPEC,
)
HOP_STEPS = tuple(item.name for item in HOP)

PLAN_RECORDED_PATCH = "plan-recorded-by-activity"
"""Runs with this marker read their plan from the plan_upgrade local activity's record."""

# Pure and fast: a failure here is a bug, which a few attempts will not cure.
_PLAN_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name="UpgradeWorkflow")
class UpgradeWorkflow(OperatedRun):
    """Upgrade one environment; see the module docstring for the hops and signals."""

    @classmethod
    def activity_references(cls) -> tuple[object, ...]:
        """What a worker must register for this workflow (the plan's local activity too)."""
        return (
            *activity_references((read_live_versions.SPEC, *HOP, notify.SPEC)),
            plan_upgrade,
        )

    def _run_option(self) -> str:
        return " --upgrade"

    def _run_label(self) -> str:
        return "upgrade"

    def __init__(self) -> None:
        super().__init__((read_live_versions.SPEC.name,))
        self._input: UpgradeInput | None = None
        self._live: ReadLiveVersionsResult | None = None
        self._plan: tuple[Hop, ...] = ()
        self._planned = False
        self._hop: int | None = None
        self._image_preflight = True
        self._snapshots: list[str] = []
        self._schema: tuple[str | None, str | None] = (None, None)
        self._server: str | None = None
        self._chart: str | None = None

    @workflow.query
    def progress(self) -> UpgradeProgress:
        live = self._live
        return UpgradeProgress(
            environment=self._input.environment.name if self._input else "",
            state=self._run_state(),
            steps=self._step_records(),
            waiting_for=self._waiting_for,
            allowed_actions=self._allowed_actions(),
            approved_by=self._approved_by,
            refused=self._refused_inputs(),
            refused_dropped=self._refused_dropped,
            plan=self._plan,
            planned=self._planned,
            hop=self._hop,
            live_server=live.server_version if live else None,
            live_chart=live.chart if live else None,
            live_schema=(live.default_schema, live.visibility_schema) if live else (None, None),
            snapshots=tuple(self._snapshots),
            cluster=self._cluster(),
            plan_only=bool(self._input and self._input.plan_only),
        )

    @workflow.run
    async def run(self, input: UpgradeInput) -> UpgradeResult:
        self._input = input
        # Asked first, before any activity: a patch marker recorded in the same workflow task
        # as the plan's local activity marker does not replay (a query's replay failed so).
        self._image_preflight = workflow.patched(IMAGE_PREFLIGHT_PATCH)
        env = input.environment
        try:
            await self._between_steps()
            self._live = await self._read_live(input)
            self._server, self._chart = self._live.server_version, self._live.chart
            self._schema = (self._live.default_schema, self._live.visibility_schema)
            if workflow.patched(PLAN_RECORDED_PATCH):
                self._plan = await self._recorded_plan(self._live, input)
            else:  # runs started before the plan was recorded: plan inline, as they did
                self._plan = self._plan_from(self._live, input)
            self._planned = True
            if not input.plan_only:
                for hop in self._plan:
                    await self._run_hop(input, hop)
        except Aborted:
            raise await self._abort_error(
                f"upgrade of {env.name} aborted: {self._cluster()}. Steps", "UpgradeAborted"
            ) from None
        self._state = RunState.DONE
        self._hop = None
        await self._notifications_sent()
        steps = self._step_records()
        live = self._live
        return UpgradeResult(
            environment=env.name,
            state=self._state,
            steps=steps,
            approved_by=self._approved_by,
            changed=any(s.changed for s in steps),
            plan=self._plan,
            live_server=live.server_version,
            live_chart=live.chart,
            live_schema=(live.default_schema, live.visibility_schema),
            snapshots=tuple(self._snapshots),
            plan_only=input.plan_only,
        )

    # --- planning -------------------------------------------------------------------

    async def _read_live(self, input: UpgradeInput) -> ReadLiveVersionsResult:
        steps_input = BootstrapInput(
            environment=input.environment,
            requested_by=input.requested_by,
            deadlines=input.deadlines,
        )
        live = await self._run_step(read_live_versions.SPEC, steps_input)
        if not isinstance(live, ReadLiveVersionsResult):  # skipped by an operator
            raise self._refusal_error(
                "the live versions were not read (skipped): nothing to plan from"
            )
        return live

    async def _recorded_plan(
        self, live: ReadLiveVersionsResult, input: UpgradeInput
    ) -> tuple[Hop, ...]:
        live_server = self._deployed_server(live, input)
        planned: PlanUpgradeResult = await workflow.execute_local_activity(
            plan_upgrade,
            PlanUpgradeInput(
                live_server=live_server,
                live_chart=live.chart,
                target=input.environment.chart,
                images=input.environment.images,
            ),
            start_to_close_timeout=_PLAN_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        if planned.refused is not None:
            raise self._refusal_error(planned.refused)
        return planned.hops

    def _deployed_server(self, live: ReadLiveVersionsResult, input: UpgradeInput) -> str:
        env = input.environment
        if live.server_version is None:
            raise self._refusal_error(
                f"no Temporal release {env.kubernetes.release!r} runs in namespace "
                f"{env.kubernetes.namespace}: provision it first (python starter.py provision "
                f"{env.name})"
            )
        return live.server_version

    def _plan_from(self, live: ReadLiveVersionsResult, input: UpgradeInput) -> tuple[Hop, ...]:
        """The plan computed inline from today's tables: only for runs without
        PLAN_RECORDED_PATCH (their histories have no plan to read)."""
        env = input.environment
        live_server = self._deployed_server(live, input)
        try:
            return upgrade_path.plan_upgrade(live_server, live.chart, env.chart, env.images)
        except UpgradeRefused as exc:
            raise self._refusal_error(str(exc)) from None

    def _refusal_error(self, why: str) -> ApplicationError:
        self._state = RunState.ABORTED
        name = self._input.environment.name if self._input else ""
        return ApplicationError(
            f"upgrade of {name} refused: {why}", type="UpgradeRefused", non_retryable=True
        )

    # --- one hop --------------------------------------------------------------------

    async def _run_hop(self, input: UpgradeInput, hop: Hop) -> None:
        env = input.environment
        self._hop = hop.number
        self._add_steps(tuple(hop_step(hop.number, s) for s in HOP_STEPS))
        hop_input = HopInput(
            environment=hop_environment(env, hop),
            requested_by=input.requested_by,
            deadlines=input.deadlines,
            hop=hop,
            snapshot_id=snapshot_id(env.name, hop),
            not_before=workflow.info().start_time,
        )
        await self._between_steps()
        gate = hop_step(hop.number, "approval")
        self._approval_pending = env.approval_required
        await self._approval_gate(
            gate, env.approval_required, before=f"hop {hop.number} (to {hop.server})"
        )
        # One approval opens one hop's gate: the next hop asks again.
        self._approved_by = None
        for step in HOP[1:]:
            assert isinstance(step, StepSpec)
            await self._between_steps()
            if step is check_images.HOP_SPEC and not self._image_preflight:
                # A run recorded before the image preflight replays without it.
                name = hop_step(hop.number, step.name)
                self._finish(name, StepStatus.SKIPPED, summary=BEFORE_PREFLIGHT)
                continue
            result = await self._run_step(
                replace(step, name=hop_step(hop.number, step.name)), hop_input
            )
            if isinstance(result, SnapshotDatabaseResult):
                self._snapshots.append(result.snapshot_id)
            elif isinstance(result, UpdateSchemaResult):
                self._schema = (result.default_store.after, result.visibility_store.after)
            elif step is install_chart.SPEC and result is not None:
                self._server, self._chart = hop.server, hop.chart

    # --- where the cluster stands ---------------------------------------------------

    def _cluster(self) -> str:
        """The server, chart and schema as this run last made or read them."""
        if self._server is None:
            return "live versions not read yet"
        text = (
            f"server {self._server} (chart {self._chart or 'unknown'}), schema "
            f"{self._schema[0] or 'missing'} / {self._schema[1] or 'missing'}"
        )
        hop = next((h for h in self._plan if h.number == self._hop), None)
        if (
            hop is not None
            and self._schema == (hop.default_schema, hop.visibility_schema)
            and self._server != hop.server
        ):
            text += (
                f": the schema is at hop {hop.number}'s level, the binaries still "
                f"{self._server}; safe (older binaries run on a newer schema)"
            )
        return text
