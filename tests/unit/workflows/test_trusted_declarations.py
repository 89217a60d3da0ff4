"""#23.8: a worker with trusted environments refuses a run whose declaration differs from its
copy, at the run's first step, before any step's implementation runs; the run fails with the
non-retryable `UntrustedDeclaration` naming the differing key paths, never their values.

The real workflows and the real check (the worker's activity interceptor over a real folder
of environment files) on the time-skipping test server; the step implementations are the
shared fakes, which record every call they get, so "nothing written" is read from what the
fakes were asked to do. The same refusal against the real activities, helm and the
Kubernetes stand-in is tests/e2e/test_provision_local.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.trusted_declarations import TrustedDeclarationsInterceptor, TrustedEnvironments
from adapters.errors import ErrorType, activity_error
from contracts.bootstrap import BootstrapInput, Redeclaration, StepStatus
from contracts.drift_check import DriftCheckInput
from contracts.trusted_declaration import UNTRUSTED_DECLARATION
from contracts.upgrade import UpgradeInput
from declared_state.loader import load_environment
from declared_state.models import DriftPolicy, Environment
from tests.helpers import ENVIRONMENTS, assert_eventually, new_worker
from tests.helpers.fakes import StepFakes
from workflows.bootstrap import BootstrapWorkflow
from workflows.drift_check import DriftCheckWorkflow
from workflows.upgrade import UpgradeWorkflow

SECRET_LOOKING = "do-not-echo-this-value"


@pytest.fixture
def fakes() -> StepFakes:
    return StepFakes(missing=("ensure_ca_bundle", "install_chart", "register_namespaces"))


@pytest.fixture
async def worker(time_skipping_env, fakes) -> AsyncIterator[Worker]:
    trusted = TrustedEnvironments.load(ENVIRONMENTS, os.environ)
    async with new_worker(
        time_skipping_env.client,
        BootstrapWorkflow,
        DriftCheckWorkflow,
        UpgradeWorkflow,
        activities=fakes.all(),
        interceptors=[TrustedDeclarationsInterceptor(trusted)],
    ) as w:
        yield w


def staging() -> Environment:
    return load_environment("staging", ENVIRONMENTS)


def tampered() -> Environment:
    """staging with an extra Temporal namespace and another chart value, as someone who can
    reach the bootstrap server would send it (validated like any declaration)."""
    data: dict[str, Any] = staging().model_dump(mode="json", by_alias=True)
    data["temporal_namespaces"].append({"name": "intruder"})
    data["extra_values"] = {
        **data["extra_values"],
        "web": {"additionalEnv": [{"name": "X", "value": SECRET_LOOKING}]},
    }
    return Environment.model_validate(data)


async def run_to_failure(client, workflow_run, input, task_queue: str) -> ApplicationError:
    handle = await client.start_workflow(
        workflow_run, input, id=f"trust-{uuid.uuid4()}", task_queue=task_queue
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


def assert_names_keys_not_values(error: ApplicationError) -> None:
    assert error.type == UNTRUSTED_DECLARATION
    assert error.non_retryable
    assert "temporal_namespaces" in error.message, error.message
    assert "extra_values.web" in error.message, error.message
    assert SECRET_LOOKING not in error.message and "intruder" not in error.message


async def test_a_tampered_provision_fails_at_its_first_step_and_nothing_runs(
    time_skipping_env, worker, fakes
):
    error = await run_to_failure(
        time_skipping_env.client,
        BootstrapWorkflow.run,
        BootstrapInput(environment=tampered(), requested_by="someone"),
        worker.task_queue,
    )
    assert_names_keys_not_values(error)
    assert "check_images failed (declaration not trusted)" in error.message
    assert fakes.calls == [], "no step implementation may run"
    # The final progress (the aborted run's details) shows nothing waiting for an operator.
    progress = error.details[0]
    statuses = {s["name"]: s["status"] for s in progress["steps"]}
    assert statuses["check_images"] == StepStatus.FAILED
    assert statuses["install_chart"] == StepStatus.PENDING
    assert progress["allowed_actions"] == []


async def test_the_trusted_declaration_completes(time_skipping_env, worker, fakes):
    handle = await time_skipping_env.client.start_workflow(
        BootstrapWorkflow.run,
        BootstrapInput(environment=staging(), requested_by="operator"),
        id=f"trust-{uuid.uuid4()}",
        task_queue=worker.task_queue,
    )
    result = await handle.result()
    assert {s.name for s in result.steps if s.status == StepStatus.DONE} >= {
        "check_images",
        "install_chart",
        "register_namespaces",
    }


async def test_a_declaration_handed_over_mid_run_is_refused_before_the_step_runs_again(
    time_skipping_env, worker, fakes
):
    fakes.failures["check_database"] = (
        1,
        activity_error("schema too old", ErrorType.SCHEMA_OUTDATED),
    )
    handle = await time_skipping_env.client.start_workflow(
        BootstrapWorkflow.run,
        BootstrapInput(environment=staging(), requested_by="operator"),
        id=f"trust-{uuid.uuid4()}",
        task_queue=worker.task_queue,
    )

    async def waiting() -> None:
        progress = await handle.query(BootstrapWorkflow.progress)
        assert progress.step("check_database").status == StepStatus.WAITING_FOR_OPERATOR

    await assert_eventually(waiting)
    calls_before = list(fakes.calls)
    await handle.execute_update(
        BootstrapWorkflow.redeclare, Redeclaration(environment=tampered(), by="someone")
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, ApplicationError)
    assert_names_keys_not_values(failure.value.cause)
    assert fakes.calls == calls_before, "no step implementation ran with the new declaration"
    assert "install_chart" not in fakes.counts()


async def test_a_tampered_drift_check_fails_instead_of_reporting_or_repairing(
    time_skipping_env, worker, fakes
):
    error = await run_to_failure(
        time_skipping_env.client,
        DriftCheckWorkflow.run,
        DriftCheckInput(environment=tampered(), policy=DriftPolicy.REMEDIATE),
        worker.task_queue,
    )
    assert_names_keys_not_values(error)
    assert fakes.calls == []


async def test_a_tampered_upgrade_fails_before_reading_anything(time_skipping_env, worker, fakes):
    error = await run_to_failure(
        time_skipping_env.client,
        UpgradeWorkflow.run,
        UpgradeInput(environment=tampered(), requested_by="someone"),
        worker.task_queue,
    )
    assert_names_keys_not_values(error)
    assert fakes.calls == [] and fakes.events == []


async def test_an_environment_the_worker_does_not_have_is_refused(time_skipping_env, worker, fakes):
    other = staging().model_copy(update={"name": "elsewhere"})
    error = await run_to_failure(
        time_skipping_env.client,
        BootstrapWorkflow.run,
        BootstrapInput(environment=other, requested_by="someone"),
        worker.task_queue,
    )
    assert error.type == UNTRUSTED_DECLARATION
    assert "'elsewhere' is not among the worker's trusted environments" in error.message
    assert fakes.calls == []
