"""read_live_versions against the Kubernetes API stand-in and the TLS MariaDB, and the
provisioning guard that uses it (check_database refuses a cluster more than a minor behind)."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client as k8s
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.check_database import DatabasePreflight
from activities.read_live_versions import ReadLiveVersions
from adapters.clients import AwsClients, KubeClients
from contracts.check_database import CheckDatabaseInput
from contracts.read_live_versions import ReadLiveVersionsInput, ReadLiveVersionsResult
from declared_state.models import Environment
from tests.helpers import drift_messages, in_namespace


@pytest.fixture
def env(local_env: Environment, kube_clients: KubeClients) -> Environment:
    env = in_namespace(local_env, f"live-{uuid.uuid4().hex[:10]}")
    kube_clients.core_v1("standin").create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=env.kubernetes.namespace))
    )
    return env


def deploy(kube: KubeClients, env: Environment, chart: str, servers: dict[str, str]) -> None:
    """Server Deployments as the chart labels them, running the given server images."""
    apps = kube.apps_v1("standin")
    for component, image in servers.items():
        labels = {
            "app.kubernetes.io/instance": env.kubernetes.release,
            "app.kubernetes.io/name": "temporal",
            "app.kubernetes.io/component": component,
            "helm.sh/chart": f"temporal-{chart}",
        }
        body = k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name=f"temporal-{component}", labels=labels),
            spec=k8s.V1DeploymentSpec(
                selector=k8s.V1LabelSelector(match_labels={"c": component}),
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels={"c": component}),
                    spec=k8s.V1PodSpec(
                        containers=[k8s.V1Container(name=f"temporal-{component}", image=image)]
                    ),
                ),
            ),
        )
        apps.create_namespaced_deployment(env.kubernetes.namespace, body)


def read(aws: AwsClients, kube: KubeClients, env: Environment) -> ReadLiveVersionsResult:
    step = ReadLiveVersions(kube, DatabasePreflight(aws, kube))
    return ActivityEnvironment().run(
        step.read_live_versions, ReadLiveVersionsInput(environment=env)
    )


SERVERS = ("frontend", "history", "matching", "worker")


def test_reads_server_chart_and_schema_from_the_cluster(aws_clients, kube_clients, env):
    deploy(kube_clients, env, "0.52.0", {c: "temporalio/server:1.25.2" for c in SERVERS})
    result = read(aws_clients, kube_clients, env)
    assert (result.server_version, result.chart) == ("1.25.2", "0.52.0")
    assert (result.default_schema, result.visibility_schema) == ("1.14", "1.6")
    assert result.drift == () and not result.changed


def test_mid_rollout_the_oldest_server_counts_and_drift_is_for_upgrade_only(
    aws_clients, kube_clients, env
):
    servers = {c: "temporalio/server:1.25.2" for c in SERVERS}
    servers["frontend"] = "registry.example.com/temporalio/server:1.26.2"
    deploy(kube_clients, env, "0.55.0", servers)
    declared = env.model_copy(
        update={
            "chart": env.chart.model_copy(
                update={"version": "0.55.0", "local_path": None, "server_version": "1.26.2"}
            )
        }
    )
    result = read(aws_clients, kube_clients, declared)
    assert result.server_version == "1.25.2"
    assert "mid-rollout: frontend 1.26.2, history 1.25.2" in result.summary
    messages = drift_messages(result)
    assert messages[0].startswith("server 1.25.2 runs, declared 1.26.2 (chart 0.55.0)")
    assert (
        "database temporal_visibility schema 1.6, declared server 1.26.2 needs 1.7" in messages[1]
    )
    assert all(not d.repairable for d in result.drift)


def test_nothing_deployed(aws_clients, kube_clients, env):
    result = read(aws_clients, kube_clients, env)
    assert result.server_version is None and not result.installed


def test_an_image_tag_that_is_no_version_is_refused_with_what_to_pin(
    aws_clients, kube_clients, env
):
    deploy(kube_clients, env, "0.52.0", {"frontend": "temporalio/server:latest"})
    with pytest.raises(ApplicationError) as info:
        read(aws_clients, kube_clients, env)
    assert info.value.type == "ConfigurationMismatch" and info.value.non_retryable
    assert "pin server.image.tag" in info.value.message


@pytest.mark.parametrize(
    ("running", "message"),
    [
        ("1.23.1", "2 minors behind the declared chart 0.52.0 (server 1.25.2)"),
        (
            "1.27.2",
            "newer than the declared chart 0.52.0 (server 1.25.2): Temporal cannot be downgraded",
        ),
    ],
)
def test_provisioning_refuses_more_than_one_minor_and_points_at_upgrade(
    aws_clients, kube_clients, env, running, message
):
    deploy(kube_clients, env, "0.40.0", {c: f"temporalio/server:{running}" for c in SERVERS})
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(
            DatabasePreflight(aws_clients, kube_clients).check_database,
            CheckDatabaseInput(environment=env),
        )
    assert (info.value.type, info.value.non_retryable) == ("UpgradeRequired", True)
    assert message in info.value.message
    if running == "1.23.1":
        assert f"python starter.py upgrade {env.name} --plan" in info.value.message


def test_provisioning_one_minor_ahead_is_allowed_past_the_guard(aws_clients, kube_clients, env):
    """One minor ahead is not refused by the guard (the schema check decides next)."""
    deploy(kube_clients, env, "0.52.0", {c: "temporalio/server:1.24.3" for c in SERVERS})
    result = ActivityEnvironment().run(
        DatabasePreflight(aws_clients, kube_clients).check_database,
        CheckDatabaseInput(environment=env),
    )
    assert result.default_store.found == "1.14"
