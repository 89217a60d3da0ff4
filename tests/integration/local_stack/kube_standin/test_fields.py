"""Contract tests of what the stand-in does to fields, with the real kubectl and Python client:
the `scale` subresource (`kubectl scale`), field managers and server-side apply conflicts
(`kubectl apply --server-side`, with and without `--force-conflicts`), what the API server
fills in (defaults, canonical quantities, the deployment revision), Service port validation,
and the files a container runtime is handed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from local_stack.kube_api_standin import KubeApiStandIn

from .conftest import KUBECTL
from .test_pods import NS, deployment

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: web:1
          resources: {limits: {cpu: 100m, memory: 128Mi}}
"""


@pytest.fixture
def kubectl(run, kubeconfig: Path):
    def _kubectl(*args: str, check: bool = True):
        return run(KUBECTL, "--kubeconfig", str(kubeconfig), "-n", NS, *args, check=check)

    return _kubectl


def test_kubectl_scale_uses_the_scale_subresource(kubectl, apps, standin) -> None:
    apps.create_namespaced_deployment(NS, deployment("web"))
    assert "deployment.apps/web scaled" in kubectl("scale", "deployment/web", "--replicas=7").stdout
    assert apps.read_namespaced_deployment("web", NS).spec.replicas == 7
    scale = apps.read_namespaced_deployment_scale("web", NS)
    assert (scale.kind, scale.spec.replicas, scale.status.selector) == ("Scale", 7, "app=web")
    patched = [r for r in standin.requests if r["subresource"] == "scale"]
    assert patched[0]["verb"] == "patch" and patched[0]["status"] == 200
    refused = kubectl("scale", "deployment/web", "--replicas=-1", check=False)
    assert refused.returncode != 0


def test_server_side_apply_conflicts_with_a_hand_edit_unless_forced(
    kubectl, apps, tmp_path: Path
) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(MANIFEST)
    apply = ("apply", "--server-side", "--field-manager=helm", "-f", str(manifest))
    kubectl(*apply)
    kubectl("scale", "deployment/web", "--replicas=5")
    kubectl("set", "resources", "deployment/web", "--limits=memory=256Mi")
    kubectl("set", "env", "deployment/web", "HAND=edit")

    refused = kubectl(*apply, check=False)
    assert refused.returncode != 0
    assert 'conflict with "kubectl"' in refused.stderr and ".spec.replicas" in refused.stderr
    assert 'conflict with "kubectl-set"' in refused.stderr
    assert '.spec.template.spec.containers[name="web"].resources.limits.memory' in refused.stderr
    assert apps.read_namespaced_deployment("web", NS).spec.replicas == 5  # nothing applied

    kubectl(*apply, "--force-conflicts")
    dep = apps.read_namespaced_deployment("web", NS)
    container = dep.spec.template.spec.containers[0]
    assert dep.spec.replicas == 1 and container.resources.limits["memory"] == "128Mi"
    # a field the applier never set stays: apply only owns what it applies
    assert [e.name for e in container.env] == ["HAND"]
    # applied again unchanged, with the fields now helm's: no conflict
    kubectl(*apply)


def test_the_same_value_applied_by_two_managers_is_shared_not_a_conflict(
    kubectl, tmp_path: Path
) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(MANIFEST)
    kubectl("apply", "--server-side", "--field-manager=helm", "-f", str(manifest))
    kubectl("apply", "--server-side", "--field-manager=other", "-f", str(manifest))
    kubectl("apply", "--server-side", "--field-manager=helm", "-f", str(manifest))


def test_defaults_and_canonical_quantities_as_the_api_server_stores_them(apps, core) -> None:
    limits = {"cpu": "1000m", "memory": "1024Mi", "ephemeral-storage": "1536Mi"}
    requests = {"cpu": "0.5", "memory": "0.5Ki", "nvidia.com/gpu": "2000"}
    probe = {"tcpSocket": {"port": 8080}}
    apps.create_namespaced_deployment(
        NS,
        deployment(
            "web",
            container={
                "resources": {"limits": limits, "requests": requests},
                "livenessProbe": probe,
            },
            volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}],
        ),
    )
    dep = apps.read_namespaced_deployment("web", NS)
    container = dep.spec.template.spec.containers[0]
    assert container.resources.limits == {
        "cpu": "1",
        "memory": "1Gi",
        "ephemeral-storage": "1536Mi",
    }
    assert container.resources.requests == {"cpu": "500m", "memory": "512", "nvidia.com/gpu": "2k"}
    assert (container.image_pull_policy, container.termination_message_path) == (
        "IfNotPresent",
        "/dev/termination-log",
    )
    assert container.ports[0].protocol == "TCP"
    assert (container.liveness_probe.period_seconds, container.liveness_probe.timeout_seconds) == (
        10,
        1,
    )
    pod = dep.spec.template.spec
    assert (pod.restart_policy, pod.dns_policy, pod.termination_grace_period_seconds) == (
        "Always",
        "ClusterFirst",
        30,
    )
    assert pod.volumes[0].config_map.default_mode == 420
    assert dep.spec.strategy.type == "RollingUpdate" and dep.spec.revision_history_limit == 10

    core.create_namespaced_service(
        NS, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    )
    svc = core.read_namespaced_service("web", NS).spec
    assert (svc.session_affinity, svc.ip_families, svc.internal_traffic_policy) == (
        "None",
        ["IPv4"],
        "Cluster",
    )


