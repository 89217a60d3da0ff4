"""Fake step activities shared by the workflow logic tests and the history recorder.

Registered under the real activity names and built from the real result models, so the
workflows decode them exactly as in production. The fakes keep a tiny model of the state
each step owns:

- `missing`: steps whose state does not exist yet; a dry run reports it missing, a real run
  creates it (and then it is in sync);
- `drifted`: steps whose state differs; a dry run reports the drift, a real run repairs it;
- anything else is in sync.

`failures[step] = (times, error)` makes a step raise `error` that many times (-1: always),
`unreadable` makes a step's dry run fail, `hold[step]` (an asyncio.Event) holds a step until
set, `calls` records every call as (step, dry_run) and `inputs[step]` every input.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity

from activities.errors import ErrorType, activity_error
from contracts.base import DriftItem
from contracts.check_database import CheckDatabaseInput, CheckDatabaseResult, StoreSchema
from contracts.ensure_ca_bundle import EnsureCaBundleInput, EnsureCaBundleResult
from contracts.ensure_db_secret import EnsureDbSecretInput, EnsureDbSecretResult
from contracts.install_chart import InstallChartInput, InstallChartResult
from contracts.register_namespaces import (
    NamespaceOutcome,
    RegisterNamespacesInput,
    RegisterNamespacesResult,
)
from contracts.wait_frontend_healthy import WaitFrontendHealthyInput, WaitFrontendHealthyResult

DRIFT_MESSAGES = {
    "ensure_ca_bundle": "key global-bundle.pem differs from the source",
    "ensure_db_secret": "key password differs from Secrets Manager",
    "install_chart": "values differ at: server.replicaCount",
}


class StepFakes:
    """The six steps as fakes; see the module docstring."""

    def __init__(self, missing: Iterable[str] = (), drifted: Iterable[str] = ()) -> None:
        self.missing: set[str] = set(missing)
        self.drifted: set[str] = set(drifted)
        self.unreadable: set[str] = set()
        self.failures: dict[str, tuple[int, Exception]] = {}
        self.hold: dict[str, asyncio.Event] = {}
        self.calls: list[tuple[str, bool]] = []
        self.inputs: dict[str, list[Any]] = {}

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
            self.ensure_ca_bundle,
            self.ensure_db_secret,
            self.install_chart,
            self.wait_frontend_healthy,
            self.register_namespaces,
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
        revision = 2 if state == "drifted" and not input.dry_run else 1
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
            drift=self._drift("install_chart", state),
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
        return RegisterNamespacesResult(
            namespaces=outcomes,
            undeclared=(),
            changed=action != "unchanged",
            summary=", ".join(f"{o.name} {o.action}" for o in outcomes),
            dry_run=input.dry_run,
            drift=self._drift(
                "register_namespaces",
                state,
                *(f"namespace {ns.name} retention 24h" for ns in declared),
            ),
        )
