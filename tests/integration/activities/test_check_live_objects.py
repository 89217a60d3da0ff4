"""check_live_objects against releases installed by install_chart with the real helm v3 and
v4, the real chart 0.52.0 and the Kubernetes API stand-in, every hand edit made with the
real kubectl. Each test works in a Kubernetes namespace of its own."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from kubernetes import client as k8s
from temporalio.testing import ActivityEnvironment

from activities.check_live_objects import LiveObjectChecker
from activities.install_chart import ChartInstaller
from contracts.base import DriftItem
from contracts.check_live_objects import CheckLiveObjectsInput, CheckLiveObjectsResult
from declared_state.models import Environment, IgnoreRule
from tests.helpers.hand_edits import HAND_EDITS, HISTORY_ENV, REMOVE_ADDED_ENV
from tests.integration.activities.test_install_chart import (
    create_ca_config_map,
    create_db_secret,
    history,
)
from tests.integration.activities.test_install_chart import run as install

KUBECTL = str(Path(__file__).resolve().parents[3] / ".tools" / "kubectl" / "kubectl")
CHART_OBJECTS = 16  # what chart 0.52.0 renders for environments/local.yaml
# ... and the bootstrap's NetworkPolicies: default-deny, internal, egress, frontend, web (#23.3)
OBJECTS = CHART_OBJECTS + 5


@pytest.fixture(params=["v3", "v4"])
def helm_version(request) -> str:
    return request.param


@pytest.fixture
def installer(helm_binaries, helm_version, kube_standin) -> ChartInstaller:
    return ChartInstaller(helm_binaries[helm_version], str(kube_standin.kubeconfig_path))


@pytest.fixture
def checker(installer, kube_clients) -> LiveObjectChecker:
    return LiveObjectChecker(installer, kube_clients)


@pytest.fixture
def env(local_env: Environment, helm_version: str, core: k8s.CoreV1Api) -> Environment:
    """local_env in a namespace of its own, with a frontend declared in quantities the API
    server stores otherwise (1000m is stored as 1, 0.25Gi as 256Mi), installed."""
    ns = f"live-{helm_version}-{uuid.uuid4().hex[:8]}"
    frontend = local_env.services.frontend.model_copy(
        update={
            "resources": local_env.services.frontend.resources.model_copy(
                update={
                    "limits": local_env.services.frontend.resources.limits.model_copy(
                        update={"cpu": "1000m", "memory": "0.25Gi"}
                    )
                }
            )
        }
    )
    env = local_env.model_copy(
        update={
            "kubernetes": local_env.kubernetes.model_copy(update={"namespace": ns}),
            "services": local_env.services.model_copy(update={"frontend": frontend}),
        }
    )
    create_db_secret(core, env)
    create_ca_config_map(core, env)
    return env


def check(checker: LiveObjectChecker, env: Environment) -> CheckLiveObjectsResult:
    return ActivityEnvironment().run(
        checker.check_live_objects, CheckLiveObjectsInput(environment=env, dry_run=True)
    )


def with_ignore(env: Environment, *rules: IgnoreRule) -> Environment:
    return env.model_copy(
        update={"drift_check": env.drift_check.model_copy(update={"ignore": rules})}
    )


def found(result: CheckLiveObjectsResult) -> dict[tuple[str, str, str], DriftItem]:
    return {(d.kind, d.name, d.path): d for d in result.drift}


def kubectl(kube_standin, env: Environment, *args: str) -> str:
    proc = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            str(kube_standin.kubeconfig_path),
            "-n",
            env.kubernetes.namespace,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


EDITS = [edit for edit, _, _ in HAND_EDITS]
EXPECTED = {where: values for _, where, values in HAND_EDITS}


def test_a_fresh_install_is_in_sync_after_what_the_api_server_fills_in(checker, installer, env):
    install(installer, env)
    result = check(checker, env)
    assert (result.objects, result.compared) == (OBJECTS, OBJECTS)
    assert result.drift == () and result.unchecked == ()
    assert result.summary == f"{OBJECTS} objects, {OBJECTS} compared: in sync"
    assert (result.changed, result.release) == (False, "temporal")


@pytest.mark.parametrize("helm_version", ["v4"], indirect=True)
def test_every_hand_edit_is_reported_with_its_path_and_nothing_is_written(
    checker, installer, env, kube_standin, kube_writes
):
    install(installer, env)
    for edit in EDITS:
        kubectl(kube_standin, env, *edit)
    marker = kube_writes.mark()
    result = check(checker, env)
    assert kube_writes.since(marker) == []
    differences = found(result)
    assert set(differences) == set(EXPECTED)
    for key, (live, declared) in EXPECTED.items():
        item = differences[key]
        assert item.live == live, key
        if declared is not ...:
            assert item.declared == declared, key
        assert item.namespace == env.kubernetes.namespace and not item.ignored
    assert differences[("Deployment", "temporal-frontend", "/spec/replicas")].message == (
        "Deployment temporal-frontend: /spec/replicas live 7, declared 1"
    )
    config = differences[("ConfigMap", "temporal-config", "/data/config_template.yaml")]
    assert 'differs at line 1: live "garbage", declared "log:"' in config.message
    # helm restores what the manifest sets, never what it did not set
    assert [k for k, d in differences.items() if not d.repairable] == [
        ("Deployment", "temporal-history", HISTORY_ENV)
    ]
    assert "remove it by hand" in differences[("Deployment", "temporal-history", HISTORY_ENV)].how
    assert result.compared == OBJECTS - 1  # the deleted Service is missing


@pytest.mark.parametrize("helm_version", ["v4"], indirect=True)
def test_an_ignore_rule_suppresses_exactly_its_field(checker, installer, env, kube_standin):
    install(installer, env)
    kubectl(kube_standin, env, "scale", "deployment/temporal-frontend", "--replicas=3")
    kubectl(kube_standin, env, "scale", "deployment/temporal-matching", "--replicas=2")
    kubectl(kube_standin, env, "set", "resources", "deployment/temporal-frontend", "--limits=cpu=2")
    ignoring = with_ignore(
        env, IgnoreRule(kind="Deployment", name="temporal-f*", path="/spec/replicas")
    )
    result = check(checker, ignoring)
    shown = {(d.name, d.path) for d in result.drift if not d.ignored}
    assert shown == {
        ("temporal-matching", "/spec/replicas"),
        ("temporal-frontend", "/spec/template/spec/containers/0/resources/limits/cpu"),
    }
    (ignored,) = [d for d in result.drift if d.ignored]
    assert (ignored.name, ignored.path, ignored.repairable) == (
        "temporal-frontend",
        "/spec/replicas",
        False,
    )
    assert result.ignored == 1 and "1 ignored" in result.summary


def test_reapplying_restores_every_edit_but_what_the_chart_never_set(
    checker, installer, env, kube_standin, helm_binaries, helm_version
):
    install(installer, env)
    for edit in EDITS:
        kubectl(kube_standin, env, *edit)
    revisions = len(history(helm_binaries[helm_version], kube_standin, env))

    unchanged = install(installer, env)  # values as declared: nothing to do without reapply
    assert (unchanged.action, unchanged.revision) == ("unchanged", revisions)
    repaired = install(installer, env, reapply=True)
    assert (repaired.action, repaired.revision) == ("upgraded", revisions + 1)

    left = check(checker, env)
    assert [(d.name, d.path, d.repairable) for d in left.drift] == [
        ("temporal-history", HISTORY_ENV, False)
    ]
    kubectl(kube_standin, env, *REMOVE_ADDED_ENV)
    assert check(checker, env).drift == ()


@pytest.mark.parametrize("helm_version", ["v4"], indirect=True)
def test_objects_the_manifest_does_not_have_are_reported(checker, installer, env, core):
    install(installer, env)
    core.create_namespaced_config_map(
        env.kubernetes.namespace,
        k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(
                name="temporal-leftover", labels={"app.kubernetes.io/instance": "temporal"}
            ),
            data={"a": "b"},
        ),
    )
    (item,) = check(checker, env).drift
    assert (item.kind, item.name, item.path, item.live, item.declared) == (
        "ConfigMap",
        "temporal-leftover",
        "",
        "exists",
        None,
    )
    assert not item.repairable and "kubectl -n" in item.how and "delete configmap" in item.how


@pytest.mark.parametrize("helm_version", ["v4"], indirect=True)
def test_what_the_api_refuses_to_show_could_not_be_checked(checker, installer, env, kube_standin):
    install(installer, env)
    path = f"/apis/apps/v1/namespaces/{env.kubernetes.namespace}/deployments/temporal-web$"
    kube_standin.inject_faults(path, status=403, count=1, method="GET")
    result = check(checker, env)
    assert result.drift == ()
    (unchecked,) = result.unchecked
    assert (unchecked.kind, unchecked.name) == ("Deployment", "temporal-web")
    assert "could not check" in unchecked.message and "forbidden (403" in unchecked.message
    assert result.compared == OBJECTS - 1


@pytest.mark.parametrize("helm_version", ["v4"], indirect=True)
def test_differences_of_another_deployed_chart_are_version_skew_not_repairable(
    checker, installer, env
):
    """#20.2: the cluster runs chart 0.52.0 (server 1.25.2) while the declaration says 0.55.0
    (mid-upgrade, or the file edited without `upgrade`): the objects differ because the
    versions do, and re-applying the declared manifest would move the server without its
    schema step. Every difference says so, none is repairable."""
    install(installer, env)
    chart = env.chart
    if chart.local_path is not None:  # the offline mirror: the 0.55.0 chart beside it
        local = str(Path(chart.local_path).parent / "temporal-0.55.0")
        chart = chart.model_copy(update={"local_path": local})
    declared = {"version": "0.55.0", "server_version": "1.26.2"}
    ahead = env.model_copy(update={"chart": chart.model_copy(update=declared)})

    result = check(checker, ahead)

    images = [d for d in result.drift if d.path.endswith("/image")]
    assert images, result.drift  # the server image differs: 1.25.2 runs, 1.26.2 declared
    assert any("1.25.2" in (d.live or "") and "1.26.2" in (d.declared or "") for d in images)
    shown = [d for d in result.drift if not d.ignored]
    assert shown and all(d.version_skew and not d.repairable for d in shown), shown
    how = shown[0].how
    assert "temporal-0.52.0 (server 1.25.2), declared temporal-0.55.0 (server 1.26.2)" in how
    assert f"python starter.py upgrade {env.name}" in how and "remediate leaves" in how
    assert "the cluster runs chart temporal-0.52.0" in result.summary

    # The declared chart itself: nothing is skew, edits stay repairable.
    same = check(checker, env)
    assert same.drift == ()


@pytest.mark.parametrize("helm_version", ["v4"], indirect=True)
def test_a_hand_edit_of_the_dynamic_config_is_reported_with_its_path(
    checker, installer, env, kube_standin, core
):
    """#22.3: the servers re-read ConfigMap <release>-dynamic-config every 10 s, so a value
    changed there with kubectl takes effect at once; the check reports it by field and line,
    and a repair brings the declared value back."""
    declared = Environment.model_validate(
        {
            **env.model_dump(by_alias=True),
            "dynamic_config": {
                "frontend.namespaceRPS": [
                    {"value": 2400},
                    {"value": 400, "constraints": {"namespace": "batch-jobs"}},
                ]
            },
        }
    )
    install(installer, declared)
    name, key = "temporal-dynamic-config", "dynamic_config.yaml"
    text = core.read_namespaced_config_map(name, env.kubernetes.namespace).data[key]
    assert "value: 2400" in text  # what the chart wrote from the declaration
    edited = text.replace("value: 2400", "value: 99999")
    kubectl(
        kube_standin,
        env,
        "patch",
        "configmap",
        name,
        "--type=merge",
        "-p",
        json.dumps({"data": {key: edited}}),
    )

    (item,) = check(checker, declared).drift
    assert (item.kind, item.name, item.path) == ("ConfigMap", name, f"/data/{key}")
    assert (item.live, item.declared) == (json.dumps(edited), json.dumps(text))
    line = text.splitlines().index("  value: 2400") + 1
    assert f'differs at line {line}: live "  value: 99999", declared "  value: 2400"' in (
        item.message
    )
    assert item.repairable and not item.ignored

    install(installer, declared, reapply=True)
    assert check(checker, declared).drift == ()
    # the same file declared without the key: the chart's empty file, and the edit is drift
    (item,) = check(checker, env).drift
    assert (item.name, item.path, item.declared) == (name, f"/data/{key}", '""')
