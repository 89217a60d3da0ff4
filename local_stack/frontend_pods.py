"""The Temporal frontend pods of the local stack: a Temporal dev server runs as each one.

A container runtime for the Kubernetes API stand-in (kube_api_standin/pods.py): when a pod of
the chart's frontend (labels `app.kubernetes.io/name: temporal`,
`app.kubernetes.io/component: frontend`) becomes Ready, a headless, in-memory Temporal dev
server starts for it, and its gRPC port is what the pod's `rpc` container port (7233) serves,
so a port-forward to the pod (or to the `<release>-frontend` Service) reaches that server.
When the pod goes away (the release is uninstalled, the Deployment deleted or scaled to 0,
the pod deleted) the server is stopped; a pod that is never Ready (`never_ready`, a missing
Secret or ConfigMap) or never serving (`never_serving`) runs none. Each release thus has a
frontend of its own that exists only because helm installed it: the bootstrap's health wait
and namespace registration depend on the install, as on a cluster.

The server starts on a thread (about a second) while the pod already counts as Ready, as the
chart's pods have no readiness probe: until it listens, a port-forward reports "connection
refused" on the error channel, as a real frontend that is still starting would.

Simplifications: the dev server is one process standing in for all of Temporal's services
(history, matching and worker pods run nothing), keeps its data in memory (a pod replaced is a
fresh frontend), and does not use the release's database settings. The servers are children
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
    """Container runtime: a Temporal dev server per Ready frontend pod."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self._lock = threading.Lock()
        self._servers: dict[str, TemporalDevServer] = {}  # pod uid -> its server (started)
        self._wanted: set[str] = set()

    # -- the ContainerRuntime protocol (called on the stand-in's loop: never blocks) --------
    def start(self, pod: dict[str, Any]) -> None:
        if not is_frontend(pod):
            return
        uid = pod["metadata"]["uid"]
        with self._lock:
            self._wanted.add(uid)
        threading.Thread(
            target=self._run, args=(uid, pod), name=f"frontend-pod-{pod['metadata']['name']}"
        ).start()

    def stop(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        with self._lock:
            self._wanted.discard(uid)
            server = self._servers.pop(uid, None)
        if server is not None:
            threading.Thread(target=server.stop, name="frontend-pod-stop").start()

    def address(self, pod: dict[str, Any], port: int) -> tuple[str, int] | None:
        with self._lock:
            server = self._servers.get(pod["metadata"]["uid"])
        if server is None or port != rpc_port(pod) or not server.alive():
            return None
        return ("127.0.0.1", server.port)

    # -- for tests and the stack ------------------------------------------------------------
    def servers(self) -> dict[str, TemporalDevServer]:
        with self._lock:
            return dict(self._servers)

    def address_of(self, namespace: str, pod_prefix: str = "") -> str | None:
        """The gRPC address of the running frontend server of `namespace` (for assertions)."""
        with self._lock:
            found = [
                s
                for s in self._servers.values()
                if s.name.startswith(f"frontend-{namespace}-{pod_prefix}")
            ]
        return found[0].address if found else None

    def stop_all(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
            self._wanted.clear()
        for server in servers:
            server.stop()

    def _run(self, uid: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        name = f"frontend-{meta.get('namespace')}-{meta['name']}"
        server = dev_server(name, headless=True, log_path=self.log_dir / f"{name}.log")
        try:
            server.start()
        except Exception as exc:  # noqa: BLE001 - a pod whose process failed; logged
            log.warning("frontend pod %s: Temporal dev server did not start: %s", name, exc)
            return
        with self._lock:
            keep = uid in self._wanted
            if keep:
                self._servers[uid] = server
        if not keep:  # the pod went away while the server started
            with contextlib.suppress(Exception):
                server.stop()
