"""Pod Security on the local stack (#23.1, #23.2), through the real worker and starter: the
demo's namespace is labelled restricted, every pod of the release is admitted by the
stand-in's PodSecurity admission, and a values override that lets one container escalate
privileges makes the stand-in refuse the pods and the bootstrap report `FailedCreate` with the
PodSecurity message (helm stopped, the first install uninstalled again), not a timeout."""

from __future__ import annotations

from kubernetes import client as k8s

NAMESPACE = "my-app-local"
INSTANCE = "app.kubernetes.io/instance=temporal"


def test_namespace_is_labelled_restricted_and_every_pod_is_admitted(operator, worker, kube_clients):
    proc = operator.starter("provision", "local", "--by", "e2e")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    core = kube_clients.core_v1("standin")
    labels = core.read_namespace(NAMESPACE).metadata.labels
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "latest"
    apps = k8s.AppsV1Api(kube_clients.api_client("standin"))
    deployments = apps.list_namespaced_deployment(NAMESPACE, label_selector=INSTANCE).items
    assert {d.metadata.name for d in deployments} >= {
        "temporal-frontend",
        "temporal-history",
        "temporal-matching",
        "temporal-worker",
        "temporal-web",
        "temporal-admintools",
    }
    for dep in deployments:
        assert (dep.status.ready_replicas or 0) == dep.spec.replicas, dep.metadata.name
        assert not [c for c in dep.status.conditions or [] if c.type == "ReplicaFailure"]
    events = core.list_namespaced_event(NAMESPACE, field_selector="reason=FailedCreate").items
    assert events == []


def test_privilege_escalation_override_is_refused_and_reported(
    operator, worker, environments_copy, kube_clients
):
    # extra_values may add what the model does not set: an init container that keeps
    # everything restricted asks for except allowPrivilegeEscalation=false.
    init = {
        "name": "escalate",
        "image": "busybox:1.36",
        "command": ["true"],
        "securityContext": {
            "allowPrivilegeEscalation": True,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }

    def edit(local):
        local["kubernetes"] = {**local.get("kubernetes", {}), "namespace": "psa-refused"}
        local["extra_values"] = {"server": {"additionalInitContainers": [init]}}

    env_dir = environments_copy(edit)
    proc = operator.starter("provision", "local", "--environments-dir", str(env_dir))
    # The run waits for an operator after the refusal; end it, or provision-local stays
    # taken for the modules after this one.
    operator.starter("abort", "local", "--by", "e2e")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "FailedCreate" in out, out
    assert (
        'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "escalate" must set securityContext.allowPrivilegeEscalation=false)'
    ) in out, out
    assert "HelmBadValues" in out, out
    assert "uninstalled again" in out, out
    core = kube_clients.core_v1("standin")
    labels = core.read_namespace("psa-refused").metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
