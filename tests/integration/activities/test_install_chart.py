"""install_chart with the real helm v3 and v4, the real chart 0.52.0 and the Kubernetes API
stand-in (no mocks). Each test works in a Kubernetes namespace of its own."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities import install_chart as install_chart_module
from activities.install_chart import ChartInstaller
from adapters.errors import ErrorType
from adapters.helm_cli import chart_reference
from contracts.install_chart import InstallChartInput, InstallChartResult
from declared_state.chart_values import build_chart_values, image_references
from declared_state.models import (
    ChartSpec,
    Environment,
    ImagePin,
    OidcSignIn,
    PolicyPeer,
    SecretKeyRef,
    WebUiAuth,
    WebUiSpec,
)
from local_stack.processes import pid_alive
from tests.helpers import drift_messages, pids_running
from tests.helpers.manifests import cluster_meaning, parse_manifests

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SHORT = timedelta(seconds=5)  # helm --timeout where a wait is meant to fail


@pytest.fixture(params=["v3", "v4"])
def helm_version(request) -> str:
    return request.param


@pytest.fixture
def helm_bin(helm_binaries: dict[str, str], helm_version: str) -> str:
    return helm_binaries[helm_version]


@pytest.fixture
def installer(helm_bin: str, kube_standin) -> ChartInstaller:
    return ChartInstaller(helm_bin, str(kube_standin.kubeconfig_path))


@pytest.fixture
def bare_env(local_env: Environment, helm_version: str) -> Environment:
    """local_env in a fresh namespace (the stand-in is shared by the session), nothing in it."""
    ns = f"chart-{helm_version}-{uuid.uuid4().hex[:8]}"
    return local_env.model_copy(
        update={"kubernetes": local_env.kubernetes.model_copy(update={"namespace": ns})}
    )


def create_ca_config_map(core: k8s.CoreV1Api, env: Environment) -> None:
    """As ensure_ca_bundle leaves it (the bundle's content does not matter to the pods)."""
    ca = env.ca_bundle
    core.create_namespaced_config_map(
        env.kubernetes.namespace,
        k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=ca.config_map), data={ca.key: "pem"}),
    )


def create_db_secret(core: k8s.CoreV1Api, env: Environment) -> None:
    """As ensure_db_secret leaves it (and the namespace it creates first)."""
    ns, secret = env.kubernetes.namespace, env.database.kubernetes_secret
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
    keys = {secret.default_store_key: "p1", secret.visibility_store_key: "p2"}
    core.create_namespaced_secret(
        ns, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=secret.name), string_data=keys)
    )


@pytest.fixture
def core(kube_clients, local_env: Environment) -> k8s.CoreV1Api:
    return kube_clients.core_v1(local_env.kubernetes.context)


@pytest.fixture
def env(bare_env: Environment, core: k8s.CoreV1Api) -> Environment:
    """bare_env with what the chart's pods reference, created in bootstrap order before it."""
    create_db_secret(core, bare_env)
    create_ca_config_map(core, bare_env)
    return bare_env


def with_history_replicas(env: Environment, replicas: int) -> Environment:
    history = env.services.history.model_copy(update={"replicas": replicas})
    return env.model_copy(update={"services": env.services.model_copy(update={"history": history})})


def run(installer: ChartInstaller, env: Environment, **kw: Any) -> InstallChartResult:
    return ActivityEnvironment().run(
        installer.install_chart, InstallChartInput(environment=env, **kw)
    )


