"""BootstrapWorkflow's own logic with stand-in activities on the time-skipping test server:
operator waits, retries exhausted, deadlines, approval, abort, pause/resume, dry run.

The activities here are fakes registered under the real names; what they return is built
from the real result models, so the workflow decodes them exactly as in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.check_database import CheckDatabaseInput, CheckDatabaseResult
from activities.ensure_ca_bundle import EnsureCaBundleInput, EnsureCaBundleResult
from activities.ensure_db_secret import EnsureDbSecretInput, EnsureDbSecretResult
from activities.errors import ErrorType, activity_error
from activities.install_chart import InstallChartInput, InstallChartResult
from activities.register_namespaces import (
    NamespaceOutcome,
    RegisterNamespacesInput,
    RegisterNamespacesResult,
)
from activities.wait_frontend_healthy import WaitFrontendHealthyInput, WaitFrontendHealthyResult
from declared_state.loader import load_environment
from workflows.bootstrap import BootstrapWorkflow
from workflows.bootstrap_models import (
    BootstrapInput,
    BootstrapProgress,
    OperatorSignal,
    RunState,
    StepDeadlines,
    StepStatus,
)

TASK_QUEUE = "bootstrap-logic-test"


class FakeActivities:
    """Fakes of the six steps; `failures[step]` makes a step raise that many times."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.failures: dict[str, tuple[int, Exception]] = {}
        self.hold_check_database = asyncio.Event()
        self.hold_check_database.set()

    def _maybe_fail(self, step: str) -> None:
        self.calls[step] += 1
        if step in self.failures:
            times, error = self.failures[step]
            if times != 0:
                self.failures[step] = (times - 1, error)
                raise error

    @activity.defn(name="check_database")
    async def check_database(self, input: CheckDatabaseInput) -> CheckDatabaseResult:
        await self.hold_check_database.wait()
        self._maybe_fail("check_database")
        env = input.environment
        store = {"database": "temporal", "found": "1.14", "required": "1.14"}
        return CheckDatabaseResult.model_validate(
            {
                "instance_id": env.rds.instance_id,
                "instance_status": "available",
                "engine_version": "8.0.39",
                "endpoint": env.rds.endpoint,
                "port": env.rds.port,
                "ca_certificate_identifier": None,
                "ca_certificate_valid_till": None,
                "ca_bundle_certificates": 1,
                "tls_server_name": env.rds.endpoint,
                "default_store": store,
                "visibility_store": {
                    **store,
                    "database": "temporal_visibility",
                    "found": "1.6",
                    "required": "1.6",
                },
                "summary": "schema ok",
            }
        )

    @activity.defn(name="ensure_ca_bundle")
    async def ensure_ca_bundle(self, input: EnsureCaBundleInput) -> EnsureCaBundleResult:
        self._maybe_fail("ensure_ca_bundle")
        return EnsureCaBundleResult(
            config_map="rds-ca-certs",
            namespace=input.environment.kubernetes.namespace,
            key="global-bundle.pem",
            action="created",
            sha256="0" * 64,
            certificates=1,
            earliest_expiry=datetime(2030, 1, 1, tzinfo=UTC),
        )

    @activity.defn(name="ensure_db_secret")
    async def ensure_db_secret(self, input: EnsureDbSecretInput) -> EnsureDbSecretResult:
        self._maybe_fail("ensure_db_secret")
        return EnsureDbSecretResult(
            secret="temporal-db-secret",
            namespace=input.environment.kubernetes.namespace,
            keys=("password", "visibility-password"),
            action="unchanged",
        )

    @activity.defn(name="install_chart")
    async def install_chart(self, input: InstallChartInput) -> InstallChartResult:
        self._maybe_fail("install_chart")
        return InstallChartResult.model_validate(
            {
                "release": "temporal",
                "namespace": input.environment.kubernetes.namespace,
                "revision": 1,
                "chart": "temporal-0.52.0",
                "app_version": "1.25.2",
                "status": "deployed",
                "changed": True,
                "action": "installed",
                "recovered_from": None,
            }
        )

    @activity.defn(name="wait_frontend_healthy")
    async def wait_frontend_healthy(
        self, input: WaitFrontendHealthyInput
    ) -> WaitFrontendHealthyResult:
        self._maybe_fail("wait_frontend_healthy")
        return WaitFrontendHealthyResult(
            address="x:7233", checks=1, waited_seconds=0.1, status="SERVING"
        )

    @activity.defn(name="register_namespaces")
    async def register_namespaces(self, input: RegisterNamespacesInput) -> RegisterNamespacesResult:
        self._maybe_fail("register_namespaces")
        return RegisterNamespacesResult(
            namespaces=tuple(
                NamespaceOutcome(
                    name=ns.name,
                    action="created",
                    retention_before=None,
                    retention_after=ns.retention,
                    description_changed=True,
                )
                for ns in input.environment.temporal_namespaces
            ),
            undeclared=(),
        )

    def all(self):
        return [
            self.check_database,
            self.ensure_ca_bundle,
            self.ensure_db_secret,
            self.install_chart,
            self.wait_frontend_healthy,
            self.register_namespaces,
        ]


