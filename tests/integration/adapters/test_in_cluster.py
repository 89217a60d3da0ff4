"""The worker's Kubernetes credentials in a pod (adapters/clients.py): no kubeconfig, the
ServiceAccount token and CA that kubelet mounts, KUBERNETES_SERVICE_HOST/PORT. Played against
the Kubernetes API stand-in (HTTPS, TokenRequest tokens, RBAC) with the real Python client and
the real helm: every request is the ServiceAccount's, and a context that is not this
cluster's is refused before anything is sent."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kubernetes import client as k8s
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ensure_ca_bundle import CaBundlePublisher
from activities.install_chart import ChartInstaller
from adapters.clients import InCluster, KubeClients
from adapters.temporal_target import TargetTemporalClients
from contracts.ensure_ca_bundle import EnsureCaBundleInput
from declared_state.models import Environment, PodSecurityLevel
from tests.helpers.pods import in_cluster_env, project_service_account


@pytest.fixture
def pod(kube_standin, kube_clients, local_env: Environment, tmp_path: Path):
    """A namespace, ServiceAccount `worker` allowed configmaps and helm's release Secrets
    there, and the pod's service-account folder; returns (environment, InCluster, user)."""
    ns = f"in-cluster-{uuid.uuid4().hex[:8]}"
    admin = kube_clients.core_v1("standin")
    admin.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
    admin.create_namespaced_service_account(
        ns, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="worker"))
    )
    rbac = k8s.RbacAuthorizationV1Api(kube_clients.api_client("standin"))
    rules = [
        k8s.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "create"]),
        k8s.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["list"]),
    ]
    rbac.create_namespaced_role(
        ns, k8s.V1Role(metadata=k8s.V1ObjectMeta(name="worker"), rules=rules)
    )
    rbac.create_namespaced_role_binding(
        ns,
        k8s.V1RoleBinding(
            metadata=k8s.V1ObjectMeta(name="worker"),
            role_ref=k8s.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="worker"
            ),
            subjects=[k8s.RbacV1Subject(kind="ServiceAccount", name="worker", namespace=ns)],
        ),
    )
    folder = project_service_account(admin, kube_standin, ns, "worker", tmp_path / "sa")
    # The Role is confined to the namespace, so the worker cannot label it: as deploy/ does,
    # the namespace is labelled by whoever creates it and the environment says so.
    env = local_env.model_copy(
        update={
            "kubernetes": local_env.kubernetes.model_copy(update={"namespace": ns}),
            "pod_security": PodSecurityLevel.NONE,
        }
    )
    found = InCluster.detect(in_cluster_env(kube_standin, folder, context="standin"))
    assert found is not None
    return env, found, f"system:serviceaccount:{ns}:worker"


def test_detected_only_with_host_port_and_a_token(tmp_path: Path, kube_standin) -> None:
    (tmp_path / "token").write_text("t")
    env = in_cluster_env(kube_standin, tmp_path)
    assert InCluster.detect(env) is not None
    assert InCluster.detect({**env, "KUBERNETES_SERVICE_HOST": ""}) is None
    assert InCluster.detect({**env, "TEMPORAL_BOOTSTRAP_SERVICE_ACCOUNT_DIR": "/nowhere"}) is None
    # KUBECONFIG wins over the pod's own credentials, as in client-go.
    assert KubeClients.from_environment({**env, "KUBECONFIG": "/k"}).in_cluster is None
    assert KubeClients.from_environment(env).in_cluster is not None
    # Inside its cluster, the frontend is dialled by the Service's name.
    assert TargetTemporalClients(KubeClients.from_environment(env)).in_cluster


def test_activities_and_helm_act_as_the_pods_service_account(
    pod, kube_standin, helm_binaries, aws_clients
):
    env, in_cluster, user = pod
    kube = KubeClients(in_cluster=in_cluster)
    since = len(kube_standin.requests)
    result = ActivityEnvironment().run(
        CaBundlePublisher(aws_clients, kube).ensure_ca_bundle,
        EnsureCaBundleInput(environment=env),
    )
    assert result.action == "created"
    # helm gets the same credentials through a kubeconfig that names the token file only.
    helm = ChartInstaller(helm_binaries["v4"], kube=kube).helm_for(env)
    assert helm.run_json(["list", "--namespace", env.kubernetes.namespace]) == []
    written = Path(str(helm.kubeconfig)).read_text()
    assert "tokenFile" in written and in_cluster.token_file.read_text() not in written

    mine = [r for r in kube_standin.requests[since:] if r["namespace"] == env.kubernetes.namespace]
    assert {r["user"] for r in mine} == {user}
    assert {(r["verb"], r["resource"], r["status"]) for r in mine} >= {
        ("get", "configmaps", 404),
        ("create", "configmaps", 201),
        ("list", "secrets", 200),
    }


def test_an_environment_for_another_cluster_is_refused_before_any_request(
    pod, kube_standin, helm_binaries, aws_clients
) -> None:
    env, in_cluster, user = pod
    other = env.model_copy(
        update={"kubernetes": env.kubernetes.model_copy(update={"context": "production-eks"})}
    )
    kube = KubeClients(in_cluster=in_cluster)
    since = len(kube_standin.requests)
    with pytest.raises(ApplicationError) as refused:
        ActivityEnvironment().run(
            CaBundlePublisher(aws_clients, kube).ensure_ca_bundle,
            EnsureCaBundleInput(environment=other),
        )
    assert refused.value.non_retryable
    assert "serves only kube context 'standin'" in refused.value.message
    assert "declares kubernetes.context 'production-eks'" in refused.value.message
    with pytest.raises(ApplicationError, match="production-eks"):
        ChartInstaller(helm_binaries["v4"], kube=kube).helm_for(other)
    sent = [r for r in kube_standin.requests[since:] if r["user"] == user]
    assert sent == [], "nothing was sent"
