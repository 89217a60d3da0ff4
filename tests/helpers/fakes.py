"""Fake step activities shared by the workflow logic tests and the history recorder.

Registered under the real activity names and built from the real result models, so the
workflows decode them exactly as in production. The fakes keep a tiny model of the state
each step owns:

- `missing`: steps whose state does not exist yet; a dry run reports it missing, a real run
  creates it (and then it is in sync);
- `drifted`: steps whose state differs; a dry run reports the drift, a real run repairs it;
- anything else is in sync.

The two read-only checks are repaired elsewhere: check_live_objects' drift (`REPLICAS`) by
install_chart run with `reapply`, check_temporal's (`OLD_SCHEMA`, changed False, not
repairable) by nothing. `stubborn` adds to check_live_objects' answer a difference no repair
removes (`ADDED_ENV`, not repairable): still there after install_chart re-applied.

`failures[step] = (times, error)` makes a step raise `error` that many times (-1: always),
`unreadable` makes a step's dry run fail, `partly_unreadable` makes its dry run report
something it could not check, `hold[step]` (an asyncio.Event) holds a step until set,
`calls` records every call as (step, dry_run), `inputs[step]` every input, and `reapplied`
counts install_chart's real runs with `reapply`. `undeclared` names namespaces on the cluster
nobody declared: register_namespaces' dry runs turn them into drift items or notes by the
real step's rule (activities/register_namespaces.py `undeclared_findings`); no run removes
them.

For the upgrade the fakes also keep what the cluster runs: `live_server` / `live_chart`
(None: nothing deployed; install_chart moves them to the chart it installs), `schema` (what
update_schema moved the databases to), and `events`, the writes in order
(`schema 1.16/1.9`, `install 0.63.0`, `snapshot <id>`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity

from activities.notify import notify
from activities.plan_upgrade import plan_upgrade
from activities.register_namespaces import undeclared_findings
from adapters.errors import ErrorType, activity_error
from contracts.base import DriftItem
from contracts.check_database import CheckDatabaseInput, CheckDatabaseResult, StoreSchema
from contracts.check_images import CheckImagesInput, CheckImagesResult, ImageCheck
from contracts.check_live_objects import CheckLiveObjectsInput, CheckLiveObjectsResult
from contracts.check_server_version import CheckServerVersionInput, CheckServerVersionResult
from contracts.check_temporal import CheckTemporalInput, CheckTemporalResult
from contracts.ensure_ca_bundle import EnsureCaBundleInput, EnsureCaBundleResult
from contracts.ensure_db_secret import EnsureDbSecretInput, EnsureDbSecretResult
from contracts.install_chart import InstallChartInput, InstallChartResult
from contracts.read_live_versions import ReadLiveVersionsInput, ReadLiveVersionsResult
from contracts.register_namespaces import (
    NamespaceOutcome,
    RegisterNamespacesInput,
    RegisterNamespacesResult,
)
from contracts.snapshot_database import SnapshotDatabaseInput, SnapshotDatabaseResult
from contracts.soak import SoakInput, SoakResult
from contracts.update_schema import StoreSchemaChange, UpdateSchemaInput, UpdateSchemaResult
from contracts.wait_frontend_healthy import WaitFrontendHealthyInput, WaitFrontendHealthyResult
from declared_state.models import FrontendConnect

DRIFT_MESSAGES = {
    "ensure_ca_bundle": "key global-bundle.pem differs from the source",
    "ensure_db_secret": "key password differs from Secrets Manager",
    "install_chart": "values differ at: server.replicaCount",
}
REPLICAS = DriftItem(
    message="Deployment temporal-frontend: /spec/replicas live 7, declared 1",
    kind="Deployment",
    name="temporal-frontend",
    path="/spec/replicas",
    live="7",
    declared="1",
)
ADDED_ENV = DriftItem(
    message="Deployment temporal-history: /spec/template/spec/containers/0/env/4 live "
    '{"name":"HAND","value":"x"}, declared (absent)',
    kind="Deployment",
    name="temporal-history",
    path="/spec/template/spec/containers/0/env/4",
    live='{"name":"HAND","value":"x"}',
    repairable=False,
    how="helm keeps what no revision of the chart set: remove it by hand",
)
OLD_SCHEMA = DriftItem(
    message="schema of database temporal: at 1.13, older than the 1.14 server 1.25.2 needs",
    kind="TemporalSchema",
    name="temporal",
    path="/curr_version",
    live="1.13",
    declared="1.14",
    repairable=False,
    how="temporal-sql-tool ... update-schema -d ./schema/mysql/v8/temporal/versioned",
)


class StepFakes:
    """The six steps as fakes; see the module docstring."""

    def __init__(self, missing: Iterable[str] = (), drifted: Iterable[str] = ()) -> None:
        self.missing: set[str] = set(missing)
        self.drifted: set[str] = set(drifted)
        self.unreadable: set[str] = set()
        self.partly_unreadable: set[str] = set()
        self.stubborn = False
        self.ignored_replicas = False  # check_live_objects: REPLICAS matched an ignore rule
        self.failures: dict[str, tuple[int, Exception]] = {}
        self.hold: dict[str, asyncio.Event] = {}
        self.calls: list[tuple[str, bool]] = []
        # what the cluster runs, for the upgrade
        self.live_server: str | None = "1.25.2"
        self.live_chart: str | None = "0.52.0"
        self.schema: tuple[str, str] = ("1.14", "1.6")
        self.events: list[str] = []
        self.reapplied = 0  # install_chart runs with `reapply`
        self.inputs: dict[str, list[Any]] = {}
        # namespaces on the cluster nobody declared: what register_namespaces' dry run makes
        # of them is the real step's rule (undeclared_findings); no run ever removes them
        self.undeclared: tuple[str, ...] = ()

    # --- what tests read ------------------------------------------------------------
    def counts(self) -> Counter[str]:
        """How often each step ran (dry runs included)."""
        return Counter(step for step, _ in self.calls)

    def repairs(self) -> list[str]:
        """The steps that ran for real, in call order."""
        return [step for step, dry_run in self.calls if not dry_run]

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.check_database,
            self.check_images,
            self.ensure_ca_bundle,
            self.ensure_db_secret,
            self.install_chart,
            self.wait_frontend_healthy,
            self.register_namespaces,
            self.read_live_versions,
            plan_upgrade,  # the real one: pure, over the version tables
            self.snapshot_database,
            self.update_schema,
            self.check_server_version,
            self.soak,
            self.check_live_objects,
            self.check_temporal,
            notify,  # the real one: it POSTs only to the webhooks an environment declares
        ]

    # --- the state model ------------------------------------------------------------
    async def _visit(self, step: str, input: Any) -> str:
        """Record the call, apply holds and failures; return the state before this call:
        "missing", "drifted" or "in sync". A real run brings the state in sync."""
        dry_run = input.dry_run
        if step in self.hold:
            await self.hold[step].wait()
        self.calls.append((step, dry_run))
        self.inputs.setdefault(step, []).append(input)
        times, error = self.failures.get(step, (0, None))
        if error is not None and times != 0:
            self.failures[step] = (times - 1, error)
            raise error
        if dry_run and step in self.unreadable:
            raise activity_error(
                f"{step}: the cluster refused the read", ErrorType.KUBERNETES_FORBIDDEN
            )
        state = (
            "missing" if step in self.missing else "drifted" if step in self.drifted else "in sync"
        )
        if not dry_run:
            self.missing.discard(step)
            self.drifted.discard(step)
        return state

    @staticmethod
    def _drift(step: str, state: str, *messages: str) -> tuple[DriftItem, ...]:
        if state == "missing":
            return (DriftItem(message=f"{step}: missing"),)
        if state == "drifted":
            return tuple(DriftItem(message=m) for m in messages or (DRIFT_MESSAGES[step],))
        return ()

    # --- the fakes ------------------------------------------------------------------
    @activity.defn(name="check_images")
    async def check_images(self, input: CheckImagesInput) -> CheckImagesResult:
        await self._visit("check_images", input)
        images = [i.reference for _, i in input.environment.resolved_images.components() if i]
        self.events.append(f"images {' '.join([*images, *input.job_images])}")
        return CheckImagesResult(
            images=tuple(
                ImageCheck(
                    image=image,
                    used_by=("fake",),
                    registry="docker.io",
                    asked="https://registry-1.docker.io",
                    outcome="found",
                )
                for image in [*images, *input.job_images]
            ),
            changed=False,
            summary="every image found",
            dry_run=input.dry_run,
        )

    @activity.defn(name="check_database")
    async def check_database(self, input: CheckDatabaseInput) -> CheckDatabaseResult:
        await self._visit("check_database", input)
        env = input.environment
        return CheckDatabaseResult(
            instance_id=env.rds.instance_id,
            instance_status="available",
            engine_version="8.0.39",
            endpoint=env.rds.endpoint,
            port=env.rds.port,
            ca_certificate_identifier=None,
            ca_certificate_valid_till=None,
            ca_bundle_certificates=1,
            tls_server_name=env.rds.endpoint,
            default_store=StoreSchema(database="temporal", found="1.14", required="1.14"),
            visibility_store=StoreSchema(
                database="temporal_visibility", found="1.6", required="1.6"
            ),
            changed=False,
            summary="schema ok",
            dry_run=input.dry_run,
        )

    @activity.defn(name="ensure_ca_bundle")
    async def ensure_ca_bundle(self, input: EnsureCaBundleInput) -> EnsureCaBundleResult:
        state = await self._visit("ensure_ca_bundle", input)
        action = {"missing": "created", "drifted": "updated"}.get(state, "unchanged")
        return EnsureCaBundleResult(
            config_map="rds-ca-certs",
            namespace=input.environment.kubernetes.namespace,
            key="global-bundle.pem",
            action=action,  # type: ignore[arg-type]
            sha256="0" * 64,
            certificates=1,
            earliest_expiry=datetime(2030, 1, 1, tzinfo=UTC),
            changed=action != "unchanged",
            summary=f"ConfigMap rds-ca-certs {action}",
            dry_run=input.dry_run,
            drift=self._drift("ensure_ca_bundle", state),
        )

    @activity.defn(name="ensure_db_secret")
    async def ensure_db_secret(self, input: EnsureDbSecretInput) -> EnsureDbSecretResult:
        state = await self._visit("ensure_db_secret", input)
        action = {"missing": "created", "drifted": "updated"}.get(state, "unchanged")
        return EnsureDbSecretResult(
            secret="temporal-db-secret",
            namespace=input.environment.kubernetes.namespace,
            keys=("password", "visibility-password"),
            action=action,  # type: ignore[arg-type]
            changed=action != "unchanged",
            summary=f"Secret temporal-db-secret {action}",
            dry_run=input.dry_run,
            drift=self._drift("ensure_db_secret", state),
        )

    @activity.defn(name="install_chart")
    async def install_chart(self, input: InstallChartInput) -> InstallChartResult:
        state = await self._visit("install_chart", input)
        action = {"missing": "installed", "drifted": "upgraded"}.get(state, "unchanged")
        if input.reapply and not input.dry_run:
            self.reapplied += 1
            self.drifted.discard("check_live_objects")  # helm re-applied the manifest
            action = "upgraded"
        revision = 2 if state == "drifted" and not input.dry_run else 1
        chart = input.environment.chart
        drift = self._drift("install_chart", state)
        if input.dry_run and self.live_chart not in (None, chart.version):
            # As the real step says it: another chart version is for `upgrade`, never a repair.
            drift += (
                DriftItem(
                    message=f"chart temporal-{self.live_chart}, declared temporal-"
                    f"{chart.version}: moved by python starter.py upgrade",
                    kind="HelmRelease",
                    repairable=False,
                ),
            )
            action = "upgraded"
        if not input.dry_run and (chart.version, chart.target_server_version) != (
            self.live_chart,
            self.live_server,
        ):
            self.live_chart, self.live_server = chart.version, chart.target_server_version
            self.events.append(f"install {chart.version}")
            action = "upgraded"
        return InstallChartResult(
            release="temporal",
            namespace=input.environment.kubernetes.namespace,
            revision=revision,
            chart="temporal-0.52.0",
            app_version="1.25.2",
            status="deployed",
            action=action,  # type: ignore[arg-type]
            changed=action != "unchanged",
            summary=f"{action}, revision {revision}",
            dry_run=input.dry_run,
            drift=drift,
        )

    @activity.defn(name="wait_frontend_healthy")
    async def wait_frontend_healthy(
        self, input: WaitFrontendHealthyInput
    ) -> WaitFrontendHealthyResult:
        await self._visit("wait_frontend_healthy", input)
        return WaitFrontendHealthyResult(
            address="x:7233",
            checks=1,
            waited_seconds=0.1,
            status="SERVING",
            changed=False,
            summary="x:7233 SERVING after 1 check(s)",
            dry_run=input.dry_run,
        )

    @activity.defn(name="register_namespaces")
    async def register_namespaces(self, input: RegisterNamespacesInput) -> RegisterNamespacesResult:
        state = await self._visit("register_namespaces", input)
        action = {"missing": "created", "drifted": "updated"}.get(state, "unchanged")
        declared = input.environment.temporal_namespaces
        outcomes = tuple(
            NamespaceOutcome(
                name=ns.name,
                action=action,  # type: ignore[arg-type]
                retention_before=(
                    None
                    if state == "missing"
                    else timedelta(hours=24)
                    if state == "drifted"
                    else ns.retention
                ),
                retention_after=ns.retention,
                description_changed=state == "missing",
            )
            for ns in declared
        )
        reported, notes = (
            undeclared_findings(input.environment, self.undeclared, FrontendConnect.DIRECT)
            if input.dry_run
            else ((), ())
        )
        return RegisterNamespacesResult(
            namespaces=outcomes,
            undeclared=self.undeclared if input.dry_run else (),
            changed=action != "unchanged",
            summary=", ".join(f"{o.name} {o.action}" for o in outcomes),
            dry_run=input.dry_run,
            drift=self._drift(
                "register_namespaces",
                state,
                *(f"namespace {ns.name} retention 24h" for ns in declared),
            )
            + reported,
            notes=notes,
        )

    # --- the upgrade's own steps ------------------------------------------------------
    @activity.defn(name="read_live_versions")
    async def read_live_versions(self, input: ReadLiveVersionsInput) -> ReadLiveVersionsResult:
        await self._visit("read_live_versions", input)
        env = input.environment
        servers = (
            {c: self.live_server for c in ("frontend", "history", "matching", "worker")}
            if self.live_server
            else {}
        )
        declared = env.chart.target_server_version
        drift = tuple(
            DriftItem(message=f"{what} {live}, declared {want}", repairable=False)
            for what, live, want in (
                ("server", self.live_server, declared),
                (
                    "schema",
                    self.schema,
                    (env.schema_versions.default_store, env.schema_versions.visibility_store),
                ),
            )
            if live != want
        )
        return ReadLiveVersionsResult(
            drift=drift,
            release=env.kubernetes.release,
            namespace=env.kubernetes.namespace,
            chart=self.live_chart if self.live_server else None,
            server_version=self.live_server,
            server_versions=servers,
            default_schema=self.schema[0],
            visibility_schema=self.schema[1],
            changed=False,
            summary=f"server {self.live_server}",
            dry_run=input.dry_run,
        )

    @activity.defn(name="snapshot_database")
    async def snapshot_database(self, input: SnapshotDatabaseInput) -> SnapshotDatabaseResult:
        await self._visit("snapshot_database", input)
        self.events.append(f"snapshot {input.snapshot_id}")
        return SnapshotDatabaseResult(
            snapshot_id=input.snapshot_id,
            instance_id=input.environment.rds.instance_id,
            status="available",
            created_at=datetime(2030, 1, 1, tzinfo=UTC),
            action="created",
            changed=True,
            summary=f"snapshot {input.snapshot_id} created",
            dry_run=input.dry_run,
        )

    @activity.defn(name="update_schema")
    async def update_schema(self, input: UpdateSchemaInput) -> UpdateSchemaResult:
        await self._visit("update_schema", input)
        hop, before = input.hop, self.schema
        self.schema = (hop.default_schema, hop.visibility_schema)
        self.events.append(f"schema {hop.default_schema}/{hop.visibility_schema}")
        return UpdateSchemaResult(
            job=f"temporal-schema-update-{hop.server.replace('.', '-')}",
            namespace=input.environment.kubernetes.namespace,
            image=str(hop.images.admin_tools if hop.images else None),
            action="updated",
            default_store=StoreSchemaChange(
                database="temporal", before=before[0], after=self.schema[0], target=self.schema[0]
            ),
            visibility_store=StoreSchemaChange(
                database="temporal_visibility",
                before=before[1],
                after=self.schema[1],
                target=self.schema[1],
            ),
            changed=True,
            summary=f"schema moved to {self.schema[0]} / {self.schema[1]}",
            dry_run=input.dry_run,
        )

    @activity.defn(name="check_server_version")
    async def check_server_version(
        self, input: CheckServerVersionInput
    ) -> CheckServerVersionResult:
        await self._visit("check_server_version", input)
        return CheckServerVersionResult(
            address="x:7233",
            server_version=self.live_server or "",
            minimum=input.minimum,
            changed=False,
            summary=f"reports {self.live_server}",
            dry_run=input.dry_run,
        )

    @activity.defn(name="soak")
    async def soak(self, input: SoakInput) -> SoakResult:
        await self._visit("soak", input)
        return SoakResult(
            address="x:7233",
            checks=1,
            soaked_seconds=input.duration.total_seconds(),
            changed=False,
            summary="SERVING",
            dry_run=input.dry_run,
        )

    @activity.defn(name="check_live_objects")
    async def check_live_objects(self, input: CheckLiveObjectsInput) -> CheckLiveObjectsResult:
        state = await self._visit("check_live_objects", input)
        drift: tuple[DriftItem, ...] = (REPLICAS,) if state == "drifted" else ()
        if self.stubborn:
            drift += (ADDED_ENV,)
        if self.ignored_replicas:
            drift += (REPLICAS.model_copy(update={"ignored": True, "repairable": False}),)
        return CheckLiveObjectsResult(
            release="temporal",
            namespace=input.environment.kubernetes.namespace,
            objects=16,
            compared=16,
            changed=False,
            summary=f"16 objects, 16 compared: {len(drift)} difference(s)",
            dry_run=input.dry_run,
            drift=drift,
            unchecked=self._unchecked("check_live_objects"),
        )

    @activity.defn(name="check_temporal")
    async def check_temporal(self, input: CheckTemporalInput) -> CheckTemporalResult:
        state = await self._visit("check_temporal", input)
        if not input.dry_run:
            raise AssertionError("check_temporal never runs for real: nothing it finds is repaired")
        return CheckTemporalResult(
            frontend="Service temporal-frontend",
            health="SERVING",
            server_version="1.25.2",
            declared_server_version="1.25.2",
            history_shards=512,
            declared_history_shards=512,
            changed=False,
            summary="frontend SERVING",
            dry_run=input.dry_run,
            drift=(OLD_SCHEMA,) if state == "drifted" else (),
            unchecked=self._unchecked("check_temporal"),
        )

    def _unchecked(self, step: str) -> tuple[DriftItem, ...]:
        if step not in self.partly_unreadable:
            return ()
        return (DriftItem(message=f"{step}: could not check: forbidden (403)", kind="Secret"),)