def run_failing(installer: ChartInstaller, env: Environment, **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        run(installer, env, **kw)
    return info.value


def helm(helm_bin: str, kube_standin, env: Environment, *args: str) -> Any:
    out = subprocess.run(
        [
            helm_bin,
            *args,
            "--namespace",
            env.kubernetes.namespace,
            "--kubeconfig",
            str(kube_standin.kubeconfig_path),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out or "null")


def history(helm_bin: str, kube_standin, env: Environment) -> list[dict[str, Any]]:
    return helm(helm_bin, kube_standin, env, "history", env.kubernetes.release)


def deployed_values(helm_bin: str, kube_standin, env: Environment) -> Any:
    return helm(helm_bin, kube_standin, env, "get", "values", env.kubernetes.release)


def declared(env: Environment) -> Any:
    return json.loads(json.dumps(build_chart_values(env)))


def test_install_then_unchanged_then_upgrade(installer, env, helm_bin, kube_standin):
    first = run(installer, env)
    assert (first.action, first.changed, first.revision) == ("installed", True, 1)
    assert (first.status, first.chart, first.app_version) == (
        "deployed",
        "temporal-0.52.0",
        "1.25.2",
    )
    assert (first.release, first.namespace) == ("temporal", env.kubernetes.namespace)
    assert first.recovered_from is None
    assert (first.dry_run, drift_messages(first)) == (False, ("release temporal missing",))
    assert deployed_values(helm_bin, kube_standin, env) == declared(env)

    again = run(installer, env)
    assert (again.action, again.changed, again.revision, again.status) == (
        "unchanged",
        False,
        1,
        "deployed",
    )
    assert drift_messages(again) == ()
    assert len(history(helm_bin, kube_standin, env)) == 1

    bigger = with_history_replicas(env, 3)
    upgraded = run(installer, bigger)
    assert (upgraded.action, upgraded.changed, upgraded.revision, upgraded.status) == (
        "upgraded",
        True,
        2,
        "deployed",
    )
    assert drift_messages(upgraded) == ("values differ at: server.history.replicaCount",)
    stored = deployed_values(helm_bin, kube_standin, env)
    assert stored == declared(bigger)
    assert stored["server"]["history"]["replicaCount"] == 3


def test_dry_run_reports_drift_and_changes_nothing(
    installer, env, helm_bin, kube_standin, kube_writes
):
    marker = kube_writes.mark()
    missing = run(installer, env, dry_run=True)
    assert (missing.dry_run, missing.action, missing.changed) == (True, "installed", True)
    assert (missing.revision, missing.status, missing.chart, missing.app_version) == (
        0,
        "missing",
        "",
        "",
    )
    assert drift_messages(missing) == ("release temporal missing",)
    assert kube_writes.since(marker) == []  # not even the namespace
    with pytest.raises(subprocess.CalledProcessError):
        history(helm_bin, kube_standin, env)

    assert run(installer, env).revision == 1
    marker = kube_writes.mark()
    in_sync = run(installer, env, dry_run=True)
    assert (in_sync.dry_run, in_sync.action, in_sync.changed, drift_messages(in_sync)) == (
        True,
        "unchanged",
        False,
        (),
    )
    assert (in_sync.revision, in_sync.status, in_sync.chart) == (1, "deployed", "temporal-0.52.0")

    # One value changed and a dozen added: the paths are named (at most 10), never a value.
    host = f"db-{uuid.uuid4().hex}.drift.example"
    extra = {f"zzDrift{i:02}": f"value-{uuid.uuid4().hex}" for i in range(12)}
    drifted = env.model_copy(
        update={
            "extra_values": {
                "server": {"config": {"persistence": {"default": {"sql": {"host": host}}}}},
                **extra,
            }
        }
    )
    result = run(installer, drifted, dry_run=True)
    assert (result.dry_run, result.action, result.changed) == (True, "upgraded", True)
    assert (result.revision, result.status) == (1, "deployed")
    paths = ["server.config.persistence.default.sql.host"] + [f"zzDrift{i:02}" for i in range(9)]
    assert drift_messages(result) == (f"values differ at: {', '.join(paths)} and 3 more",)
    for secret_ish in (host, *extra.values()):
        assert secret_ish not in result.model_dump_json()
    assert kube_writes.since(marker) == []
    assert len(history(helm_bin, kube_standin, env)) == 1
    assert deployed_values(helm_bin, kube_standin, env) == declared(env)


def test_timeout_rolls_back_to_previous_revision(installer, env, helm_bin, kube_standin):
    # Revision 1 without admintools; the upgrade adds its Deployment, which never gets ready.
    # (A Deployment present in both revisions would also block helm's rollback wait.)
    before = env.model_copy(update={"extra_values": {"admintools": {"enabled": False}}})
    assert run(installer, before).revision == 1
    kube_standin.never_ready("temporal-admintools", env.kubernetes.namespace)

    err = run_failing(installer, env, timeout=SHORT)

    assert err.type == ErrorType.HELM_TIMEOUT
    assert not err.non_retryable
    assert "rolled temporal back" in err.message
    assert "deadline exceeded" in err.message or "not ready" in err.message  # helm's own words
    revisions = history(helm_bin, kube_standin, env)
    assert revisions[-1]["status"] == "deployed"
    assert [r["status"] for r in revisions[:-1]] == ["superseded", "failed"]
    assert deployed_values(helm_bin, kube_standin, env) == declared(before)


@contextlib.contextmanager
def _helm_upgrade(helm_bin: str, kube_standin, env: Environment, *flags: str) -> Iterator[None]:
    """helm upgrade of env's chart and values running in the background, SIGKILLed (as a
    crashed worker's helm dies) when the block ends."""
    chart = chart_reference(env.chart).chart
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values:
        yaml.safe_dump(build_chart_values(env), values)
        values.flush()
        proc = subprocess.Popen(
            [helm_bin, "upgrade", env.kubernetes.release, chart, "--values", values.name]
            + ["--namespace", env.kubernetes.namespace, *flags]
            + ["--kubeconfig", str(kube_standin.kubeconfig_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


def _kill_helm_mid_wait(
    helm_bin: str, kube_standin, env: Environment, state: str = "pending-upgrade"
) -> None:
    """What a crashed worker leaves behind: helm SIGKILLed while it waits, release pending."""
    wait = "--wait" + ("=watcher" if "/v4/" in helm_bin else "")
    flags = ("--install", "--create-namespace", wait, "--timeout", "120s")
    with _helm_upgrade(helm_bin, kube_standin, env, *flags):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                revs = history(helm_bin, kube_standin, env)
            except subprocess.CalledProcessError:  # not created yet
                revs = []
            if revs and revs[-1]["status"] == state:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"helm upgrade never reached {state}")
        time.sleep(0.5)  # into the wait
    assert history(helm_bin, kube_standin, env)[-1]["status"] == state


def _kill_helm_mid_apply(
    helm_bin: str, kube_standin, env: Environment, deployment: str = "temporal-history"
) -> None:
    """helm SIGKILLed mid-apply: pending-upgrade recorded, the objects before `deployment`
    (kind order: Services first) applied, nothing deleted yet. Its PATCH of `deployment` is
    answered 429 with a Retry-After that client-go honours, which holds helm there."""
    path = f"/namespaces/{env.kubernetes.namespace}/deployments/{deployment}"
    since = len(kube_standin.writes)
    kube_standin.inject_faults(path + "$", 429, retry_after=600, method="PATCH")
    try:
        with _helm_upgrade(helm_bin, kube_standin, env):
            deadline = time.monotonic() + 60
            while not any(
                w["status"] == 429 and w["path"].split("?")[0].endswith(path)
                for w in kube_standin.writes[since:]
            ):
                if time.monotonic() > deadline:
                    pytest.fail(f"helm upgrade never reached {deployment}")
                time.sleep(0.2)
    finally:
        kube_standin.clear_faults()
    assert history(helm_bin, kube_standin, env)[-1]["status"] == "pending-upgrade"


def test_abandoned_pending_release_is_recovered(installer, env, helm_bin, kube_standin):
    assert run(installer, env).revision == 1
    wanted = with_history_replicas(env, 2)
    ns = env.kubernetes.namespace
    kube_standin.never_ready("temporal-history", ns)
    _kill_helm_mid_wait(helm_bin, kube_standin, wanted)
    kube_standin.allow_ready("temporal-history", ns)

    # Young enough that another helm might still be at work: hands off, with the command.
    err = run_failing(installer, wanted, pending_grace=timedelta(minutes=10))
    assert err.type == ErrorType.HELM_RELEASE_PENDING
    assert err.non_retryable
    assert "retry once it has been pending for 600s" in err.message
    assert f"kubectl delete secret sh.helm.release.v1.temporal.v2 --namespace {ns}" in err.message
    assert history(helm_bin, kube_standin, env)[-1]["status"] == "pending-upgrade"

    # A dry run reports the pending release whatever its age, and recovers nothing.
    dry = run(installer, wanted, pending_grace=timedelta(0), dry_run=True)
    assert (dry.dry_run, dry.action, dry.revision, dry.status, dry.recovered_from) == (
        True,
        "upgraded",
        2,
        "pending-upgrade",
        None,
    )
    assert drift_messages(dry) == ("release is pending-upgrade (revision 2)",)
    assert [r["status"] for r in history(helm_bin, kube_standin, env)] == [
        "deployed",
        "pending-upgrade",
    ]

    result = run(installer, wanted, pending_grace=timedelta(0), timeout=timedelta(seconds=30))
    assert result.recovered_from == "pending-upgrade"
    assert drift_messages(result) == drift_messages(dry)
    assert (result.action, result.status, result.changed) == ("upgraded", "deployed", True)
    assert deployed_values(helm_bin, kube_standin, env) == declared(wanted)
    # 1 installed, 2 the killed upgrade (marked failed, as helm marks a failed upgrade), 3 the
    # upgrade from 1's state; no rollback revision in between.
    revisions = history(helm_bin, kube_standin, env)
    assert [r["status"] for r in revisions] == ["superseded", "failed", "deployed"]
    assert "marked failed by temporal-bootstrap" in revisions[1]["description"]
    assert result.revision == 3


def test_helm_killed_mid_apply_of_a_chart_that_drops_objects_is_recovered(
    installer, env, helm_bin, kube_standin, core
):
    """The new values drop admintools (as chart 0.63 drops its Service); helm is killed
    before it deletes them. helm's rollback of that revision fails on them (`original
    object ... not found` / `no Service with the name ... found`), an upgrade from the last
    deployed revision's state does not: the step recovers without an operator."""
    ns = env.kubernetes.namespace
    assert run(installer, env).revision == 1
    wanted = with_history_replicas(env, 2).model_copy(
        update={"extra_values": {"admintools": {"enabled": False}}}
    )
    _kill_helm_mid_apply(helm_bin, kube_standin, wanted)
    services = {s.metadata.name for s in core.list_namespaced_service(ns).items}
    assert "temporal-admintools" in services, "killed before helm deleted what it drops"

    result = run(installer, wanted, pending_grace=timedelta(0), timeout=timedelta(seconds=60))

    assert (result.recovered_from, result.action, result.status) == (
        "pending-upgrade",
        "upgraded",
        "deployed",
    )
    assert [r["status"] for r in history(helm_bin, kube_standin, env)] == [
        "superseded",
        "failed",
        "deployed",
    ]
    assert deployed_values(helm_bin, kube_standin, env) == declared(wanted)
    services = {s.metadata.name for s in core.list_namespaced_service(ns).items}
    assert "temporal-admintools" not in services
    deployments = k8s.AppsV1Api(core.api_client).list_namespaced_deployment(ns).items
    assert "temporal-admintools" not in {d.metadata.name for d in deployments}
    assert {d.metadata.name: d.spec.replicas for d in deployments}["temporal-history"] == 2


def test_helms_own_rollback_fails_after_a_kill_mid_apply(env, installer, helm_bin, kube_standin):
    """Why the step does not `helm rollback` (helm pkg/kube/client.go): the objects the new
    chart drops are still there but not in the pending revision's manifest."""
    ns = env.kubernetes.namespace
    assert run(installer, env).revision == 1
    wanted = with_history_replicas(env, 2).model_copy(
        update={"extra_values": {"admintools": {"enabled": False}}}
    )
    _kill_helm_mid_apply(helm_bin, kube_standin, wanted)
    rollback = subprocess.run(
        [helm_bin, "rollback", "temporal", "1", "--namespace", ns]
        + ["--kubeconfig", str(kube_standin.kubeconfig_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rollback.returncode != 0
    assert 'with the name "temporal-admintools"' in rollback.stderr, rollback.stderr


def test_the_by_hand_command_for_a_pending_release_works(
    installer, env, helm_bin, kube_standin, core
):
    """The command a young pending release's message gives (delete helm's record of the
    abandoned revision) lets the step upgrade from the last deployed revision, even after a
    kill mid-apply of a chart that drops objects."""
    ns = env.kubernetes.namespace
    assert run(installer, env).revision == 1
    wanted = with_history_replicas(env, 2).model_copy(
        update={"extra_values": {"admintools": {"enabled": False}}}
    )
    _kill_helm_mid_apply(helm_bin, kube_standin, wanted)
    err = run_failing(installer, wanted, pending_grace=timedelta(minutes=10))
    record = "sh.helm.release.v1.temporal.v2"
    assert f"kubectl delete secret {record} --namespace {ns}" in err.message

    core.delete_namespaced_secret(record, ns)  # what that kubectl command does
    result = run(
        installer, wanted, pending_grace=timedelta(minutes=10), timeout=timedelta(seconds=60)
    )

    assert (result.action, result.status, result.recovered_from) == ("upgraded", "deployed", None)
    assert [r["status"] for r in history(helm_bin, kube_standin, env)] == [
        "superseded",
        "deployed",
    ]
    assert "temporal-admintools" not in {
        s.metadata.name for s in core.list_namespaced_service(ns).items
    }


def test_abandoned_first_install_is_uninstalled_then_installed(
    installer, env, helm_bin, kube_standin
):
    ns = env.kubernetes.namespace
    kube_standin.never_ready("temporal-frontend", ns)
    _kill_helm_mid_wait(helm_bin, kube_standin, env, state="pending-install")
    kube_standin.allow_ready("temporal-frontend", ns)

    err = run_failing(installer, env, pending_grace=timedelta(minutes=10))
    assert err.type == ErrorType.HELM_RELEASE_PENDING
    assert f"helm uninstall temporal --namespace {ns}" in err.message

    dry = run(installer, env, pending_grace=timedelta(0), dry_run=True)
    assert (dry.action, dry.status, drift_messages(dry)) == (
        "installed",
        "pending-install",
        ("release is pending-install (revision 1)",),
    )
    assert [r["status"] for r in history(helm_bin, kube_standin, env)] == ["pending-install"]

    result = run(installer, env, pending_grace=timedelta(0), timeout=timedelta(seconds=30))
    assert (result.recovered_from, result.action, result.status) == (
        "pending-install",
        "installed",
        "deployed",
    )
    assert [r["status"] for r in history(helm_bin, kube_standin, env)] == ["deployed"]
    assert deployed_values(helm_bin, kube_standin, env) == declared(env)


def test_bad_values_are_reported_with_helms_message(installer, env, helm_bin, kube_standin):
    broken = env.model_copy(
        update={
            "extra_values": {
                "server": {"config": {"persistence": {"default": {"sql": {"host": ""}}}}}
            }
        }
    )
    err = run_failing(installer, broken)
    assert err.type == ErrorType.HELM_BAD_VALUES
    assert err.non_retryable
    assert "Please specify sql host for default store" in err.message
    assert ".go:" not in err.message  # helm's message, not its debug stack trace
    with pytest.raises(subprocess.CalledProcessError):
        history(helm_bin, kube_standin, env)  # nothing was installed


def test_cancellation_stops_helm(installer, helm_bin, env, kube_standin, monkeypatch):
    monkeypatch.setattr(install_chart_module, "HEARTBEAT_EVERY_S", 0.5)
    ns = env.kubernetes.namespace
    kube_standin.never_ready("temporal-frontend", ns)
    beats: list[dict[str, Any]] = []
    activity_env = ActivityEnvironment()
    activity_env.on_heartbeat = lambda *details: beats.append(details[0])
    outcome: dict[str, BaseException | InstallChartResult] = {}

    def target() -> None:
        try:
            outcome["result"] = activity_env.run(
                installer.install_chart,
                InstallChartInput(environment=env, timeout=timedelta(seconds=120)),
            )
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 30
    pids: list[int] = []
    while time.monotonic() < deadline:
        pids = pids_running(helm_bin, ns)
        if pids and any("readiness" in b["phase"] for b in beats):
            break
        time.sleep(0.2)
    assert pids, "helm upgrade never started"
    assert any("readiness" in b["phase"] for b in beats), beats
    assert all({"phase", "elapsed_s", "last_line"} <= b.keys() for b in beats)

    activity_env.cancel()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), CancelledError), outcome
    assert not [pid for pid in pids if pid_alive(pid)]
    assert os.getpid() not in pids


def test_chart_installed_before_its_ca_config_map_fails_naming_it(
    installer, bare_env, core, helm_bin, kube_standin
):
    """The bootstrap order swapped: the DB Secret exists, the CA ConfigMap does not yet. The
    server pods mount it, so they never start (as on a cluster): the wait runs out, and the
    error names the missing ConfigMap. Once it exists the same step installs the chart."""
    env = bare_env
    create_db_secret(core, env)

    # Long enough for helm to apply the chart and for the pods' FailedMount events to be
    # seen before it gives up, on a busy machine too (8 s and 15 s were not, with -n 3).
    err = run_failing(installer, env, timeout=timedelta(seconds=30))

    assert err.type == ErrorType.HELM_TIMEOUT, err.message
    assert 'configmap "rds-ca-certs" not found' in err.message, err.message
    assert "FailedMount" in err.message and "temporal-frontend-" in err.message

    create_ca_config_map(core, env)
    done = run(installer, env)
    assert (done.action, done.status) == ("installed", "deployed")


def no_helm_revision(core: k8s.CoreV1Api, namespace: str) -> bool:
    """No release record of any status (helm keeps one Secret per revision, owner=helm)."""
    return core.list_namespaced_secret(namespace, label_selector="owner=helm").items == []


@pytest.mark.parametrize("helm_version", ["v4"])  # no helm runs before the check: one is enough
def test_a_missing_ui_sign_in_secret_stops_before_helm_naming_it(
    installer, env, core, helm_bin, kube_standin
):
    """#22.4: the Web UI's OIDC client secret is the operator's to provide. Missing, or
    without its key, the step stops before helm (kubelet would keep the UI pod in
    CreateContainerConfigError for helm's whole --timeout, then helm would roll back), naming
    the Secret, the key and how to create it; once it is there the release installs."""
    ns = env.kubernetes.namespace
    oidc = OidcSignIn(
        provider_url="https://idp.example.com",
        client_id="temporal-ui",
        client_secret_ref=SecretKeyRef(name="ui-oidc", key="client-secret"),
        callback_url="https://temporal.example.com/auth/sso/callback",
    )
    signed_in = env.model_copy(update={"web_ui": WebUiSpec(auth=WebUiAuth.OIDC, oidc=oidc)})

    err = run_failing(installer, signed_in)
    assert (err.type, err.non_retryable) == (ErrorType.CONFIGURATION_MISMATCH, True), err
    assert (
        f"Secret 'ui-oidc' in namespace '{ns}' does not exist "
        "(web_ui.oidc.client_secret_ref, read by the Web UI's OIDC sign-in)" in err.message
    ), err.message
    assert f"kubectl -n {ns} create secret generic ui-oidc --from-file=client-secret=" in (
        err.message
    )
    assert no_helm_revision(core, ns)

    other_value = "not-the-client-secret-41d7"
    core.create_namespaced_secret(
        ns,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(name="ui-oidc"), string_data={"secret": other_value}
        ),
    )
    err = run_failing(installer, signed_in)
    assert f"Secret 'ui-oidc' in namespace '{ns}' has no key 'client-secret'" in err.message
    assert other_value not in err.message
    assert no_helm_revision(core, ns)

    core.patch_namespaced_secret(
        "ui-oidc", ns, k8s.V1Secret(string_data={"client-secret": "s3cr3t-7e1"})
    )
    done = run(installer, signed_in)
    assert (done.action, done.status) == ("installed", "deployed")


def with_chart(env: Environment, version: str, repository: str) -> Environment:
    """The environment declaring `version`, pulled from `repository` (no local copy)."""
    chart = ChartSpec(repository=repository, version=version)
    return env.model_copy(update={"chart": chart})


def test_an_upgrade_across_the_values_layout_change_keeps_the_cluster(
    installer, env, helm_bin, kube_standin, chart_repository
):
    """0.74.0 (the old layout) to 1.6.0 (datastores) from the chart repository, as an upgrade
    hop does it: one new revision, and the deployed manifests mean the same cluster. A dry
    run before says the chart differs, and that only `upgrade` moves it."""
    old = with_chart(env, "0.74.0", chart_repository.url)
    new = with_chart(env, "1.6.0", chart_repository.url)
    assert run(installer, old).action == "installed"
    would = run(installer, new, dry_run=True)
    version_drift = [d for d in would.drift if d.message.startswith("chart temporal-0.74.0")]
    assert [d.repairable for d in version_drift] == [False]
    assert "python starter.py upgrade local" in version_drift[0].message
    # #20.2: the values that differ with it are the skew's too: none is remediate's.
    assert len(would.drift) > 1, would.drift
    assert all(d.version_skew and not d.repairable for d in would.drift), would.drift
    assert all("python starter.py upgrade local" in d.how for d in would.drift)
    upgraded = run(installer, new)
    assert (upgraded.action, upgraded.revision, upgraded.chart) == (
        "upgraded",
        2,
        "temporal-1.6.0",
    )
    manifests = [
        parse_manifests(
            subprocess.run(
                [
                    helm_bin,
                    "get",
                    "manifest",
                    env.kubernetes.release,
                    "--revision",
                    str(revision),
                    "--namespace",
                    env.kubernetes.namespace,
                    "--kubeconfig",
                    str(kube_standin.kubeconfig_path),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for revision in (1, 2)
    ]
    assert cluster_meaning(manifests[1]) == cluster_meaning(manifests[0])


# --- issue #10, item 5: a helm that outlived its worker -------------------------------

ATTEMPT_IN_A_PROCESS = """
import sys
from collections.abc import Iterator
from datetime import timedelta
from temporalio.testing import ActivityEnvironment
from activities.install_chart import ChartInstaller
from contracts.install_chart import InstallChartInput
from declared_state.models import Environment

helm_bin, kubeconfig, env_file = sys.argv[1:4]
environment = Environment.model_validate_json(open(env_file).read())
ActivityEnvironment().run(
    ChartInstaller(helm_bin, kubeconfig).install_chart,
    InstallChartInput(environment=environment, timeout=timedelta(seconds=300)),
)
"""


def _attempt_in_a_worker(helm_bin, kube_standin, env: Environment, tmp_path) -> subprocess.Popen:
    """Attempt 1 of install_chart in a process of its own (a worker), its helm waiting for a
    Deployment that never gets ready; TMPDIR is tmp_path/tmp, to see what it leaves there."""
    (tmp_path / "tmp").mkdir()
    env_file = tmp_path / "environment.json"
    env_file.write_text(env.model_dump_json(by_alias=True))
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            ATTEMPT_IN_A_PROCESS,
            helm_bin,
            str(kube_standin.kubeconfig_path),
            str(env_file),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path / "tmp")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not pids_running(helm_bin, "upgrade", env.kubernetes.namespace):
        assert worker.poll() is None, "attempt 1 ended before its helm started"
        assert time.monotonic() < deadline, "attempt 1 never started helm"
        time.sleep(0.2)
    time.sleep(1)  # into helm's wait
    return worker


# Test stand-in around the real helm for attempt 2: before every command that writes the
# release, it notes which of the PIDs listed in `{orphans}` still run, then execs helm.
WRITE_WATCHING_HELM = """#!/bin/bash
case "$1" in
  upgrade|rollback|uninstall)
    for pid in $(cat "{orphans}"); do
      if [ -d /proc/$pid ] && ! grep -q '^State:[[:space:]]*Z' /proc/$pid/status; then
        echo "helm $1 while pid $pid runs" >> "{log}"
      fi
    done ;;
esac
exec "{real}" "$@"
"""


def _as_activity(activity_id: str, workflow_id: str = "test") -> ActivityEnvironment:
    activity_env = ActivityEnvironment()
    activity_env.info = dataclasses.replace(
        activity_env.info, activity_id=activity_id, workflow_id=workflow_id
    )
    return activity_env


def test_a_helm_left_by_a_killed_worker_is_stopped_before_the_release_is_recovered(
    installer, env, helm_bin, kube_standin, tmp_path
):
    """The worker dies (SIGKILL), its helm lives on in its own session. The next attempt
    (here: a new activity after an operator's retry, on another worker) used to uninstall and
    reinstall the release while that helm still worked on it."""
    ns = env.kubernetes.namespace
    kube_standin.never_ready("temporal-frontend", ns)
    worker = _attempt_in_a_worker(helm_bin, kube_standin, env, tmp_path)
    orphan = pids_running(helm_bin, "upgrade", ns)
    worker.kill()
    worker.wait()
    assert orphan and all(pid_alive(pid) for pid in orphan), "helm must outlive its worker"
    assert list((tmp_path / "tmp").iterdir()) == [], "a killed worker leaves no values file"

    # Attempt 2's helm notes any write to the release made while the orphan still runs.
    (tmp_path / "orphans").write_text(" ".join(map(str, orphan)))
    writes_while_orphan_runs = tmp_path / "writes-while-orphan-runs.log"
    wrapper = tmp_path / "helm"
    wrapper.write_text(
        WRITE_WATCHING_HELM.format(
            orphans=tmp_path / "orphans", log=writes_while_orphan_runs, real=helm_bin
        )
    )
    wrapper.chmod(0o755)
    attempt_2 = ChartInstaller(str(wrapper), str(kube_standin.kubeconfig_path))

    def ready_when_orphan_is_gone() -> None:
        deadline = time.monotonic() + 90
        while any(pid_alive(pid) for pid in orphan) and time.monotonic() < deadline:
            time.sleep(0.1)
        kube_standin.allow_ready("temporal-frontend", ns)

    watcher = threading.Thread(target=ready_when_orphan_is_gone, daemon=True)
    watcher.start()
    try:
        result = _as_activity("2").run(
            attempt_2.install_chart,
            InstallChartInput(
                environment=env, timeout=timedelta(seconds=40), pending_grace=timedelta(0)
            ),
        )
    finally:
        kube_standin.allow_ready("temporal-frontend", ns)
        for pid in orphan:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    watcher.join(timeout=5)
    assert not writes_while_orphan_runs.exists(), writes_while_orphan_runs.read_text()
    assert not any(pid_alive(pid) for pid in orphan)
    assert (result.action, result.status) == ("installed", "deployed")
    assert drift_messages(result) == ("release is pending-install (revision 1)",)
    assert history(helm_bin, kube_standin, env)[-1]["status"] == "deployed"
    assert deployed_values(helm_bin, kube_standin, env) == declared(env)


def test_a_helm_of_another_live_run_is_not_touched(
    installer, env, helm_bin, kube_standin, tmp_path
):
    """Two runs on one release (a provision and a drift repair): the second never stops the
    first one's helm; it waits for an operator, naming it."""
    ns = env.kubernetes.namespace
    kube_standin.never_ready("temporal-frontend", ns)
    worker = _attempt_in_a_worker(helm_bin, kube_standin, env, tmp_path)
    try:
        running = pids_running(helm_bin, "upgrade", ns)
        with pytest.raises(ApplicationError) as refused:
            _as_activity("1", workflow_id="drift-check-test").run(
                installer.install_chart,
                InstallChartInput(environment=env, pending_grace=timedelta(0)),
            )
        assert all(pid_alive(pid) for pid in running), "the other run's helm was stopped"
        assert worker.poll() is None
    finally:
        worker.kill()
        worker.wait()
        for pid in pids_running(helm_bin, "upgrade", ns):
            os.kill(pid, signal.SIGKILL)
    err = refused.value
    assert err.type == ErrorType.HELM_RELEASE_PENDING and err.non_retryable
    assert f"another helm (pid {running[0]}: helm upgrade --install temporal" in err.message
    assert "started by a running temporal-bootstrap activity (test/" in err.message


def test_a_helm_run_by_hand_is_named_and_left_alone(installer, env, helm_bin, kube_standin):
    ns = env.kubernetes.namespace
    kube_standin.never_ready("temporal-frontend", ns)
    by_hand = subprocess.Popen(
        [
            helm_bin,
            "upgrade",
            "--install",
            env.kubernetes.release,
            chart_reference(env.chart).chart,
            "--values",
            "-",
            "--namespace",
            ns,
            "--kubeconfig",
            str(kube_standin.kubeconfig_path),
            "--create-namespace",
            "--wait" + ("=watcher" if "/v4/" in helm_bin else ""),
            "--timeout",
            "120s",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert by_hand.stdin is not None
    by_hand.stdin.write(yaml.safe_dump(build_chart_values(env)))
    by_hand.stdin.close()
    try:
        deadline = time.monotonic() + 30
        while not any(
            r["status"] == "pending-install" for r in _history_or_empty(helm_bin, kube_standin, env)
        ):
            assert time.monotonic() < deadline, "the hand-run helm never started installing"
            time.sleep(0.2)
        err = run_failing(installer, env, pending_grace=timedelta(0))
        assert by_hand.poll() is None, "a helm run by hand must never be stopped"
    finally:
        by_hand.kill()
        by_hand.wait()
    assert err.type == ErrorType.HELM_RELEASE_PENDING
    assert f"another helm (pid {by_hand.pid}: helm upgrade --install temporal" in err.message
    assert "outside temporal-bootstrap, so it is left alone" in err.message


def _history_or_empty(helm_bin, kube_standin, env) -> list[dict[str, Any]]:
    try:
        return history(helm_bin, kube_standin, env)
    except subprocess.CalledProcessError:
        return []


@pytest.mark.parametrize("helm_version", ["v4"])
def test_images_pinned_by_digest_run_that_digest_and_a_moved_tag_is_drift(
    installer, env, helm_bin, kube_standin, kube_clients, image_registry
):
    """#23.5: with `images.pin: digest` each tag is resolved in the registry and the release
    deploys `repository:tag@sha256:...`, the digests in the result; a second run changes
    nothing; a tag re-pushed in the registry shows as drift in the next dry run."""
    pinned = env.model_copy(
        update={"images": env.images.model_copy(update={"pin": ImagePin.DIGEST})}
    )
    server = "temporalio/server:1.25.2"
    digest = image_registry.digest(server)
    first = run(installer, pinned)
    assert first.action == "installed"
    assert first.digests[server] == digest
    assert set(first.digests) == set(image_references(pinned))
    apps = k8s.AppsV1Api(kube_clients.api_client(env.kubernetes.context))
    frontend = apps.read_namespaced_deployment("temporal-frontend", env.kubernetes.namespace)
    assert frontend.spec.template.spec.containers[0].image == f"{server}@{digest}"

    again = run(installer, pinned)
    assert (again.action, drift_messages(again)) == ("unchanged", ())
    assert len(history(helm_bin, kube_standin, env)) == 1

    moved = image_registry.move_tag(server)
    assert moved != digest
    drift = run(installer, pinned, dry_run=True)
    assert drift_messages(drift) == ("values differ at: server.image.tag",)
    assert drift.digests[server] == moved
    assert len(history(helm_bin, kube_standin, env)) == 1, "a dry run changes nothing"


@pytest.mark.parametrize("helm_version", ["v4"], indirect=True)
def test_network_policies_are_kept_as_declared_without_a_helm_revision(
    installer, env, core, kube_standin
):
    """#23.3: every run makes the bootstrap's NetworkPolicies what the environment declares:
    created with the release, one added when a peer list is declared, all deleted when
    disabled, none written when they are as declared; a Role without the grant is named."""
    ns = env.kubernetes.namespace
    net = k8s.NetworkingV1Api(core.api_client)

    def names() -> set[str]:
        return {p.metadata.name for p in net.list_namespaced_network_policy(ns).items}

    first = run(installer, env)
    base = {"temporal-default-deny", "temporal-internal", "temporal-egress"}
    assert names() == base | {"temporal-frontend", "temporal-web"}
    assert sorted(first.network_policies) == [f"{n} created (missing)" for n in sorted(names())]
    again = run(installer, env)
    assert (again.action, again.changed, again.network_policies) == ("unchanged", False, ())

    policy = env.network_policy.model_copy(
        update={"metrics_from": (PolicyPeer(namespace_selector={"team": "obs"}),)}
    )
    watched = run(installer, env.model_copy(update={"network_policy": policy}))
    assert watched.network_policies == ("temporal-metrics created (missing)",)
    assert (watched.action, watched.changed, watched.revision) == ("unchanged", True, 1)

    off = env.network_policy.model_copy(update={"enabled": False})
    removed = run(installer, env.model_copy(update={"network_policy": off}))
    assert len(removed.network_policies) == 6 and names() == set()

    kube_standin.inject_faults(f"/namespaces/{ns}/networkpolicies/", 403, method="GET")
    try:
        refused = run_failing(installer, env)
    finally:
        kube_standin.clear_faults()
    assert refused.type == "KubernetesForbidden"
    assert "grant get, list, create, update and delete on networkpolicies" in refused.message