@pytest.fixture
def fakes() -> FakeActivities:
    return FakeActivities()


@pytest.fixture
async def worker(time_skipping_env, fakes) -> AsyncIterator[Worker]:
    async with Worker(
        time_skipping_env.client,
        task_queue=TASK_QUEUE,
        workflows=[BootstrapWorkflow],
        activities=fakes.all(),
    ) as w:
        yield w


def bootstrap_input(approval: bool = False, dry_run: bool = False, **deadlines) -> BootstrapInput:
    env = load_environment("staging").model_copy(update={"approval_required": approval})
    return BootstrapInput(
        environment=env, requested_by="test", deadlines=StepDeadlines(**deadlines), dry_run=dry_run
    )


async def start(env: WorkflowEnvironment, input: BootstrapInput) -> WorkflowHandle:
    return await env.client.start_workflow(
        BootstrapWorkflow.run, input, id=f"provision-test-{uuid.uuid4()}", task_queue=TASK_QUEUE
    )


async def progress(handle: WorkflowHandle) -> BootstrapProgress:
    return await handle.query(BootstrapWorkflow.progress, result_type=BootstrapProgress)


async def until(handle: WorkflowHandle, predicate, timeout: float = 30) -> BootstrapProgress:
    """Poll the progress query until `predicate(progress)` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await progress(handle)
        if predicate(current):
            return current
        assert asyncio.get_running_loop().time() < deadline, f"never reached; last: {current}"
        await asyncio.sleep(0.1)


def waiting(p: BootstrapProgress) -> bool:
    return p.state == RunState.WAITING_FOR_OPERATOR


async def test_all_steps_succeed(time_skipping_env, worker, fakes):
    handle = await start(time_skipping_env, bootstrap_input())
    result = await handle.result()
    statuses = {s.name: s.status for s in result.steps}
    assert statuses == {
        "check_database": StepStatus.DONE,
        "ensure_ca_bundle": StepStatus.DONE,
        "ensure_db_secret": StepStatus.DONE,
        "approval": StepStatus.SKIPPED,
        "install_chart": StepStatus.DONE,
        "wait_frontend_healthy": StepStatus.DONE,
        "register_namespaces": StepStatus.DONE,
    }
    by_name = {s.name: s for s in result.steps}
    assert by_name["ensure_db_secret"].changed is False
    assert by_name["install_chart"].changed is True
    assert "my-ns created" in by_name["register_namespaces"].summary
    assert result.changed is True
    assert all(fakes.calls[s] == 1 for s in fakes.calls)


async def test_non_retryable_error_waits_for_operator_then_retry_completes(
    time_skipping_env, worker, fakes
):
    fakes.failures["check_database"] = (
        1,
        activity_error(
            "schema of temporal is 1.12, server 1.25.2 needs 1.14", ErrorType.SCHEMA_OUTDATED
        ),
    )
    handle = await start(time_skipping_env, bootstrap_input())
    stuck = await until(handle, waiting)
    step = stuck.step("check_database")
    assert step.status == StepStatus.WAITING_FOR_OPERATOR
    assert step.last_error_type == "SchemaOutdated"
    assert "needs 1.14" in (step.last_error or "")
    assert step.retry_state == "NON_RETRYABLE_FAILURE"
    assert "retry" in (stuck.waiting_for or "")
    # non-retryable: the activity ran once, no retries burned
    assert fakes.calls["check_database"] == 1
    assert stuck.step("ensure_ca_bundle").status == StepStatus.PENDING

    await handle.signal(
        BootstrapWorkflow.retry, OperatorSignal(by="alice", reason="schema updated")
    )
    result = await handle.result()
    check = next(s for s in result.steps if s.name == "check_database")
    assert check.status == StepStatus.DONE
    assert check.attempts == 2
    assert check.operator_actions == ["retry by alice: schema updated"]


async def test_retries_exhausted_by_deadline_wait_then_skip(time_skipping_env, worker, fakes):
    # A retryable error forever: only the step's deadline stops the retries.
    fakes.failures["ensure_ca_bundle"] = (
        -1,
        ApplicationError(
            "Kubernetes API answered 503", type=ErrorType.KUBERNETES_UNAVAILABLE.value
        ),
    )
    handle = await start(time_skipping_env, bootstrap_input(ensure_ca_bundle=timedelta(minutes=3)))
    # Skip past the step's 3-minute deadline; the retries in between happen in skipped time.
    await time_skipping_env.sleep(timedelta(minutes=4))
    stuck = await until(handle, waiting, timeout=60)
    step = stuck.step("ensure_ca_bundle")
    assert step.status == StepStatus.WAITING_FOR_OPERATOR
    assert step.last_error_type == "KubernetesUnavailable"
    assert step.retry_state == "TIMEOUT", "the deadline, not the error type, ended the retries"
    assert "503" in (step.last_error or "")
    assert fakes.calls["ensure_ca_bundle"] > 2, "the retry policy retried before giving up"

    await handle.signal(BootstrapWorkflow.skip, OperatorSignal(by="bob"))
    result = await handle.result()
    skipped = next(s for s in result.steps if s.name == "ensure_ca_bundle")
    assert skipped.status == StepStatus.SKIPPED
    assert skipped.summary == "skipped by bob"
    assert fakes.calls["register_namespaces"] == 1


async def test_approval_gate_holds_install_until_approved(time_skipping_env, worker, fakes):
    handle = await start(time_skipping_env, bootstrap_input(approval=True))
    gated = await until(handle, waiting)
    assert gated.step("approval").status == StepStatus.WAITING_FOR_OPERATOR
    assert (gated.waiting_for or "").startswith("approval")
    assert fakes.calls["install_chart"] == 0
    # retry/skip do not open the gate
    await handle.signal(BootstrapWorkflow.skip, OperatorSignal(by="mallory"))
    assert (await progress(handle)).step("approval").status == StepStatus.WAITING_FOR_OPERATOR

    await handle.signal(BootstrapWorkflow.approve, OperatorSignal(by="carol"))
    result = await handle.result()
    assert result.approved_by == "carol"
    assert fakes.calls["install_chart"] == 1


async def test_abort_fails_the_run_with_what_was_done(time_skipping_env, worker, fakes):
    fakes.failures["install_chart"] = (
        -1,
        activity_error("values don't meet the specifications", ErrorType.HELM_BAD_VALUES),
    )
    handle = await start(time_skipping_env, bootstrap_input())
    await until(handle, waiting)
    await handle.signal(BootstrapWorkflow.abort, OperatorSignal(by="dave"))
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "BootstrapAborted"
    assert "check_database done" in cause.message
    assert "install_chart failed" in cause.message
    assert "register_namespaces pending" in cause.message
    assert fakes.calls["wait_frontend_healthy"] == 0


async def test_pause_holds_between_steps_and_resume_goes_on(time_skipping_env, worker, fakes):
    fakes.hold_check_database.clear()
    handle = await start(time_skipping_env, bootstrap_input())
    await until(handle, lambda p: p.step("check_database").status == StepStatus.RUNNING)
    await handle.signal(BootstrapWorkflow.pause)
    fakes.hold_check_database.set()
    paused = await until(handle, lambda p: p.step("check_database").status == StepStatus.DONE)
    assert paused.state == RunState.PAUSED
    await asyncio.sleep(0.5)
    assert (await progress(handle)).step("ensure_ca_bundle").status == StepStatus.PENDING
    assert fakes.calls["ensure_ca_bundle"] == 0

    await handle.signal(BootstrapWorkflow.resume)
    result = await handle.result()
    assert result.state == RunState.DONE


async def test_dry_run_runs_the_read_only_preflight_only(time_skipping_env, worker, fakes):
    handle = await start(time_skipping_env, bootstrap_input(dry_run=True))
    result = await handle.result()
    assert fakes.calls == Counter({"check_database": 1})
    assert result.changed is False
    assert [s.status for s in result.steps if s.name != "check_database"] == [
        StepStatus.SKIPPED
    ] * 6
