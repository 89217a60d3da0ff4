"""deploy/ as an operator applies it: the example overlay builds with the real kubectl's
kustomize, and what it builds keeps the promises deploy/README.md makes (a non-root worker
with a read-only root file system and resources, the IRSA slot, the embedded server's SQLite
file on a PersistentVolumeClaim, no cluster-wide permission). What the Role grants is proved
by tests/e2e/test_in_cluster_rbac.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KUBECTL = str(PROJECT_ROOT / ".tools" / "kubectl" / "kubectl")


def build(overlay: str) -> dict[tuple[str, str], dict]:
    proc = subprocess.run(
        [KUBECTL, "kustomize", str(PROJECT_ROOT / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(proc.stdout)}


def test_the_example_overlay_builds_what_the_readme_promises() -> None:
    objects = build("deploy/overlays/example")
    kinds = {kind for kind, _ in objects}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, "no cluster-wide permission"

    worker = objects[("Deployment", "temporal-bootstrap-worker")]
    assert worker["metadata"]["namespace"] == "temporal-bootstrap"
    pod = worker["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "temporal-bootstrap"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["image"] == "registry.example.com/platform/temporal-bootstrap:0.1.0"
    # Writable: only the volumes the image's HOME/TMP and state folder point at.
    assert {m["mountPath"] for m in container["volumeMounts"]} == {
        "/tmp",
        "/var/lib/temporal-bootstrap",
    }
    (settings,) = [o for (k, n), o in objects.items() if k == "ConfigMap"]
    assert settings["data"]["TEMPORAL_ADDRESS"] == "temporal-bootstrap-server:7233"
    assert settings["data"]["TEMPORAL_BOOTSTRAP_IN_CLUSTER_CONTEXT"] == "staging-eks"
    assert container["envFrom"][0]["configMapRef"]["name"] == settings["metadata"]["name"]

    account = objects[("ServiceAccount", "temporal-bootstrap")]
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]

    server = objects[("StatefulSet", "temporal-bootstrap-server")]
    assert server["spec"]["replicas"] == 1
    (claim,) = server["spec"]["volumeClaimTemplates"]
    mounts = server["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in mounts
    assert (
        "--db-filename=/data/temporal.sqlite"
        in (server["spec"]["template"]["spec"]["containers"][0]["args"])
    )

    role = objects[("Role", "temporal-bootstrap")]
    binding = objects[("RoleBinding", "temporal-bootstrap")]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "my-app-staging"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "temporal-bootstrap", "namespace": "temporal-bootstrap"}
    ]
    assert not any("pods/portforward" in r["resources"] for r in role["rules"]), (
        "port-forward is the component's, not the example's (it dials the Service)"
    )


def test_the_worker_serves_metrics_and_the_monitoring_overlay_scrapes_them() -> None:
    objects = build("deploy/overlays/example")
    assert not {k for k, _ in objects} & {"ServiceMonitor", "PrometheusRule"}, "optional"
    worker = objects[("Deployment", "temporal-bootstrap-worker")]
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in container["ports"]
    (settings,) = [o for (k, n), o in objects.items() if k == "ConfigMap"]
    assert settings["data"]["TEMPORAL_BOOTSTRAP_METRICS_PORT"] == "9464"
    service = objects[("Service", "temporal-bootstrap-worker-metrics")]
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"

    monitored = build("deploy/overlays/example-monitoring")
    assert monitored.keys() - objects.keys() == {
        ("ServiceMonitor", "temporal-bootstrap-worker"),
        ("PrometheusRule", "temporal-bootstrap"),
    }
    monitor = monitored[("ServiceMonitor", "temporal-bootstrap-worker")]
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    rules = monitored[("PrometheusRule", "temporal-bootstrap")]["spec"]["groups"][0]["rules"]
    exprs = {r["alert"]: r["expr"] for r in rules}
    assert "temporal_bootstrap_drift_items" in exprs["TemporalBootstrapDrift"]
    assert (
        "temporal_bootstrap_drift_check_completed_timestamp_seconds"
        in (exprs["TemporalBootstrapDriftCheckMissing"])
    )
