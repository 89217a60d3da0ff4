"""Fixtures shared by the integration tests that write to the Kubernetes API stand-in:
the activities, the adapters and their error tables."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from activities.install_chart import ChartInstaller
from adapters.clients import KubeClients
from declared_state.models import Environment
from local_stack.mariadb import MariaDB
from local_stack.processes import LOOPBACK, free_port
from tests.helpers import drift_messages, wait_for

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def restore_db(mariadb: MariaDB) -> Iterator[MariaDB]:
    """Both databases back at 1.14 / 1.6 (schema_update_history emptied) after the test,
    pass or fail."""
    try:
        yield mariadb
    finally:
        mariadb.reset()


@pytest.fixture
def core(kube_clients: KubeClients, local_env: Environment) -> k8s.CoreV1Api:
    return kube_clients.core_v1(local_env.kubernetes.context)


@pytest.fixture
def installed_env(
    local_env: Environment, core: k8s.CoreV1Api, helm_binaries, kube_standin, frontend_pods
) -> Environment:
    """local_env installed by install_chart (helm v4, chart 0.52.0) into a namespace of its
    own, its frontend pod serving (the local stack runs a Temporal dev server for it)."""
    from tests.integration.activities.test_install_chart import (
        create_ca_config_map,
        create_db_secret,
    )
    from tests.integration.activities.test_install_chart import run as install

    ns = f"cluster-{uuid.uuid4().hex[:8]}"
    env = local_env.model_copy(
        update={"kubernetes": local_env.kubernetes.model_copy(update={"namespace": ns})}
    )
    create_db_secret(core, env)
    create_ca_config_map(core, env)
    install(ChartInstaller(helm_binaries["v4"], str(kube_standin.kubeconfig_path)), env)
    wait_for(lambda: frontend_pods.address_of(ns), 60, "the release's frontend server")
    return env


@pytest.fixture
def unreachable_kube(kube_standin, tmp_path: Path) -> KubeClients:
    """Clients whose kubeconfig sends the stand-in's context to a port nobody listens on:
    every request fails in the real client with urllib3's MaxRetryError (connection refused)."""
    config = yaml.safe_load(Path(kube_standin.kubeconfig_path).read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"http://{LOOPBACK}:{free_port()}"
    path = tmp_path / "unreachable-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return KubeClients(kubeconfig=str(path))


class KubeWriteLog:
    """Tells which write requests the stand-in answered after a marker request.

    An unchanged resourceVersion alone proves nothing (the stand-in keeps it on an identical
    write), so "no write happened" is read from the stand-in's request log.
    """

    def __init__(self, core: k8s.CoreV1Api, standin):
        self.core, self.standin = core, standin

    def mark(self) -> str:
        """A request the stand-in logs, so the requests after it can be told apart."""
        marker = f"marker-{uuid.uuid4().hex}"
        with pytest.raises(ApiException):
            self.core.read_namespace(marker)
        return marker

    def since(self, marker: str) -> list[dict]:
        """Write requests (any path) answered after `mark` returned `marker`."""
        requests = self.standin.requests
        start = max(i for i, r in enumerate(requests) if r["path"].endswith(f"/{marker}"))
        return [r for r in requests[start + 1 :] if r["method"] in WRITES]

    def dry_run(self, run: Callable[[bool], Any]) -> Any:
        """`run(True)`'s result (a dry run of an ensure step), checked to have written nothing."""
        marker = self.mark()
        result = run(True)
        assert result.dry_run
        assert self.since(marker) == []
        return result

    def repair_then_in_sync(self, run: Callable[[bool], Any], drifted: Any) -> None:
        """`run(False)` reports the drift the dry run found and updates; a dry run after that
        finds the object in sync."""
        written = run(False)
        assert (written.dry_run, written.action, drift_messages(written)) == (
            False,
            "updated",
            drift_messages(drifted),
        )
        assert written.changed
        in_sync = self.dry_run(run)
        assert " unchanged" in in_sync.summary and "would" not in in_sync.summary
        assert in_sync == written.model_copy(
            update={
                "action": "unchanged",
                "changed": False,
                "summary": in_sync.summary,
                "drift": (),
                "dry_run": True,
            }
        )

    def namespace_missing(self, namespace: str) -> bool:
        with pytest.raises(ApiException) as missing:
            self.core.read_namespace(namespace)
        return missing.value.status == 404


@pytest.fixture
def kube_writes(core: k8s.CoreV1Api, kube_standin) -> KubeWriteLog:
    return KubeWriteLog(core, kube_standin)
