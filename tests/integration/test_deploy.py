"""deploy/ as an operator applies it: the example overlay builds with the real kubectl's
kustomize, and what it builds keeps the promises deploy/README.md makes (a non-root worker
with a read-only root file system and resources, the IRSA slot, the embedded server's SQLite
file on a PersistentVolumeClaim, no cluster-wide permission). What the Role grants is proved
by tests/e2e/test_in_cluster_rbac.py."""

from __future__ import annotations

import os
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


def pod_labels(workload: dict) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


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
    # By digest (#23.7): a re-pushed tag cannot change what runs.
    repository, _, digest = container["image"].partition("@")
    assert repository == "registry.example.com/platform/temporal-bootstrap"
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    # The probes ask the worker's health endpoint on the port its settings name.
    (port,) = [p for p in container["ports"] if p["name"] == "health"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    # Writable: only the volumes the image's HOME/TMP and state folder point at.
    assert {m["mountPath"] for m in container["volumeMounts"]} == {
        "/tmp",
        "/var/lib/temporal-bootstrap",
    }
    (settings,) = [o for (k, n), o in objects.items() if k == "ConfigMap"]
    assert settings["data"]["TEMPORAL_ADDRESS"] == "temporal-bootstrap-server:7233"
    assert settings["data"]["TEMPORAL_BOOTSTRAP_IN_CLUSTER_CONTEXT"] == "staging-eks"
    assert container["envFrom"][0]["configMapRef"]["name"] == settings["metadata"]["name"]
    assert settings["data"]["TEMPORAL_BOOTSTRAP_HEALTH_PORT"] == str(port["containerPort"])

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

    # #23.7/#23.8: the worker takes no traffic but Prometheus's on the metrics port; the
    # bootstrap server only from the worker and the operators' namespace, on its gRPC (and
    # UI) ports.
    worker_policy = objects[("NetworkPolicy", "temporal-bootstrap-worker")]
    assert worker_policy["spec"]["podSelector"]["matchLabels"] == pod_labels(worker)
    metrics = next(p for p in container["ports"] if p["name"] == "metrics")
    assert worker_policy["spec"]["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ],
            "ports": [{"protocol": "TCP", "port": metrics["containerPort"]}],
        }
    ]
    assert set(worker_policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    egress_ports = {p["port"] for rule in worker_policy["spec"]["egress"] for p in rule["ports"]}
    assert {53, 443, 3306, 7233} <= egress_ports
    server_policy = objects[("NetworkPolicy", "temporal-bootstrap-server")]
    assert server_policy["spec"]["podSelector"]["matchLabels"] == pod_labels(server)
    sources = [
        (rule["from"][0], {p["port"] for p in rule["ports"]})
        for rule in server_policy["spec"]["ingress"]
    ]
    assert sources == [
        ({"podSelector": {"matchLabels": pod_labels(worker)}}, {7233}),
        (
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "temporal-operators"}
                }
            },
            {7233, 8233},
        ),
    ]

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


def test_the_trusted_environments_component_mounts_the_reviewed_files(tmp_path: Path) -> None:
    """#23.8: an overlay that adds components/trusted-environments and generates the
    ConfigMap from its environment files gives the worker that folder and the setting."""
    (tmp_path / "environments").mkdir()
    for name in ("base.yaml", "staging.yaml"):
        source = PROJECT_ROOT / "environments" / name
        (tmp_path / "environments" / name).write_text(source.read_text())
    deploy = Path(os.path.relpath(PROJECT_ROOT / "deploy", tmp_path))
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [str(deploy / "overlays" / "example")],
                "components": [str(deploy / "components" / "trusted-environments")],
                "configMapGenerator": [
                    {
                        "name": "temporal-bootstrap-trusted-environments",
                        "namespace": "temporal-bootstrap",
                        "files": ["environments/base.yaml", "environments/staging.yaml"],
                    }
                ],
            }
        )
    )
    objects = build(str(tmp_path))
    worker = objects[("Deployment", "temporal-bootstrap-worker")]
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "trusted-environments"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == "trusted-environments"]
    files = objects[("ConfigMap", volume["configMap"]["name"])]
    assert set(files["data"]) == {"base.yaml", "staging.yaml"}
    settings_name = container["envFrom"][0]["configMapRef"]["name"]
    settings = objects[("ConfigMap", settings_name)]
    assert settings["data"]["TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS"] == mount["mountPath"]
