"""Fixtures shared by the activity tests that write to the Kubernetes API stand-in."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from activities.clients import KubeClients
from declared_state.models import Environment

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def core(kube_clients: KubeClients, local_env: Environment) -> k8s.CoreV1Api:
    return kube_clients.core_v1(local_env.kubernetes.context)


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


@pytest.fixture
def kube_writes(core: k8s.CoreV1Api, kube_standin) -> KubeWriteLog:
    return KubeWriteLog(core, kube_standin)
