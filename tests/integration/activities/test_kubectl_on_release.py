"""A user's own tools on a release installed into the stand-in (what `make demo` prints at its
end): `kubectl get pods` shows READY and STATUS as a cluster would, and `kubectl port-forward
svc/temporal-frontend` carries the temporal CLI to the Temporal server the frontend pod runs,
over SPDY in a WebSocket and over the plain SPDY fallback."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from declared_state.models import Environment
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[3]
KUBECTL = str(ROOT / ".tools" / "kubectl" / "kubectl")
TEMPORAL = str(Path(sys.executable).parent / "temporal")


def _rows(out: str) -> list[dict[str, str]]:
    header, *lines = out.strip().splitlines()
    names = re.split(r"\s{2,}", header.strip())
    return [dict(zip(names, re.split(r"\s{2,}", line.strip()), strict=True)) for line in lines]


@pytest.fixture
def kubectl(kube_standin, installed_env: Environment, tmp_path: Path):
    def run(*args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            [KUBECTL, "--kubeconfig", str(kube_standin.kubeconfig_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **(env or {})},
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return run


def _status(kubectl, ns: str, component: str) -> list[tuple[str, str]]:
    rows = _rows(kubectl("get", "pods", "-n", ns, "-l", f"app.kubernetes.io/component={component}"))
    return [(r["READY"], r["STATUS"]) for r in rows]


def test_kubectl_get_pods_shows_ready_and_status(kubectl, installed_env: Environment, core):
    ns = installed_env.kubernetes.namespace
    rows = _rows(kubectl("get", "pods", "-n", ns))
    components = {"frontend", "history", "matching", "worker"}
    assert {r["NAME"].split("-")[1] for r in rows} >= components, rows
    for component in components:
        assert _status(kubectl, ns, component) == [("1/1", "Running")]

    # The database Secret goes away; the replacement of a deleted pod cannot start.
    core.delete_namespaced_secret(installed_env.database.kubernetes_secret.name, ns)
    (history,) = [r["NAME"] for r in rows if r["NAME"].startswith("temporal-history-")]
    kubectl("delete", "pod", history, "-n", ns, "--wait=false")
    wait_for(
        lambda: _status(kubectl, ns, "history") == [("0/1", "CreateContainerConfigError")],
        30,
        "the new history pod to show CreateContainerConfigError",
    )
    deployments = {r["NAME"]: r for r in _rows(kubectl("get", "deployments", "-n", ns))}
    assert (
        deployments["temporal-history"]["READY"],
        deployments["temporal-history"]["AVAILABLE"],
    ) == ("0/1", "0")


@pytest.mark.parametrize("websockets", ["true", "false"], ids=["spdy-in-websocket", "spdy"])
def test_port_forward_to_the_frontend_service_serves_the_temporal_cli(
    kube_standin, installed_env: Environment, frontend_pods, tmp_path: Path, websockets: str
):
    ns = installed_env.kubernetes.namespace
    # A namespace registered straight on the server the pod runs: what the CLI must see.
    direct = frontend_pods.address_of(ns)
    marker = f"seen-through-kubectl-{uuid.uuid4().hex[:6]}"
    created = subprocess.run(
        [TEMPORAL, "operator", "namespace", "create", "--address", direct, "-n", marker],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    forward = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(kube_standin.kubeconfig_path),
            "port-forward",
            "svc/temporal-frontend",
            ":7233",
            "-n",
            ns,
        ],
        env={
            "HOME": str(tmp_path),
            "PATH": "/usr/bin:/bin",
            "KUBECTL_PORT_FORWARD_WEBSOCKETS": websockets,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 7233", line)
        assert found, line
        listed = subprocess.run(
            [
                TEMPORAL,
                "operator",
                "namespace",
                "list",
                "--address",
                f"127.0.0.1:{found[1]}",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        forward.terminate()
        _, stderr = forward.communicate(timeout=10)
    assert listed.returncode == 0, listed.stderr + stderr
    assert marker in listed.stdout and '"name": "default"' in listed.stdout.replace(
        '":"', '": "'
    ), listed.stdout
    # The stand-in logs the upgrade once the session has ended.
    wanted = ["GET"] if websockets == "true" else ["POST"]
    wait_for(
        lambda: (
            [
                r["method"]
                for r in kube_standin.requests
                if r["path"].startswith(f"/api/v1/namespaces/{ns}/pods/temporal-frontend-")
                and "/portforward" in r["path"]
            ]
            == wanted
        ),
        10,
        f"one {wanted[0]} port-forward upgrade in the request log",
    )
