"""Fixtures for the contract tests against the Kubernetes API stand-in."""

from __future__ import annotations

import os
import shutil
import socketserver
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from local_stack.kube_api_standin import KubeApiStandIn
from tests import helpers

PROJECT_ROOT = Path(__file__).resolve().parents[4]
CHART = PROJECT_ROOT.parent / "shared" / "charts" / "temporal-0.52.0"
# scripts/setup.sh puts it there (from the same PyPI wheel as helm v4); never the machine's.
KUBECTL = str(PROJECT_ROOT / ".tools" / "kubectl" / "kubectl")
NS = "default"


def copy_chart_without_dependencies(src: Path, dest: Path) -> Path:
    """helm refuses a chart whose declared (optional, disabled) subcharts are missing."""
    shutil.copytree(src, dest)
    chart_yaml = dest / "Chart.yaml"
    meta = yaml.safe_load(chart_yaml.read_text())
    meta.pop("dependencies", None)
    chart_yaml.write_text(yaml.safe_dump(meta, sort_keys=False))
    (dest / "Chart.lock").unlink(missing_ok=True)
    return dest


@pytest.fixture(scope="session")
def standin_server() -> Iterator[KubeApiStandIn]:
    server = KubeApiStandIn.start(port=0)
    yield server
    server.stop()


@pytest.fixture
def standin(standin_server: KubeApiStandIn) -> KubeApiStandIn:
    """The shared stand-in, emptied for each test."""
    standin_server.reset()
    return standin_server


@pytest.fixture
def kubeconfig(standin: KubeApiStandIn, tmp_path: Path) -> Path:
    return standin.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    yield api
    api.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def tool_env(tmp_path: Path, kubeconfig: Path) -> dict[str, str]:
    """A private HOME so discovery caches from other ports and runs never leak in."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig),
        "HELM_CACHE_HOME": str(home / ".cache" / "helm"),
        "HELM_CONFIG_HOME": str(home / ".config" / "helm"),
        "HELM_DATA_HOME": str(home / ".local" / "share" / "helm"),
    }


@pytest.fixture
def run(tool_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    def _run(
        *argv: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(argv, env=tool_env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(
                f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return _run


@pytest.fixture(scope="session")
def temporal_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_chart_without_dependencies(CHART, tmp_path_factory.mktemp("chart") / "temporal")


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """Poll until the predicate returns something truthy (the stand-in's controller is async)."""

    def _wait(predicate: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
        return helpers.wait_for(predicate, timeout, what, every=0.05)

    return _wait


# -- pods and what their containers serve (test_pods.py, test_rbac.py) -------------------
def deployment(name: str, replicas: int = 1, **pod_spec: Any) -> dict[str, Any]:
    container = {"name": "app", "image": f"{name}:1", "ports": [{"containerPort": 8080}]}
    container.update(pod_spec.pop("container", {}))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container], **pod_spec},
            },
        },
    }


def pods_of(core: client.CoreV1Api, app: str, namespace: str = NS) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector=f"app={app}").items


def waiting(pod: client.V1Pod) -> tuple[str, str | None]:
    state = pod.status.container_statuses[0].state.waiting
    return (state.reason, state.message)


def ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


class EchoRuntime:
    """A container runtime for the test: pods labelled app=echo serve an echo on port 8080."""

    def __init__(self) -> None:
        handler = type(
            "Echo",
            (socketserver.StreamRequestHandler,),
            {"handle": lambda self: [self.wfile.write(line) for line in self.rfile]},
        )
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.started: list[str] = []
        self.stopped: list[str] = []

    def start(self, pod: dict, files: Mapping[str, bytes]) -> None:
        if pod["metadata"]["labels"].get("app") == "echo":
            self.started.append(pod["metadata"]["name"])

    def stop(self, pod: dict) -> None:
        if pod["metadata"]["name"] in self.started:
            self.stopped.append(pod["metadata"]["name"])

    def address(self, pod: dict, port: int) -> tuple[str, int] | None:
        running = pod["metadata"]["name"] in self.started
        return self.server.server_address if running and port == 8080 else None  # type: ignore[return-value]


@pytest.fixture
def echo(standin: KubeApiStandIn) -> Iterator[EchoRuntime]:
    runtime = EchoRuntime()
    standin.add_runtime(runtime)
    yield runtime
    standin.api.controller.pods.runtimes.remove(runtime)
    runtime.server.shutdown()
