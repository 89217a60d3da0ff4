"""Reach a Service's port through the Kubernetes API server, as `kubectl port-forward svc/...`.

`ServicePortForward(kube, context, namespace, service, port)` resolves the Service to a ready
pod behind it on the client side, as kubectl does (the Service's selector, the pod that is
Ready, the Service port's `targetPort`, by name through the pod's container ports), then
listens on 127.0.0.1 on a free port. Each connection accepted there gets its own port-forward
stream to that pod through the API server (`pods/{name}/portforward`, the kubernetes
client's `kubernetes.stream.portforward`, WebSocket subprotocol v4.channel.k8s.io), and bytes
are copied both ways until either side closes. `address` is what a client (the Temporal
client) dials. `close()` stops listening and ends every bridged connection; use it as an
async context manager so a cancelled activity ends its forward too.

Why not kr8s's asyncio `PortForward`: it is the same idea (a local listener, a WebSocket per
connection, a ready pod picked behind a Service), but it brings its own API client and
kubeconfig handling (httpx, httpx-ws, anyio) beside the `kubernetes` client every other
activity uses; two authentication stacks would read the same kubeconfig differently (exec
plugins, contexts, token refresh). The kubernetes client's `portforward` is synchronous, so
opening a stream runs on a thread, and the data is copied on the event loop through the
socket pair the client hands out.

Failure modes, each a `PortForwardFailed` whose message names the Service and port:
the Service is missing (the chart is not installed), has no selector or no such port; no pod
behind it is Ready (with kubelet's reasons per pod, pod_status.py); the API server refuses
the stream (RBAC: `create` on `pods/portforward`) or is unreachable. A pod that accepts the
stream but has nothing listening on the port reports it on the error channel; the bridged
connection then closes and `last_error` keeps the message, for the caller's error.

`portforward()` swaps the ApiClient's `call_api` while it opens a stream, so the forward uses
an ApiClient of its own (never the shared one other activities use on other threads) and opens
its streams one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

from adapters.clients import KubeClients
from adapters.pod_status import is_ready, unready_pods

LOOPBACK = "127.0.0.1"
_READ = 64 * 1024


class PortForwardFailed(Exception):
    """The Service's port cannot be reached through the API server (message says why)."""


def _api_reason(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}".strip() if exc.status else str(exc.reason)
    return f"{type(exc).__name__}: {exc}"


class ServicePortForward:
    def __init__(
        self, kube: KubeClients, context: str | None, namespace: str, service: str, port: int
    ):
        self._kube, self._context = kube, context
        self.namespace, self.service, self.port = namespace, service, port
        self.what = f"Service {namespace}/{service} port {port}"
        self.pod: str | None = None
        self.pod_port: int | None = None
        self.last_error: str | None = None
        self._api: k8s.ApiClient | None = None
        self._open_lock = threading.Lock()
        self._server: asyncio.Server | None = None
        self._bridges: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        assert self._server is not None, "not open"
        return f"{LOOPBACK}:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> ServicePortForward:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        self._api = await asyncio.to_thread(self._kube.new_api_client, self._context)
        try:
            self.pod, self.pod_port = await asyncio.to_thread(self._resolve)
            self._server = await asyncio.start_server(self._bridge, LOOPBACK, 0)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._bridges):
            task.cancel()
        await asyncio.gather(*self._bridges, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        if self._api is not None:
            api, self._api = self._api, None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(api.close)

    # -- the Service -> a ready pod and its port, as kubectl does ----------------------------
    def _resolve(self) -> tuple[str, int]:
        core = k8s.CoreV1Api(self._api)
        try:
            svc: Any = core.read_namespaced_service(self.service, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise PortForwardFailed(
                    f"{self.what}: the Service does not exist (is the chart installed in "
                    f"namespace {self.namespace}?)"
                ) from None
            raise PortForwardFailed(
                f"{self.what}: reading the Service failed: {_api_reason(exc)}"
            ) from None
        except Exception as exc:  # urllib3: the API server is unreachable
            raise PortForwardFailed(
                f"{self.what}: the Kubernetes API is unreachable: {_api_reason(exc)}"
            ) from None
        selector = (svc.spec.selector if svc.spec else None) or {}
        if not selector:
            raise PortForwardFailed(f"{self.what}: the Service has no pod selector to forward to")
        spec_port = next((p for p in svc.spec.ports or [] if p.port == self.port), None)
        if spec_port is None:
            ports = ", ".join(str(p.port) for p in svc.spec.ports or []) or "none"
            raise PortForwardFailed(f"{self.what}: the Service has no such port (it has {ports})")
        labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        try:
            pods: list[Any] = core.list_namespaced_pod(self.namespace, label_selector=labels).items
            ready = sorted((p for p in pods if is_ready(p)), key=lambda p: p.metadata.name)
            if not ready:
                why = "; ".join(unready_pods(core, self.namespace, labels)) or "no pods"
                raise PortForwardFailed(f"{self.what}: no ready pod matches {labels} ({why})")
        except ApiException as exc:
            raise PortForwardFailed(
                f"{self.what}: listing its pods failed: {_api_reason(exc)}"
            ) from None
        pod = ready[0]
        return str(pod.metadata.name), _target_port(pod, spec_port)

    # -- one bridged connection -------------------------------------------------------------
    def _open_stream(self) -> Any:
        core = k8s.CoreV1Api(self._api)
        with self._open_lock:
            return portforward(
                core.connect_get_namespaced_pod_portforward,
                self.pod,
                self.namespace,
                ports=str(self.pod_port),
            )

    async def _bridge(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._bridges.add(task)
        try:
            await self._bridge_once(reader, writer)
        except asyncio.CancelledError:
            # close() cancels the bridges it owns. This task is the connection handler of
            # asyncio.start_server, whose done-callback logs a cancelled handler at ERROR with
            # a traceback (streams.py, Python 3.11): ending it quietly here is the normal end
            # of a forward, and nothing awaits this task's cancellation but close().
            pass
        finally:
            self._bridges.discard(task)

    async def _bridge_once(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        stream = None
        try:
            try:
                stream = await asyncio.to_thread(self._open_stream)
            except Exception as exc:
                self.last_error = (
                    f"{self.what}: port-forward to pod {self.pod} port {self.pod_port} was "
                    f"refused: {_api_reason(exc)}"
                )
                return
            sock = stream.socket(self.pod_port)._socket
            sock.setblocking(False)
            pod_reader, pod_writer = await asyncio.open_connection(sock=sock)
            try:
                await _copy_both_ways(reader, writer, pod_reader, pod_writer)
            finally:
                pod_writer.close()
            error = stream.error(self.pod_port)
            if error:
                self.last_error = f"{self.what} (pod {self.pod}): {error.strip()}"
        finally:
            writer.close()
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()


async def _copy_both_ways(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(_READ):
                dst.write(data)
                await dst.drain()

    tasks = [
        asyncio.create_task(copy(a_reader, b_writer)),
        asyncio.create_task(copy(b_reader, a_writer)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _target_port(pod: Any, spec_port: Any) -> int:
    """The container port a Service port sends to: its targetPort, by number or by name."""
    target = spec_port.target_port
    if target is None:
        return int(spec_port.port)
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in pod.spec.containers or []:
        for p in container.ports or []:
            if p.name == target:
                return int(p.container_port)
    raise PortForwardFailed(
        f"pod {pod.metadata.name} has no container port named {target!r} (the Service's "
        f"targetPort for port {spec_port.port})"
    )
