"""Temporal clients to the new cluster's frontend, one connection per activity attempt.

How the frontend is reached (`frontend.connect` of the environment):
- `port-forward`: through the Kubernetes API server to a ready pod behind the frontend Service
  (adapters/port_forward.py), a fresh forward per activity attempt, closed when the attempt
  ends (also when it is cancelled); the Temporal client dials the forward's local port. This
  is how a worker outside the cluster (a laptop, CI) reaches a frontend whose Service DNS name
  only resolves inside it.
- `direct`: dial `frontend.address` (default: the Service's in-cluster DNS name); a client is
  cached per (address, TLS settings), and a failed connection is never cached.
Unset, `TargetTemporalClients(in_cluster=...)` decides: direct inside the target cluster (the
worker reaches Kubernetes with its pod's ServiceAccount, adapters/clients.py, or
TEMPORAL_BOOTSTRAP_IN_CLUSTER=true), port-forward outside it (a kubeconfig: a laptop, CI, or
a pod in another cluster).

`FrontendConnection.client()` raises `FrontendUnreachable` (with a message naming the Service
and port, or the address) when the frontend cannot be dialled; callers decide whether that
means "keep waiting" or an error. After a failed call, `reset()` drops the client and the
forward so the next `client()` resolves the Service again (its pod may have been replaced).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio import activity
from temporalio.api.workflowservice.v1 import GetClusterInfoRequest, GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import TLSConfig

from adapters.clients import KubeClients
from adapters.errors import ErrorType, activity_error
from adapters.port_forward import PortForwardFailed, ServicePortForward
from declared_state.models import Environment, FrontendConnect, FrontendTls

_CacheKey = tuple[str, bool, str | None, str | None]
IN_CLUSTER_SETTING = "TEMPORAL_BOOTSTRAP_IN_CLUSTER"


def running_in_cluster(kube: KubeClients) -> bool:
    """TEMPORAL_BOOTSTRAP_IN_CLUSTER (true/false) if set, else: does the worker reach
    Kubernetes with its pod's ServiceAccount (no KUBECONFIG)?"""
    setting = os.environ.get(IN_CLUSTER_SETTING, "").strip().lower()
    if setting in ("1", "true", "yes"):
        return True
    if setting in ("0", "false", "no"):
        return False
    return kube.in_cluster is not None


class FrontendUnreachable(Exception):
    """The frontend could not be dialled (no ready pod, connection refused, DNS, TLS...)."""

    def __init__(self, address: str, reason: str):
        self.address = address
        self.reason = reason
        super().__init__(f"{address}: {reason}")


def tls_config(tls: FrontendTls) -> TLSConfig | bool:
    """FrontendTls -> what `Client.connect(tls=...)` takes; False when TLS is off."""
    if not tls.enabled:
        return False
    ca: bytes | None = None
    if tls.ca_file:
        path = Path(tls.ca_file)  # absolute: resolved by the loader
        try:
            ca = path.read_bytes()
        except OSError as exc:
            raise activity_error(
                f"frontend.tls.ca_file {tls.ca_file!r} cannot be read ({exc.strerror}); "
                "fix the path in the environment file",
                ErrorType.CONFIGURATION_MISMATCH,
            ) from None
    return TLSConfig(server_root_ca_cert=ca, domain=tls.server_name)


class TargetTemporalClients:
    """Connections to target clusters' frontends; built once in worker.py."""

    def __init__(
        self,
        kube: KubeClients | None = None,
        namespace: str = "default",
        in_cluster: bool | None = None,
    ):
        self.kube = kube or KubeClients()
        self.namespace = namespace
        self.in_cluster = running_in_cluster(self.kube) if in_cluster is None else in_cluster
        self._clients: dict[_CacheKey, Client] = {}
        self._lock = asyncio.Lock()

    def mode(self, env: Environment) -> FrontendConnect:
        if env.frontend.connect is not None:
            return env.frontend.connect
        if env.frontend.address or self.in_cluster:
            return FrontendConnect.DIRECT
        return FrontendConnect.PORT_FORWARD

    def target(self, env: Environment) -> str:
        """The frontend as messages name it."""
        if self.mode(env) == FrontendConnect.DIRECT:
            return env.frontend_address
        k8s = env.kubernetes
        return f"Service {k8s.namespace}/{env.frontend_service} port {env.frontend.port} (port-forward)"

    @contextlib.asynccontextmanager
    async def connect(self, env: Environment) -> AsyncIterator[FrontendConnection]:
        """The frontend for one activity attempt; its forward ends with the block."""
        connection = FrontendConnection(self, env)
        try:
            yield connection
        finally:
            await asyncio.shield(connection.reset())

    async def direct_client(self, env: Environment, address: str, timeout: float | None) -> Client:
        tls = env.frontend.tls
        key: _CacheKey = (address, tls.enabled, tls.server_name, tls.ca_file)
        async with self._lock:
            found = self._clients.get(key)
            if found is not None:
                return found
            client = await _dial(address, self.namespace, tls_config(tls), timeout)
            self._clients[key] = client
            return client