def test_the_deployment_controller_writes_the_revision(apps, wait_for) -> None:
    apps.create_namespaced_deployment(NS, deployment("web"))

    def revision() -> str | None:
        annotations = apps.read_namespaced_deployment("web", NS).metadata.annotations or {}
        return annotations.get("deployment.kubernetes.io/revision")

    wait_for(lambda: revision() == "1", what="revision 1")
    apps.patch_namespaced_deployment(
        "web",
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}},
    )
    wait_for(lambda: revision() == "2", what="revision 2 after a new template")


def test_service_ports_are_validated_as_the_api_server_does(core) -> None:
    ports = [{"name": "http", "port": 80}, {"name": "http", "port": 81}]
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_service(NS, {"metadata": {"name": "web"}, "spec": {"ports": ports}})
    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert message == 'Service "web" is invalid: spec.ports[1].name: Duplicate value: "http"'


class FilesRuntime:
    def __init__(self) -> None:
        self.files: dict[str, Mapping[str, bytes]] = {}

    def start(self, pod: dict, files: Mapping[str, bytes]) -> None:
        self.files[pod["metadata"]["labels"].get("app", "")] = dict(files)

    def stop(self, pod: dict) -> None:
        pass

    def address(self, pod: dict, port: int) -> None:
        return None


def test_a_container_runtime_is_handed_the_files_its_pod_mounts(
    standin: KubeApiStandIn, apps, core: client.CoreV1Api, wait_for
) -> None:
    runtime = FilesRuntime()
    standin.add_runtime(runtime)
    try:
        core.create_namespaced_config_map(
            NS, {"metadata": {"name": "cfg"}, "data": {"a.yaml": "x: 1", "b.yaml": "y: 2"}}
        )
        core.create_namespaced_secret(
            NS, {"metadata": {"name": "sec"}, "string_data": {"token": "s3cret"}}
        )
        mounts = [
            {"name": "cfg", "mountPath": "/etc/app/a.yaml", "subPath": "a.yaml"},
            {"name": "all", "mountPath": "/etc/all"},
            {"name": "sec", "mountPath": "/var/run/sec"},
        ]
        volumes = [
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {
                "name": "all",
                "configMap": {"name": "cfg", "items": [{"key": "b.yaml", "path": "b"}]},
            },
            {"name": "sec", "secret": {"secretName": "sec"}},
        ]
        apps.create_namespaced_deployment(
            NS, deployment("files", container={"volumeMounts": mounts}, volumes=volumes)
        )
        files = wait_for(lambda: runtime.files.get("files"), what="the pod to start")
        assert files == {
            "/etc/app/a.yaml": b"x: 1",
            "/etc/all/b": b"y: 2",
            "/var/run/sec/token": b"s3cret",
        }
    finally:
        standin.api.controller.pods.runtimes.remove(runtime)


NETWORK_POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: NAME, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: 8080}]}]
"""


def test_network_policies_are_defaulted_stored_and_edited_with_kubectl(
    kubectl, tmp_path: Path
) -> None:
    """SetDefaults_NetworkPolicy(Port) of k8s.io/kubernetes pkg/apis/networking/v1: no
    policyTypes means Ingress (plus Egress when there are egress rules); a port's protocol is
    TCP. kubectl applies, gets and patches them (the stand-in enforces no traffic)."""
    ingress_only = tmp_path / "in.yaml"
    ingress_only.write_text(NETWORK_POLICY.replace("NAME", "in"))
    both = tmp_path / "both.yaml"
    both.write_text(
        NETWORK_POLICY.replace("NAME", "both")
        + "  egress: [{ports: [{port: 53, protocol: UDP}]}]\n"
    )
    kubectl("apply", "-f", str(ingress_only), "-f", str(both))

    def spec(name: str) -> dict:
        return json.loads(kubectl("get", "networkpolicy", name, "-o", "json").stdout)["spec"]

    assert spec("in")["policyTypes"] == ["Ingress"]
    assert spec("in")["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    assert spec("both")["policyTypes"] == ["Ingress", "Egress"]
    assert spec("both")["egress"] == [{"ports": [{"port": 53, "protocol": "UDP"}]}]
    edit = [
        {"op": "add", "path": "/spec/ingress/0/from", "value": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}
    ]
    kubectl("patch", "netpol", "in", "--type=json", "-p", json.dumps(edit))
    assert spec("in")["ingress"][0]["from"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
