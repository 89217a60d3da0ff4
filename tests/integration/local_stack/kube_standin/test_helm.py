"""Contract tests against the stand-in with the real helm v3.17.2 and v4.1.4 binaries and the
official Temporal chart 0.52.0, with staging-like values."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from local_stack.kube_api_standin import KubeApiStandIn

NS, RELEASE = "temporal", "temporal"
SQL = {
    "driver": "mysql8",
    "host": "mysql.staging.internal",
    "port": 3306,
    "user": "temporal_app",
    "existingSecret": "temporal-db-secret",
}
VALUES = {
    "server": {
        "replicaCount": 1,
        "config": {
            "persistence": {
                "default": {
                    "driver": "sql",
                    "sql": {**SQL, "database": "temporal", "secretKey": "password"},
                },
                "visibility": {
                    "driver": "sql",
                    "sql": {
                        **SQL,
                        "database": "temporal_visibility",
                        "secretKey": "visibility-password",
                    },
                },
            }
        },
    },
    "schema": {
        "createDatabase": {"enabled": False},
        "setup": {"enabled": False},
        "update": {"enabled": False},
    },
    **{
        name: {"enabled": False}
        for name in ("cassandra", "mysql", "postgresql", "prometheus", "grafana", "elasticsearch")
    },
    "web": {"ingress": {"enabled": True, "hosts": ["temporal.staging.example.com"]}},
}
SERVICES = ("frontend", "history", "matching", "worker")
# Flags that make a failed --wait undo the release, renamed in helm 4.
ROLLBACK_FLAG = {"v3": "--atomic", "v4": "--rollback-on-failure"}


@pytest.fixture(params=["v3", "v4"])
def helm(request: pytest.FixtureRequest, helm_binaries: dict[str, str]) -> tuple[str, str]:
    return request.param, helm_binaries[request.param]


@pytest.fixture
def values_file(tmp_path: Path) -> Path:
    path = tmp_path / "values.staging.yaml"
    path.write_text(yaml.safe_dump(VALUES))
    return path


def _release_secrets(core: client.CoreV1Api, **labels: str) -> list[client.V1Secret]:
    selector = ",".join(f"{k}={v}" for k, v in {"owner": "helm", "name": RELEASE, **labels}.items())
    return core.list_namespaced_secret(NS, label_selector=selector).items


def _db_secret(core: client.CoreV1Api) -> None:
    """What the server pods reference (env secretKeyRef) must exist before the chart, or
    they never start, as on a cluster."""
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    core.create_namespaced_secret(
        NS,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="temporal-db-secret"),
            string_data={"password": "p1", "visibility-password": "p2"},
        ),
    )


def _frontend(apps: client.AppsV1Api) -> client.V1Deployment:
    return apps.read_namespaced_deployment(f"{RELEASE}-frontend", NS)


def test_release_lifecycle(
    helm, run, values_file: Path, temporal_chart: Path, standin: KubeApiStandIn, core, apps
) -> None:
    _, binary = helm
    _db_secret(core)
    install = (
        binary,
        "upgrade",
        "--install",
        RELEASE,
        str(temporal_chart),
        "-n",
        NS,
        "-f",
        str(values_file),
    )
    run(*install, "--create-namespace", "--wait", "--timeout", "60s")

    deployments = {d.metadata.name: d for d in apps.list_namespaced_deployment(NS).items}
    assert set(deployments) == {f"{RELEASE}-{s}" for s in (*SERVICES, "web", "admintools")}
    assert all(d.status.available_replicas == d.spec.replicas for d in deployments.values())
    assert client.NetworkingV1Api(core.api_client).read_namespaced_ingress(f"{RELEASE}-web", NS)

    # Release storage: Secrets written as protobuf, found by label selectors, payload readable.
    (secret,) = _release_secrets(core, status="deployed")
    assert secret.metadata.name == f"sh.helm.release.v1.{RELEASE}.v1"
    payload = json.loads(
        gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"])))
    )
    assert payload["info"]["status"] == "deployed" and payload["config"] == VALUES
    assert any(
        r["method"] == "POST"
        and r["path"].startswith(f"/api/v1/namespaces/{NS}/secrets")
        and "protobuf" in r["content_type"]
        for r in standin.requests
    )

    manifest = run(binary, "get", "manifest", RELEASE, "-n", NS).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(manifest) if d}
    assert kinds == {"ConfigMap", "Deployment", "Service", "Ingress"}
    assert (
        json.loads(run(binary, "get", "values", RELEASE, "-n", NS, "-o", "json").stdout) == VALUES
    )
    status = json.loads(run(binary, "status", RELEASE, "-n", NS, "-o", "json").stdout)
    assert (status["version"], status["info"]["status"]) == (1, "deployed")

    run(*install, "--set", "server.replicaCount=2", "--wait", "--timeout", "60s")
    assert _frontend(apps).spec.replicas == 2
    assert _frontend(apps).status.available_replicas == 2
    history = json.loads(run(binary, "history", RELEASE, "-n", NS, "-o", "json").stdout)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"), (2, "deployed")]

    run(binary, "rollback", RELEASE, "1", "-n", NS, "--wait", "--timeout", "60s")
    assert _frontend(apps).spec.replicas == 1
    history = json.loads(run(binary, "history", RELEASE, "-n", NS, "-o", "json").stdout)
    assert [(h["revision"], h["status"]) for h in history][-1] == (3, "deployed")
    assert "Rollback to 1" in history[-1]["description"]

    run(binary, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "60s")
    assert not apps.list_namespaced_deployment(NS).items
    assert not core.list_namespaced_service(NS).items
    assert not _release_secrets(core)


def test_install_that_never_becomes_ready_times_out_and_rolls_back(
    helm, run, values_file: Path, temporal_chart: Path, standin: KubeApiStandIn, core, apps
) -> None:
    version, binary = helm
    _db_secret(core)
    standin.never_ready(f"{RELEASE}-frontend", namespace=NS)
    proc = run(
        binary,
        "upgrade",
        "--install",
        RELEASE,
        str(temporal_chart),
        "-n",
        NS,
        "-f",
        str(values_file),
        "--create-namespace",
        "--wait",
        "--timeout",
        "15s",
        ROLLBACK_FLAG[version],
        check=False,
    )
    assert proc.returncode != 0
    assert (
        "timed out" in proc.stderr.lower() or "context deadline exceeded" in proc.stderr.lower()
    ), proc.stderr
    # A failed first install is rolled back by uninstalling it.
    assert not apps.list_namespaced_deployment(NS).items
    assert not _release_secrets(core)
    listed = run(binary, "list", "-n", NS, "-o", "json").stdout
    assert json.loads(listed) == []