class FrontendConnection:
    """One attempt's way to the frontend: a client, over a port-forward when that is the way."""

    def __init__(self, clients: TargetTemporalClients, env: Environment):
        self._clients, self.env = clients, env
        self.mode = clients.mode(env)
        self.target = clients.target(env)
        self._forward: ServicePortForward | None = None
        self._client: Client | None = None

    async def client(self, timeout: float | None = None) -> Client:
        """A client to the frontend (the one from before while it works). Raises
        FrontendUnreachable; a frontend setting no attempt can use is a non-retryable
        ApplicationError."""
        if self.mode == FrontendConnect.DIRECT:
            return await self._clients.direct_client(self.env, self.env.frontend_address, timeout)
        if self._client is not None:
            return self._client
        env = self.env
        forward = ServicePortForward(
            self._clients.kube,
            env.kubernetes.context,
            env.kubernetes.namespace,
            env.frontend_service,
            env.frontend.port,
        )
        try:
            await asyncio.wait_for(forward.open(), timeout)
        except PortForwardFailed as exc:
            raise FrontendUnreachable(self.target, str(exc)) from None
        except TimeoutError:
            raise FrontendUnreachable(
                self.target, f"no answer from the Kubernetes API within {timeout:.1f}s"
            ) from None
        self._forward = forward
        tls = tls_config(env.frontend.tls)
        if isinstance(tls, TLSConfig) and tls.domain is None:
            # The certificate names the Service, not the forward's 127.0.0.1.
            tls = TLSConfig(
                server_root_ca_cert=tls.server_root_ca_cert,
                domain=env.frontend_address.rpartition(":")[0],
            )
        try:
            self._client = await _dial(forward.address, self._clients.namespace, tls, timeout)
        except FrontendUnreachable as exc:
            reason = forward.last_error or exc.reason
            await self.reset()
            raise FrontendUnreachable(self.target, reason) from None
        return self._client

    def last_error(self) -> str | None:
        """What the forward's pod said about the port (e.g. connection refused), if anything."""
        return self._forward.last_error if self._forward is not None else None

    async def reset(self) -> None:
        """Drop the client and end the forward; the next `client()` starts afresh."""
        self._client = None
        forward, self._forward = self._forward, None
        if forward is not None:
            await forward.close()


async def _dial(
    address: str, namespace: str, tls: TLSConfig | bool, timeout: float | None
) -> Client:
    try:
        return await asyncio.wait_for(
            Client.connect(address, namespace=namespace, tls=tls), timeout
        )
    except TimeoutError:
        raise FrontendUnreachable(address, f"no answer to connect within {timeout:.1f}s") from None
    except RuntimeError as exc:
        # The SDK reports refused connections, DNS and TLS failures as RuntimeError.
        raise FrontendUnreachable(address, str(exc)) from None
    except ValueError as exc:
        # The SDK refuses a malformed target before dialling: no attempt can succeed.
        raise activity_error(
            f"Temporal frontend address {address!r} is not a host:port the client "
            f"accepts ({exc}); fix frontend.address in the environment file",
            ErrorType.CONFIGURATION_MISMATCH,
        ) from None


def attempt_deadline(max_wait: timedelta) -> float:
    """A `time.monotonic()` deadline: `max_wait` from now, but ending a little before this
    attempt's own start-to-close / schedule-to-close deadline, so the activity can still raise
    an error naming what it waited for instead of being cut off by the timeout."""
    now_mono, now_utc = time.monotonic(), datetime.now(UTC)
    remaining = max_wait.total_seconds()
    info = activity.info()
    ends = []
    if info.start_to_close_timeout:
        ends.append((info.started_time, info.start_to_close_timeout))
    if info.schedule_to_close_timeout:
        ends.append((info.scheduled_time, info.schedule_to_close_timeout))
    for start, timeout in ends:
        margin = min(2.0, timeout.total_seconds() / 10)
        left = (start + timeout - now_utc).total_seconds() - margin
        remaining = min(remaining, left)
    return now_mono + max(remaining, 0.0)


@dataclass(frozen=True)
class ServerInfo:
    """What a running cluster says about itself."""

    version: str
    """The server version the frontend reports (GetSystemInfo)."""
    history_shards: int
    """The cluster's history shard count (GetClusterInfo): the one persisted at the first
    install, whatever the servers' config says now (the server ignores a changed value)."""


async def read_server_info(client: Client, timeout: timedelta) -> ServerInfo:
    """GetSystemInfo and GetClusterInfo of the frontend `client` is connected to; raises
    temporalio.service.RPCError."""
    system = await client.workflow_service.get_system_info(GetSystemInfoRequest(), timeout=timeout)
    cluster = await client.workflow_service.get_cluster_info(
        GetClusterInfoRequest(), timeout=timeout
    )
    return ServerInfo(system.server_version, cluster.history_shard_count)
