"""End to end on the local stack, through the real `worker.py` and `starter.py` processes:
the real chart installed by helm into the Kubernetes API stand-in, namespaces registered on
the release's own frontend (a dev server the stack runs as its frontend pod), reached only by
port-forward through the stand-in; operator actions sent with the real `temporal` CLI.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from contracts.bootstrap import BootstrapInput, RunState
from declared_state.loader import load_environment
from declared_state.models import Environment
from tests.e2e.conftest import starter
from tests.helpers import ENVIRONMENTS
from workflows.bootstrap import BootstrapWorkflow

WORKFLOW_ID = "provision-local"


def test_provision_local_installs_chart_and_registers_namespaces(
    operator, worker, frontend_pods, kube_standin
):
    assert frontend_pods.address_of("my-app-local") is None, "no frontend before the install"
    proc = operator.starter("provision", "local", "--by", "e2e")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "provision-local done (changed)" in proc.stdout
    for step in (
        "check_database",
        "ensure_ca_bundle",
        "ensure_db_secret",
        "install_chart",
        "wait_frontend_healthy",
        "register_namespaces",
    ):
        assert f"✓ {step}" in proc.stdout, proc.stdout

    history = operator.helm_history()
    assert [(r["revision"], r["status"], r["chart"]) for r in history] == [
        (1, "deployed", "temporal-0.52.0")
    ]
    frontend = frontend_pods.address_of("my-app-local")
    assert frontend is not None, "the install's frontend pod runs a server"
    for name, hours in (("my-ns", 168), ("my-ns-short", 24)):
        assert operator.retention_seconds(name, frontend) == hours * 3600, name
    # The worker reached that server only through the API server's port-forward.
    forwards = [
        r
        for r in kube_standin.requests
        if r["subresource"] == "portforward" and r["namespace"] == "my-app-local"
    ]
    assert forwards and all(r["name"].startswith("temporal-frontend-") for r in forwards)

    again = operator.starter("provision", "local", "--by", "e2e")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "provision-local done (nothing changed)" in again.stdout
    assert len(operator.helm_history()) == 1, "a second run must not add a helm revision"
    # An operator reads ERROR as something to act on: a clean provision logs none (every
    # port-forward close used to log a cancelled handler at ERROR with its traceback).
    noisy = [
        line
        for line in worker.log.read_text().splitlines()
        if "ERROR" in line or "Traceback" in line
    ]
    assert noisy == [], "\n".join(noisy[:10])


async def test_a_run_started_through_the_temporal_api_with_another_declaration_is_refused(
    operator, start_worker, process_env, kube_standin, frontend_pods, environments_copy
):
    """#23.8, after the install above: a worker with trusted environments (on a task queue
    of its own) refuses a provision of `local` started directly through the Temporal API
    with an extra namespace and another chart value, before any write; the same run with
    the trusted declaration completes."""
    trusted_worker = start_worker(
        TEMPORAL_TASK_QUEUE="trusted-e2e", TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS=str(ENVIRONMENTS)
    )
    try:
        started = trusted_worker.log.read_text()
        assert f"trusted environments from {ENVIRONMENTS}: " in started
        assert "local (sha256:" in started
        declared = load_environment("local", ENVIRONMENTS, variables=process_env)
        data: dict[str, Any] = declared.model_dump(mode="json", by_alias=True)
        data["temporal_namespaces"].append({"name": "intruder"})
        data["extra_values"] = {**data["extra_values"], "web": {"replicaCount": 3}}
        tampered = Environment.model_validate(data)
        client = await Client.connect(
            process_env["TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter
        )
        revisions = len(operator.helm_history())
        since = time.time()
        handle = await client.start_workflow(
            BootstrapWorkflow.run,
            BootstrapInput(environment=tampered, requested_by="someone"),
            id="provision-local-tampered",
            task_queue="trusted-e2e",
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        cause = failure.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "UntrustedDeclaration"
        assert cause.non_retryable
        assert "extra_values.web" in cause.message and "temporal_namespaces" in cause.message
        # Nothing was written: no Kubernetes write, no helm revision, no namespace.
        writes = [w for w in kube_standin.writes if w["time"] >= since]
        assert writes == []
        assert len(operator.helm_history()) == revisions
        frontend = frontend_pods.address_of("my-app-local")
        assert frontend is not None
        described = operator.temporal(
            "operator", "namespace", "describe", "--namespace", "intruder", address=frontend
        )
        assert described.returncode != 0, "the extra namespace must not be registered"
        # An operator whose environment file differs is told so by the starter, in one line.
        edited = environments_copy(
            lambda local: local.update(
                temporal_namespaces=[{"name": "my-ns"}, {"name": "extra-ns"}]
            )
        )
        proc = starter(
            {**process_env, "TEMPORAL_TASK_QUEUE": "trusted-e2e"},
            "provision",
            "local",
            "--environments-dir",
            str(edited),
        )
        assert proc.returncode != 0
        assert (
            "run refused by the worker: the declaration of 'local' differs"
            in proc.stderr + proc.stdout
        )
        assert [w for w in kube_standin.writes if w["time"] >= since] == []

        trusted = await client.start_workflow(
            BootstrapWorkflow.run,
            BootstrapInput(environment=declared, requested_by="operator"),
            id="provision-local-trusted",
            task_queue="trusted-e2e",
        )
        result = await trusted.result()
        assert result.state == RunState.DONE and result.changed is False
    finally:
        trusted_worker.stop()


def test_stale_schema_waits_then_retry_signal_from_temporal_cli_completes(
    operator, worker, mariadb
):
    mariadb.set_schema_version("temporal", "1.12")
    try:
        proc = operator.starter("provision", "local")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "SchemaOutdated" in proc.stdout
        assert "update-schema" in proc.stdout
        assert (
            "temporal workflow update execute --workflow-id provision-local --name retry"
            in proc.stdout
        )
        progress = operator.progress()
        assert progress["state"] == "waiting for operator"
        check = next(s for s in progress["steps"] if s["name"] == "check_database")
        assert check["status"] == "waiting for operator"
    finally:
        mariadb.set_schema_version("temporal", "1.14")
    operator.signal("retry", by="dba")
    done = operator.wait_state("done")
    check = next(s for s in done["steps"] if s["name"] == "check_database")
    assert check["attempts"] == 2
    assert check["operator_actions"] == ["retry by dba"]
    status = operator.starter("status", "local")
    assert status.returncode == 0, status.stdout


@pytest.fixture
def approval_env_dir(environments_copy) -> Path:
    return environments_copy(lambda local: local.update(approval_required=True))


def test_approval_gate_then_abort_lists_what_was_done(operator, worker, approval_env_dir):
    args = ["--environments-dir", str(approval_env_dir)]
    proc = operator.starter("provision", "local", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "approval" in proc.stdout
    assert (
        "temporal workflow update execute --workflow-id provision-local --name approve"
        in proc.stdout
    )

    aborted = operator.starter("abort", "local", "--by", "e2e", "--reason", "change window closed")
    assert aborted.returncode == 1, aborted.stdout + aborted.stderr
    assert "aborted" in aborted.stderr
    assert "check_database done" in aborted.stderr and "install_chart pending" in aborted.stderr


def test_approve_with_temporal_cli_opens_the_gate(operator, worker, approval_env_dir):
    proc = operator.starter("provision", "local", "--environments-dir", str(approval_env_dir))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    operator.signal("approve", by="cab")
    done = operator.wait_state("done")
    assert done["approved_by"] == "cab"
    assert len(operator.helm_history()) == 1, "nothing changed since the first install"


def test_bad_environment_file_exits_3_before_anything_starts(operator, worker, environments_copy):
    env_dir = environments_copy(lambda local: local.update(surprise=1))
    proc = operator.starter("provision", "local", "--environments-dir", str(env_dir))
    assert proc.returncode == 3
    assert "local.yaml: surprise: unknown key" in proc.stderr
