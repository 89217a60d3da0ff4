"""The Temporal frontend pods of the local stack: a Temporal dev server runs as their process.

A container runtime for the Kubernetes API stand-in (kube_api_standin/pods.py): when the first
pod of a release's frontend (labels `app.kubernetes.io/name: temporal`,
`app.kubernetes.io/component: frontend`, `app.kubernetes.io/instance: <release>`) becomes
Ready, a headless, in-memory Temporal dev server starts for that release, and it is what every
Ready frontend pod's `rpc` container port (7233) serves, so a port-forward to the pod (or to
the `<release>-frontend` Service) reaches it. The pods of one release share the server as real
frontend pods share their database: scaling up or rolling out keeps the namespaces. When the
release's last frontend pod goes away (uninstalled, Deployment deleted or scaled to 0) the
server stops; pods that are never Ready (`never_ready`, a missing Secret or ConfigMap) or never
serving (`never_serving`) run none. Each release thus has a
frontend of its own that exists only because helm installed it: the bootstrap's health wait
and namespace registration depend on the install, as on a cluster.

The server starts on a thread (about a second) while the pod already counts as Ready, as the
chart's pods have no readiness probe: until it listens, a port-forward reports "connection
refused" on the error channel, as a real frontend that is still starting would.

Simplifications: the dev server is one process standing in for all of Temporal's services
(history, matching and worker pods run nothing) and keeps its data in memory, not in the
release's database: a release uninstalled and installed again starts with no namespaces,
where a real one would find them in its database. The servers are children
of the process that runs the stand-in; `stop_all()` (and the stand-in's shutdown) stops them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

from local_stack.temporal_servers import TemporalDevServer, dev_server

log = logging.getLogger(__name__)

FRONTEND_LABELS = {"app.kubernetes.io/name": "temporal", "app.kubernetes.io/component": "frontend"}
RPC_PORT_NAME = "rpc"


def is_frontend(pod: dict[str, Any]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in FRONTEND_LABELS.items())


def rpc_port(pod: dict[str, Any]) -> int:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == RPC_PORT_NAME:
                return int(port["containerPort"])
    return 7233


class TemporalFrontendPods:
    """Container runtime: a Temporal dev server per release with a Ready frontend pod."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self._lock = threading.Lock()
        self._pods: dict[tuple[str, str], set[str]] = {}  # release -> uids of its Ready pods
        self._servers: dict[tuple[str, str], TemporalDevServer] = {}  # release -> server

    @staticmethod
    def release(pod: dict[str, Any]) -> tuple[str, str]:
        meta = pod["metadata"]
        instance = (meta.get("labels") or {}).get("app.kubernetes.io/instance", "")
        return (str(meta.get("namespace")), str(instance))

    # -- the ContainerRuntime protocol (called on the stand-in's loop: never blocks) --------
    def start(self, pod: dict[str, Any]) -> None:
        if not is_frontend(pod):
            return
        key = self.release(pod)
        with self._lock:
            pods = self._pods.setdefault(key, set())
            first = not pods
            pods.add(pod["metadata"]["uid"])
        if first:
            threading.Thread(target=self._run, args=(key,), name=f"frontend-{key}").start()

    def stop(self, pod: dict[str, Any]) -> None:
        key = self.release(pod)
        with self._lock:
            pods = self._pods.get(key)
            if pods is None:
                return
            pods.discard(pod["metadata"]["uid"])
            if pods:
                return  # another frontend pod of the release still runs
            del self._pods[key]
            server = self._servers.pop(key, None)
        if server is not None:
            threading.Thread(target=server.stop, name="frontend-stop").start()

    def address(self, pod: dict[str, Any], port: int) -> tuple[str, int] | None:
        key = self.release(pod)
        with self._lock:
            server = self._servers.get(key)
            mine = pod["metadata"]["uid"] in self._pods.get(key, ())
        if server is None or not mine or port != rpc_port(pod) or not server.alive():
            return None
        return ("127.0.0.1", server.port)

    # -- for tests and the stack ------------------------------------------------------------
    def address_of(self, namespace: str, release: str = "temporal") -> str | None:
        """The gRPC address of a release's running frontend server (for assertions)."""
        with self._lock:
            server = self._servers.get((namespace, release))
        return server.address if server is not None else None

    def stop_all(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
            self._pods.clear()
        for server in servers:
            server.stop()

    def _run(self, key: tuple[str, str]) -> None:
        name = f"frontend-{key[0]}-{key[1]}"
        server = dev_server(name, headless=True, log_path=self.log_dir / f"{name}.log")
        try:
            server.start()
        except Exception as exc:  # noqa: BLE001 - a pod whose process failed; logged
            log.warning("%s: Temporal dev server did not start: %s", name, exc)
            return
        with self._lock:
            keep = bool(self._pods.get(key))
            if keep:
                self._servers[key] = server
        if not keep:  # its pods went away while the server started
            with contextlib.suppress(Exception):
                server.stop()
