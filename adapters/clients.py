"""Client factories built once in worker.py and handed to the activity classes.

Each caches one client per region / kube context, because building them reads config files
and opens connection pools; the blocking clients are used from sync activities on threads.

Where the Kubernetes credentials come from (`KubeClients.from_environment`), in this order:
1. `KUBECONFIG`, when set: that kubeconfig, each environment's `kubernetes.context` in it;
2. in a pod (`KUBERNETES_SERVICE_HOST`/`_PORT` set and a service-account token mounted): the
   pod's ServiceAccount (`InCluster`), the API server at `https://HOST:PORT`, the token and
   CA that kubelet mounts (re-read every minute, since kubelet rotates the token);
3. otherwise the default kubeconfig (`~/.kube/config`).
helm is given the same credentials: the kubeconfig, or in a pod a kubeconfig written into the
state folder that points at the token *file* (`tokenFile`, which client-go re-reads), so no
token is ever copied, put on a command line or logged.

A worker in a pod serves the cluster it runs in, and only that one: an environment that
leaves `kubernetes.context` unset is served, one that names a context is served when
`TEMPORAL_BOOTSTRAP_IN_CLUSTER_CONTEXT` says that is this cluster's name (environment files
name clusters by the operators' kube contexts, e.g. `staging-eks`); any other context is
refused before a request is sent (`ConfigException`, an activity error that names both), so a
staging worker never applies production's declaration to the staging cluster.

Credentials that cannot be loaded (a kubeconfig that is not YAML or "Invalid kube-config", a
context it does not have, a token that cannot be read) are one non-retryable
ConfigurationMismatch on every path, raised here where every client (API clients, the
port-forward's, helm's) loads them: retrying cannot help until an operator fixes the file,
and a check that retried it for minutes said nothing meanwhile (#20.3). worker.py loads
them once at start (`contexts`) and refuses to start on credentials it cannot load.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader

from adapters.errors.kubernetes import unusable_credentials
from declared_state.paths import state_dir

DEFAULT_KUBECONFIG = "~/.kube/config"
CREDENTIAL_ERRORS: tuple[type[Exception], ...] = (ConfigException, yaml.YAMLError, OSError)
"""What loading Kubernetes credentials raises when they cannot be used: the kubernetes client's
ConfigException (no such context, `Invalid kube-config file`), a kubeconfig that is not YAML
(raised as is by the client), a file that cannot be read."""

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
SERVICE_ACCOUNT_DIR_SETTING = "TEMPORAL_BOOTSTRAP_SERVICE_ACCOUNT_DIR"
IN_CLUSTER_CONTEXT_SETTING = "TEMPORAL_BOOTSTRAP_IN_CLUSTER_CONTEXT"
IN_CLUSTER = "in-cluster"  # the context name of the kubeconfig written for helm


class AwsClients:
    """boto3 clients per (service, region). AWS_ENDPOINT_URL is honoured by boto3 itself."""

    def __init__(self, session: boto3.Session | None = None):
        self._session = session or boto3.Session()
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self._session.client(service, region_name=region)  # type: ignore[call-overload]
            return self._clients[key]


@dataclass(frozen=True)
class InCluster:
    """A pod's own credentials: the API server kubelet names in KUBERNETES_SERVICE_HOST/PORT,
    and the ServiceAccount token and CA mounted in `directory` (default
    /var/run/secrets/kubernetes.io/serviceaccount; TEMPORAL_BOOTSTRAP_SERVICE_ACCOUNT_DIR
    moves it, for a projected volume mounted elsewhere)."""

    host: str
    port: str
    directory: Path
    context: str | None = None
    """The kube context name environment files use for this cluster, if any."""

    @classmethod
    def detect(cls, environ: Mapping[str, str] = os.environ) -> InCluster | None:
        host = environ.get("KUBERNETES_SERVICE_HOST", "").strip()
        port = environ.get("KUBERNETES_SERVICE_PORT", "").strip()
        directory = Path(environ.get(SERVICE_ACCOUNT_DIR_SETTING) or SERVICE_ACCOUNT_DIR)
        if not host or not port or not (directory / "token").is_file():
            return None
        context = environ.get(IN_CLUSTER_CONTEXT_SETTING, "").strip() or None
        return cls(host, port, directory, context)

    @property
    def server(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def token_file(self) -> Path:
        return self.directory / "token"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    def check_context(self, context: str | None) -> None:
        """Refuse an environment that names another cluster than this one."""
        if context is None or context == self.context:
            return
        serves = (
            f"serves only kube context {self.context!r} ({IN_CLUSTER_CONTEXT_SETTING})"
            if self.context
            else f"serves environments without kubernetes.context (set {IN_CLUSTER_CONTEXT_SETTING} "
            "to the context name your environment files use for this cluster)"
        )
        raise ConfigException(
            f"this worker runs inside a cluster with its ServiceAccount and {serves}; the "
            f"environment declares kubernetes.context {context!r}: run a worker in that cluster "
            "(with its own task queue), or outside with a kubeconfig"
        )

    def configuration(self) -> k8s.Configuration:
        configuration = k8s.Configuration()
        environ = {"KUBERNETES_SERVICE_HOST": self.host, "KUBERNETES_SERVICE_PORT": self.port}
        InClusterConfigLoader(
            token_filename=str(self.token_file),
            cert_filename=str(self.ca_file),
            try_refresh_token=True,
            environ=environ,
        ).load_and_set(configuration)
        return configuration

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig for helm with the token file's path, never the token."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": IN_CLUSTER,
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": IN_CLUSTER, "user": {"tokenFile": str(self.token_file)}}],
            "contexts": [
                {"name": IN_CLUSTER, "context": {"cluster": IN_CLUSTER, "user": IN_CLUSTER}}
            ],
            "current-context": IN_CLUSTER,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path


class KubeClients:
    """kubernetes ApiClients per kubeconfig context (None: the current context), or the pod's
    own ServiceAccount when `in_cluster` is given (see the module docstring)."""

    def __init__(self, kubeconfig: str | None = None, in_cluster: InCluster | None = None):
        self.kubeconfig = kubeconfig
        self.in_cluster = None if kubeconfig else in_cluster
        self._clients: dict[str | None, k8s.ApiClient] = {}
        self._lock = threading.Lock()
        self._helm_kubeconfig: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> KubeClients:
        """KUBECONFIG, else the pod's ServiceAccount, else the default kubeconfig."""
        kubeconfig = environ.get("KUBECONFIG") or None
        return cls(kubeconfig, None if kubeconfig else InCluster.detect(environ))

    def api_client(self, context: str | None) -> k8s.ApiClient:
        with self._lock:
            if context not in self._clients:
                self._clients[context] = self.new_api_client(context)
            return self._clients[context]

    def new_api_client(self, context: str | None) -> k8s.ApiClient:
        """An ApiClient of the caller's own (not cached, not shared): for port-forward, which
        patches the client it uses while it opens a stream. Credentials that cannot be loaded
        raise the one non-retryable activity error (`unusable_credentials`) on every path."""
        try:
            if self.in_cluster is not None:
                self.in_cluster.check_context(context)
                return k8s.ApiClient(self.in_cluster.configuration())
            return k8s_config.new_client_from_config(config_file=self.kubeconfig, context=context)
        except CREDENTIAL_ERRORS as exc:
            raise unusable_credentials(self.source, context, exc) from None

    @property
    def source(self) -> str:
        """Where the credentials come from, for messages."""
        if self.in_cluster is not None:
            return f"the pod's ServiceAccount ({self.in_cluster.directory})"
        return f"kubeconfig {self.kubeconfig or DEFAULT_KUBECONFIG}"

    def contexts(self) -> tuple[list[str], str | None]:
        """The kube contexts these credentials serve and the current one, read now (the
        worker asks at start); raises one of CREDENTIAL_ERRORS when they cannot be loaded.
        In a pod: the context it is told it is (or none: environments without one)."""
        if self.in_cluster is not None:
            self.in_cluster.configuration()  # the token and CA can be read
            own = self.in_cluster.context
            return ([own] if own else []), own
        listed, current = k8s_config.list_kube_config_contexts(config_file=self.kubeconfig)
        names = [str(c["name"]) for c in listed or []]
        return names, (str(current["name"]) if current else None)

    def helm_kubeconfig(self) -> str | None:
        """The kubeconfig helm gets (None: helm's own default)."""
        if self.in_cluster is None:
            return self.kubeconfig
        with self._lock:
            if self._helm_kubeconfig is None:
                path = state_dir() / "kube" / "in-cluster.kubeconfig"
                self._helm_kubeconfig = str(self.in_cluster.write_kubeconfig(path))
            return self._helm_kubeconfig

    def helm_context(self, context: str | None) -> str | None:
        """The `--kube-context` for an environment's context (in a pod: the written one's).
        The credentials are loaded first, as every other client loads them: helm would
        otherwise fail on a kubeconfig it cannot load with an error retried for minutes."""
        self.api_client(context)
        if self.in_cluster is None:
            return context
        return None

    def core_v1(self, context: str | None) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api_client(context))

    def apps_v1(self, context: str | None) -> k8s.AppsV1Api:
        return k8s.AppsV1Api(self.api_client(context))
