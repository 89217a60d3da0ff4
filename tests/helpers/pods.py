"""What kubelet gives a pod's containers, played for a process on this machine: the
ServiceAccount token (from the TokenRequest API, as kubelet asks for it), the cluster's CA
and the namespace in a folder, and the KUBERNETES_SERVICE_HOST/PORT variables. A worker
started with `in_cluster_env(...)` reaches the Kubernetes API stand-in exactly as it would
reach its own cluster from a pod (adapters/clients.py `InCluster`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kubernetes import client as k8s


def project_service_account(
    core: k8s.CoreV1Api, standin: Any, namespace: str, name: str, folder: Path
) -> Path:
    """Write token, ca.crt and namespace for ServiceAccount namespace/name into `folder`
    (the pod's /var/run/secrets/kubernetes.io/serviceaccount); returns `folder`."""
    request = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    issued = core.create_namespaced_service_account_token(name, namespace, request)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "token").write_text(issued.status.token)
    (folder / "ca.crt").write_bytes(standin.ca_pem)
    (folder / "namespace").write_text(namespace)
    return folder


def in_cluster_env(standin: Any, folder: Path, context: str | None = None) -> dict[str, str]:
    """The variables a pod sees (and the setting that points at `folder`)."""
    url = urlparse(standin.url)
    env = {
        "KUBERNETES_SERVICE_HOST": str(url.hostname),
        "KUBERNETES_SERVICE_PORT": str(url.port),
        "TEMPORAL_BOOTSTRAP_SERVICE_ACCOUNT_DIR": str(folder),
    }
    if context:
        env["TEMPORAL_BOOTSTRAP_IN_CLUSTER_CONTEXT"] = context
    return env
