"""The secret scan (issue #10, item 17 and its secret-scan suite): no DB password in any
workflow history (failed attempts and drift runs included), pending heartbeat, log, helm
release or process argument, plainly or base64-encoded; and the scan is shown to find a
planted one in each kind of source, the heartbeat the issue names first.

It runs last among the e2e modules, so in a full run it also scans every history, log and
release the other e2e tests left behind.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from adapters.helm_cli import chart_reference
from declared_state.chart_values import build_chart_values
from local_stack.aws import SECRET_ID
from operations.embedded import temporal_cli
from tests.e2e.conftest import TEMPORAL
from tests.e2e.secret_scan import SecretScan
from tests.helpers import new_worker, wait_for

RELEASE_DEPLOYMENT = "temporal-history"

# --- the scan finds what is planted --------------------------------------------------

_PLANTED: dict[str, str] = {}


@activity.defn(name="connect_with_password")
async def connect_with_password() -> None:
    """A careless activity: it reports its connection string, password included, in its
    heartbeat, then hangs until the heartbeat timeout ends it."""
    activity.heartbeat({"phase": "connecting", "dsn": f"mysql://app:{_PLANTED['pw']}@db:3306"})
    await asyncio.sleep(3600)


@workflow.defn(name="LeakyHeartbeat", sandboxed=False)
class LeakyHeartbeat:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            connect_with_password,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=3),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_the_scan_finds_a_planted_password_in_every_kind_of_source(
    tmp_path, kube_standin, local_env, helm_binaries
):
    password = _PLANTED["pw"] = f"planted-{secrets.token_urlsafe(12)}"
    scan = SecretScan([password])
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=["--headless"],
    )
    try:
        address = env.client.service_client.config.target_host
        async with new_worker(env.client, LeakyHeartbeat, activities=[connect_with_password]) as w:
            handle = await env.client.start_workflow(
                LeakyHeartbeat.run, id=f"leaky-{uuid.uuid4()}", task_queue=w.task_queue
            )

            async def heartbeat_recorded() -> bool:
                pending = (await handle.describe()).raw_description.pending_activities
                return bool(pending) and pending[0].HasField("heartbeat_details")

            deadline = time.monotonic() + 30
            while not await heartbeat_recorded():
                assert time.monotonic() < deadline, "the heartbeat never reached the server"
                await asyncio.sleep(0.2)
            # 1. while the activity is pending: its heartbeat details on the server
            await asyncio.to_thread(scan.temporal, TEMPORAL, address)
            assert {f.source.split(" in ")[0] for f in scan.findings} == {
                "heartbeat of connect_with_password"
            }, scan.findings
            # 2. after the heartbeat timeout: the same details, now in the history
            scan.findings.clear()
            with pytest.raises(WorkflowFailureError):
                await handle.result()
            await asyncio.to_thread(scan.temporal, TEMPORAL, address)
            assert {f.source.split("/")[0] for f in scan.findings} == {f"history {handle.id}"}, (
                scan.findings
            )
    finally:
        await env.shutdown()

    # 3. logs: plainly, and base64-encoded inside a larger blob (an HTTP Basic header)
    scan.findings.clear()
    (tmp_path / "plain.log").write_text(f"connecting with password={password}\n")
    basic = base64.b64encode(f"temporal_app:{password}".encode()).decode()
    (tmp_path / "header.log").write_text(f"Authorization: Basic {basic}\n")
    (tmp_path / "clean.log").write_text("nothing to see\n")
    scan.logs(sorted(tmp_path.glob("*.log")))
    assert [(Path(f.source.split(" ", 1)[1]).name, f.form) for f in scan.findings] == [
        ("header.log", "base64"),
        ("plain.log", "plain"),
    ]

    # 4. helm: a release whose values carry it
    scan.findings.clear()
    namespace = f"planted-{uuid.uuid4().hex[:6]}"
    values = {**build_chart_values(local_env), "planted": {"password": password}}
    helm, kubeconfig = helm_binaries["v4"], str(kube_standin.kubeconfig_path)
    installed = subprocess.run(
        [
            helm,
            "install",
            "planted",
            chart_reference(local_env.chart).chart,
            "-n",
            namespace,
            "--create-namespace",
            "--values",
            "-",
            "--kubeconfig",
            kubeconfig,
        ],
        input=yaml.safe_dump(values),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stderr
    try:
        scan.helm_releases(helm, kubeconfig)
    finally:
        subprocess.run(
            [helm, "uninstall", "planted", "-n", namespace, "--kubeconfig", kubeconfig],
            capture_output=True,
            timeout=120,
        )
    assert {f.source for f in scan.findings} == {f"helm get values {namespace}/planted"}

    # 5. process arguments
    scan.findings.clear()
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", f"--password={password}"]
    )
    try:
        wait_for(
            lambda: b"time.sleep" in Path(f"/proc/{sleeper.pid}/cmdline").read_bytes(),
            10,
            "the planted process to start",
        )
        scan.process_arguments()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [f.source.split(":")[0] for f in scan.findings] == [f"argv of pid {sleeper.pid}"]


# --- nothing leaks from real runs ----------------------------------------------------


def _put_password(local_aws, password: str) -> str:
    """Set the password Secrets Manager hands out; returns the one it replaced."""
    sm = local_aws.client("secretsmanager")
    current = json.loads(sm.get_secret_value(SecretId=SECRET_ID)["SecretString"])
    sm.put_secret_value(
        SecretId=SECRET_ID,
        SecretString=json.dumps({**current, "password": password, "visibility_password": password}),
    )
    return str(current["password"])


def test_no_password_in_histories_heartbeats_logs_releases_or_arguments(
    operator,
    worker,
    environments_copy,
    local_aws,
    mariadb,
    kube_standin,
    kube_clients,
    tmp_path_factory,
):
    wrong = f"wrong-{secrets.token_urlsafe(12)}"
    namespace = "my-app-secret-scan"
    # #22.4: the Web UI signs in with OIDC; its client secret is in a Secret the operator
    # made, referenced by the environment, and must turn up nowhere the scan looks.
    ui_secret = f"oidc-{secrets.token_urlsafe(12)}"
    core = kube_clients.core_v1("standin")
    _create_ui_secret(core, namespace, ui_secret)

    def local_with_sign_in(local: dict) -> None:
        local["kubernetes"].update(namespace=namespace)
        local["web_ui"] = {"auth": "oidc", "oidc": UI_OIDC}

    env_dir = environments_copy(local_with_sign_in)
    args = ("local", "--environments-dir", str(env_dir))

    # A failed attempt with a password in play: Secrets Manager hands out a wrong one.
    right = _put_password(local_aws, wrong)
    try:
        failed = operator.starter("provision", *args)
        assert failed.returncode == 2, failed.stdout + failed.stderr
        assert "DatabaseAuthFailed" in failed.stdout
    finally:
        _put_password(local_aws, right)
    retried = operator.starter("retry", "local", "--by", "scan")
    assert retried.returncode == 0, retried.stdout + retried.stderr

    # A drift run over the password Secret: changed by hand, found, repaired.
    core.patch_namespaced_secret(
        "temporal-db-secret",
        namespace,
        {"data": {"password": base64.b64encode(b"changed-by-hand").decode()}},
    )
    drifted = operator.starter("drift", *args, "--policy", "remediate")
    assert drifted.returncode == 0, drifted.stdout + drifted.stderr
    assert "ensure_db_secret" in drifted.stdout

    # A run whose install_chart is pending (heartbeating) while the scan reads it.
    pending_ns = "my-app-secret-scan-pending"
    pending_dir = environments_copy(lambda local: local["kubernetes"].update(namespace=pending_ns))
    kube_standin.never_ready(RELEASE_DEPLOYMENT, namespace=pending_ns)
    try:
        started = operator.starter(
            "provision", "local", "--environments-dir", str(pending_dir), "--no-wait"
        )
        assert started.returncode == 0, started.stdout + started.stderr
        wait_for(
            lambda: "readiness" in json.dumps(_pending_heartbeats(operator)),
            120,
            "install_chart to heartbeat while helm waits",
        )
        scan = SecretScan([mariadb.password, wrong, ui_secret])
        scan.temporal(TEMPORAL, operator.env["TEMPORAL_ADDRESS"])
        scan.logs(sorted(tmp_path_factory.getbasetemp().rglob("*.log")))
        scan.helm_releases(operator.env["HELM_BIN"], operator.env["KUBECONFIG"])
        scan.process_arguments()
    finally:
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=pending_ns)
        operator.temporal(
            "workflow", "terminate", "--workflow-id", "provision-local", "--reason", "scan done"
        )

    print(f"secret scan: {scan.scanned}")
    assert scan.findings == []
    assert scan.scanned["history"] >= 3 and scan.scanned["heartbeat"] >= 1, scan.scanned
    assert scan.scanned["log"] >= 3 and scan.scanned["helm"] >= 8, scan.scanned
    assert scan.scanned["process"] >= 10, scan.scanned
    # The password really went where it belongs (so the scan looked at a working setup).
    secret = core.read_namespaced_secret("temporal-db-secret", namespace)
    assert base64.b64decode(secret.data["password"]).decode() == mariadb.password
    # ... and the UI reads its client secret from the Secret, by reference only.
    web = kube_clients.apps_v1("standin").read_namespaced_deployment("temporal-web", namespace)
    (ref,) = [
        e.value_from.secret_key_ref
        for e in web.spec.template.spec.containers[0].env
        if e.name == "TEMPORAL_AUTH_CLIENT_SECRET"
    ]
    assert (ref.name, ref.key) == ("temporal-ui-oidc", "client-secret")


UI_OIDC = {
    "provider_url": "https://login.example.com/realms/temporal",
    "client_id": "temporal-ui",
    "client_secret_ref": {"name": "temporal-ui-oidc", "key": "client-secret"},
}


def _create_ui_secret(core, namespace: str, value: str) -> None:
    """The Secret an operator makes for the UI's OIDC client (the namespace first, as the
    bootstrap would find it)."""
    try:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    core.create_namespaced_secret(
        namespace,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(name="temporal-ui-oidc"),
            string_data={"client-secret": value},
        ),
    )


def _pending_heartbeats(operator) -> list:
    described = operator.temporal(
        "workflow", "describe", "--workflow-id", "provision-local", "-o", "json"
    )
    if described.returncode != 0:
        return []
    pending = json.loads(described.stdout).get("pendingActivities") or []
    return [p.get("heartbeatDetails") for p in pending]  # the CLI shows them decoded
