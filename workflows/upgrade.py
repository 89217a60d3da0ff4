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
"""

from __future__ import annotations

from dataclasses import replace

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.bootstrap import BootstrapInput, RunState, StepStatus
    from contracts.read_live_versions import ReadLiveVersionsResult
    from contracts.snapshot_database import SnapshotDatabaseResult
    from contracts.update_schema import UpdateSchemaResult
    from contracts.upgrade import (
        FIRST_STEP,
        HOP_STEPS,
        HopInput,
        UpgradeInput,
        UpgradeProgress,
        UpgradeResult,
        hop_step,
        snapshot_id,
    )
    from declared_state.upgrade_path import Hop, UpgradeRefused, hop_environment, plan_upgrade
    from workflows.operated import Aborted, OperatedRun
    from workflows.steps import (
        BEFORE_PREFLIGHT,
        IMAGE_PREFLIGHT_PATCH,
        STEP_ACTIVITIES,
        UPGRADE_STEP_ACTIVITIES,
        StepActivity,
    )

# The bootstrap's steps an upgrade hop reuses, with the hop's chart.
_REUSED = ("install_chart", "wait_frontend_healthy")


@workflow.defn(name="UpgradeWorkflow")
class UpgradeWorkflow(OperatedRun):
    """Upgrade one environment; see the module docstring for the hops and signals."""

    def __init__(self) -> None:
        super().__init__((FIRST_STEP,))
        self._input: UpgradeInput | None = None
        self._live: ReadLiveVersionsResult | None = None
        self._plan: tuple[Hop, ...] = ()
        self._planned = False
        self._hop: int | None = None
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
        env = input.environment
        try:
            await self._between_steps()
            self._live = await self._read_live(input)
            self._server, self._chart = self._live.server_version, self._live.chart
            self._schema = (self._live.default_schema, self._live.visibility_schema)
            self._plan = self._plan_from(self._live, input)
            self._planned = True
            if not input.plan_only:
                for hop in self._plan:
                    await self._run_hop(input, hop)
        except Aborted:
            raise self._aborted(
                f"upgrade of {env.name} aborted: {self._cluster()}. Steps", "UpgradeAborted"
            ) from None
        self._state = RunState.DONE
        self._hop = None
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
        live = await self._run_step(STEP_ACTIVITIES[FIRST_STEP], steps_input)
        if not isinstance(live, ReadLiveVersionsResult):  # skipped by an operator
            raise self._refusal_error(
                "the live versions were not read (skipped): nothing to plan from"
            )
        return live

    def _plan_from(self, live: ReadLiveVersionsResult, input: UpgradeInput) -> tuple[Hop, ...]:
        env = input.environment
        if live.server_version is None:
            raise self._refusal_error(
                f"no Temporal release {env.kubernetes.release!r} runs in namespace "
                f"{env.kubernetes.namespace}: provision it first (python starter.py provision "
                f"{env.name})"
            )
        try:
            return plan_upgrade(live.server_version, live.chart, env.chart, env.images)
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
        for name in HOP_STEPS[1:]:
            await self._between_steps()
            if name == "check_images" and not workflow.patched(IMAGE_PREFLIGHT_PATCH):
                self._finish(
                    hop_step(hop.number, name), StepStatus.SKIPPED, summary=BEFORE_PREFLIGHT
                )
                continue
            result = await self._run_step(self._hop_activity(hop, name), hop_input)
            if isinstance(result, SnapshotDatabaseResult):
                self._snapshots.append(result.snapshot_id)
            elif isinstance(result, UpdateSchemaResult):
                self._schema = (result.default_store.after, result.visibility_store.after)
            elif name == "install_chart" and result is not None:
                self._server, self._chart = hop.server, hop.chart

    @staticmethod
    def _hop_activity(hop: Hop, name: str) -> StepActivity[HopInput]:
        step: StepActivity[HopInput] = (
            STEP_ACTIVITIES[name] if name in _REUSED else UPGRADE_STEP_ACTIVITIES[name]
        )
        return replace(step, name=hop_step(hop.number, name))

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
