"""DriftCheckWorkflow's own logic with stand-in activities on the time-skipping test server:
report, remediate, ask (approved / not approved in time), a check that cannot run.

The fakes answer dry runs from `drifted` and repair a step when it runs for real; their
results are the real result models, decoded by the workflow as in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from activities.ensure_ca_bundle import EnsureCaBundleInput, EnsureCaBundleResult
from activities.ensure_db_secret import EnsureDbSecretInput, EnsureDbSecretResult
from activities.errors import ErrorType, activity_error
from activities.install_chart import InstallChartInput, InstallChartResult
from activities.register_namespaces import (
    NamespaceOutcome,
    RegisterNamespacesInput,
    RegisterNamespacesResult,
)
from declared_state.loader import load_environment
from declared_state.models import DriftPolicy
from workflows.bootstrap_models import OperatorSignal
from workflows.drift_check import DriftCheckWorkflow
from workflows.drift_check_models import (
    DriftCheckInput,
    DriftCheckResult,
    DriftState,
    FindingStatus,
)

TASK_QUEUE = "drift-logic-test"


class DriftFakes:
    """`drifted`: steps whose dry run finds drift until they run for real."""

    def __init__(self) -> None:
        self.drifted: set[str] = set()
        self.unreadable: set[str] = set()
        self.calls: list[tuple[str, bool]] = []

    def _visit(self, step: str, dry_run: bool) -> bool:
        """Records the call; True when the step's state differs (before this call)."""
        self.calls.append((step, dry_run))
        if dry_run and step in self.unreadable:
            raise activity_error(
                f"{step}: the cluster refused the read", ErrorType.KUBERNETES_FORBIDDEN
            )
        differs = step in self.drifted
        if not dry_run:
            self.drifted.discard(step)
        return differs

    @activity.defn(name="ensure_ca_bundle")
    async def ensure_ca_bundle(self, input: EnsureCaBundleInput) -> EnsureCaBundleResult:
        differs = self._visit("ensure_ca_bundle", input.dry_run)
        return EnsureCaBundleResult(
            config_map="rds-ca-certs",
            namespace=input.environment.kubernetes.namespace,
            key="global-bundle.pem",
            action="updated" if differs else "unchanged",
            sha256="0" * 64,
            certificates=1,
            earliest_expiry=datetime(2030, 1, 1, tzinfo=UTC),
            dry_run=input.dry_run,
            drift=("key global-bundle.pem differs from the source",) if differs else (),
        )

    @activity.defn(name="ensure_db_secret")
    async def ensure_db_secret(self, input: EnsureDbSecretInput) -> EnsureDbSecretResult:
        differs = self._visit("ensure_db_secret", input.dry_run)
        return EnsureDbSecretResult(
            secret="temporal-db-secret",
            namespace=input.environment.kubernetes.namespace,
            keys=("password", "visibility-password"),
            action="updated" if differs else "unchanged",
            dry_run=input.dry_run,
            drift=("key password differs from Secrets Manager",) if differs else (),
        )

    @activity.defn(name="install_chart")
    async def install_chart(self, input: InstallChartInput) -> InstallChartResult:
        differs = self._visit("install_chart", input.dry_run)
        return InstallChartResult(
            release="temporal",
            namespace=input.environment.kubernetes.namespace,
            revision=2 if differs and not input.dry_run else 1,
            chart="temporal-0.52.0",
            app_version="1.25.2",
            status="deployed",
            changed=differs,
            action="upgraded" if differs else "unchanged",
            dry_run=input.dry_run,
            drift=("values differ at: server.replicaCount",) if differs else (),
        )

    @activity.defn(name="register_namespaces")
    async def register_namespaces(self, input: RegisterNamespacesInput) -> RegisterNamespacesResult:
        differs = self._visit("register_namespaces", input.dry_run)
        return RegisterNamespacesResult(
            namespaces=tuple(
                NamespaceOutcome(
                    name=ns.name,
                    action="updated" if differs else "unchanged",
                    retention_before=timedelta(hours=24) if differs else ns.retention,
                    retention_after=ns.retention,
                    description_changed=False,
                )
                for ns in input.environment.temporal_namespaces
            ),
            dry_run=input.dry_run,
            drift=tuple(
                f"namespace {ns.name} retention 24h" for ns in input.environment.temporal_namespaces
            )
            if differs
            else (),
        )

    def all(self):
        return [
            self.ensure_ca_bundle,
            self.ensure_db_secret,
            self.install_chart,
            self.register_namespaces,
        ]

    def repairs(self) -> list[str]:
        return [step for step, dry_run in self.calls if not dry_run]


@pytest.fixture
def fakes() -> DriftFakes:
    return DriftFakes()


@pytest.fixture
async def worker(time_skipping_env, fakes) -> AsyncIterator[Worker]:
    async with Worker(
        time_skipping_env.client,
        task_queue=TASK_QUEUE,
        workflows=[DriftCheckWorkflow],
        activities=fakes.all(),
    ) as w:
        yield w


async def start(env, policy: DriftPolicy, **fields) -> WorkflowHandle:
    return await env.client.start_workflow(
        DriftCheckWorkflow.run,
        DriftCheckInput(environment=load_environment("staging"), policy=policy, **fields),
        id=f"drift-check-test-{uuid.uuid4()}",
        task_queue=TASK_QUEUE,
    )


def statuses(result: DriftCheckResult) -> dict[str, FindingStatus]:
    return {f.step: f.status for f in result.findings}


async def test_in_sync_checks_every_step_read_only(time_skipping_env, worker, fakes):
    result = await (await start(time_skipping_env, DriftPolicy.REMEDIATE)).result()
    assert result.state == DriftState.IN_SYNC
    assert set(statuses(result).values()) == {FindingStatus.IN_SYNC}
    assert fakes.calls == [
        ("ensure_ca_bundle", True),
        ("ensure_db_secret", True),
        ("install_chart", True),
        ("register_namespaces", True),
    ]


async def test_report_lists_drift_and_changes_nothing(time_skipping_env, worker, fakes):
    fakes.drifted = {"ensure_ca_bundle", "register_namespaces"}
    result = await (await start(time_skipping_env, DriftPolicy.REPORT)).result()
    assert result.state == DriftState.DRIFTED
    assert statuses(result) == {
        "ensure_ca_bundle": FindingStatus.DRIFTED,
        "ensure_db_secret": FindingStatus.IN_SYNC,
        "install_chart": FindingStatus.IN_SYNC,
        "register_namespaces": FindingStatus.DRIFTED,
    }
    by_step = {f.step: f for f in result.findings}
    assert by_step["register_namespaces"].drift == ("namespace my-ns retention 24h",)
    assert fakes.repairs() == []


async def test_remediate_repairs_only_the_drifted_steps_in_bootstrap_order(
    time_skipping_env, worker, fakes
):
    fakes.drifted = {"install_chart", "ensure_ca_bundle"}
    result = await (await start(time_skipping_env, DriftPolicy.REMEDIATE)).result()
    assert result.state == DriftState.REPAIRED
    assert fakes.repairs() == ["ensure_ca_bundle", "install_chart"]
    by_step = {f.step: f for f in result.findings}
    assert by_step["install_chart"].status == FindingStatus.REPAIRED
    assert by_step["install_chart"].drift == ("values differ at: server.replicaCount",)
    assert "upgraded" in by_step["install_chart"].action


async def test_ask_repairs_after_approve(time_skipping_env, worker, fakes):
    fakes.drifted = {"ensure_db_secret"}
    handle = await start(time_skipping_env, DriftPolicy.ASK)
    while (
        await handle.query(DriftCheckWorkflow.progress)
    ).state != DriftState.WAITING_FOR_APPROVAL:
        await asyncio.sleep(0.1)
    assert fakes.repairs() == []
    await handle.signal(DriftCheckWorkflow.approve, OperatorSignal(by="erin"))
    result = await handle.result()
    assert result.state == DriftState.REPAIRED
    assert result.approved_by == "erin"
    assert fakes.repairs() == ["ensure_db_secret"]


async def test_ask_without_approval_only_reports_when_the_wait_ends(
    time_skipping_env, worker, fakes
):
    fakes.drifted = {"ensure_db_secret"}
    handle = await start(time_skipping_env, DriftPolicy.ASK, approval_timeout=timedelta(hours=2))
    result = await handle.result()  # the test server skips the two hours
    assert result.state == DriftState.DRIFTED
    assert result.approved_by is None
    assert fakes.repairs() == []


async def test_a_check_that_cannot_run_is_reported_and_the_others_still_run(
    time_skipping_env, worker, fakes
):
    fakes.unreadable = {"ensure_db_secret"}
    result = await (await start(time_skipping_env, DriftPolicy.REMEDIATE)).result()
    assert result.state == DriftState.CHECK_FAILED
    failed = next(f for f in result.findings if f.step == "ensure_db_secret")
    assert failed.status == FindingStatus.CHECK_FAILED
    assert "KubernetesForbidden" in failed.error and "refused the read" in failed.error
    assert [step for step, _ in fakes.calls] == [
        "ensure_ca_bundle",
        "ensure_db_secret",
        "install_chart",
        "register_namespaces",
    ]
