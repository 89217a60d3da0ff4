"""Running the stand-in: in a background thread, inside a running loop, or as a process.

It serves HTTPS, as an API server's secure port does, with a certificate for 127.0.0.1 from a
CA made when it starts (a file the kubeconfigs it writes name): client-go
(kubectl, helm) sends credentials only over TLS, so without it every request of theirs would be
anonymous."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from local_stack.tls import CertificateAuthority, key_pem

from .identity import ADMIN_TOKEN, ADMIN_USER
from .pods import ContainerRuntime
from .server import ApiServer, Fault

T = TypeVar("T")
CONTEXT = "standin"


class KubeApiStandIn:
    """A stateful Kubernetes API stand-in on 127.0.0.1 for contract tests of real clients.

    It is not a cluster: see the package docstring for what it models and what it does not
    (Jobs and the admin-tools image's schema update: jobs.py).
    """

    def __init__(self, controller: bool = True) -> None:
        self.api = ApiServer(controller=controller)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ca = CertificateAuthority.generate("kube-api-standin CA")
        cert, key = self._ca.issue_server_cert("localhost", ip_addresses=["127.0.0.1"])
        self._server_pem = cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        """The CA that signed the stand-in's serving certificate (a pod's `ca.crt`)."""
        return self._ca.cert_pem

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context that trusts the stand-in, for plain HTTP clients (urllib)."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    def _server_ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert, key = self._server_pem
        # load_cert_chain reads files only; the pair lives just long enough to be read.
        with tempfile.TemporaryDirectory() as folder:
            cert_file, key_file = Path(folder) / "tls.crt", Path(folder) / "tls.key"
            cert_file.write_bytes(cert)
            key_file.write_bytes(key)
            context.load_cert_chain(cert_file, key_file)
        return context

    # -- lifecycle -----------------------------------------------------------------------
    @classmethod
    def start(cls, port: int = 0, controller: bool = True) -> KubeApiStandIn:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        self = cls(controller=controller)
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen(port))
            except BaseException as e:  # noqa: BLE001 - handed to the starting thread
                ready.set_exception(e)
                return
            ready.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._thread = threading.Thread(target=run, name="kube-api-standin", daemon=True)
        self._thread.start()
        ready.result(timeout=30)
        return self

    @classmethod
    async def start_in_loop(cls, port: int = 0, controller: bool = True) -> KubeApiStandIn:
        """Serve from the running event loop (stop with `await stop_async()`)."""
        self = cls(controller=controller)
        self._loop = asyncio.get_running_loop()
        await self._listen(port)
        return self

    async def _listen(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # never beyond loopback
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self.api.app, access_log=None, shutdown_timeout=2)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=self._server_ssl_context()).start()

    async def _close(self) -> None:
        self.api.controller.pods.stop_all()
        for w in list(self.api.store.watches):
            w.queue.put_nowait(None)  # lets streaming watch handlers return
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stop(self) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None

    async def stop_async(self) -> None:
        await self._close()

    def __enter__(self) -> KubeApiStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- controls ------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T]) -> T:
        """Run on the server's loop, since the store and controller are not thread-safe."""
        loop = self._loop
        if loop is None or self._thread is None or threading.current_thread() is self._thread:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=30)

    def never_ready(self, name: str, namespace: str | None = None) -> None:
        """Keep a workload (e.g. a Deployment, any namespace when None) from becoming ready."""
        self._call(lambda: self.api.set_never_ready(name, namespace, never=True))

    def allow_ready(self, name: str, namespace: str | None = None) -> None:
        self._call(lambda: self.api.set_never_ready(name, namespace, never=False))

    def never_serving(self, name: str, namespace: str | None = None) -> None:
        """Let a workload's pods become Ready (as the chart's probe-less pods do once their
        containers start) but never start their processes: a frontend that runs and never
        serves. Any namespace when None."""
        self._call(lambda: self.api.set_never_serving(name, namespace, never=True))

    def allow_serving(self, name: str, namespace: str | None = None) -> None:
        self._call(lambda: self.api.set_never_serving(name, namespace, never=False))

    def use_registry(self, has: Callable[[str], bool] | None) -> None:
        """kubelet pulls images from a registry where `has(image)` says which exist (the local
        stack's registry stand-in); None: every image is there (images.py)."""

        def link() -> None:
            self.api.controller.pods.images.registry = has

        self._call(link)

    def add_runtime(self, runtime: ContainerRuntime) -> None:
        """Run the processes of Ready pods with `runtime` (see pods.py)."""
        self._call(lambda: self.api.controller.pods.runtimes.append(runtime))

    def inject_faults(
        self,
        path_regex: str,
        status: int = 500,
        count: int = 1,
        retry_after: int | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next `count` requests whose path matches with `status` (e.g. 500, 429)."""
        fault = Fault(path_regex, status, count, retry_after, method)
        self._call(lambda: self.api.add_fault(fault))

    def clear_faults(self) -> None:
        self._call(self.api.faults.clear)

    def set_controller(self, enabled: bool) -> None:
        def apply() -> None:
            self.api.controller.enabled = enabled
            self.api.controller.reconcile_all()

        self._call(apply)

    def reset(self) -> None:
        """Back to a fresh cluster: objects, faults, never-ready marks and the request log."""
        self._call(self.api.reset)

    def schema_jobs(self, mode: str, message: str | None = None) -> None:
        """The admin-tools Job switch (jobs.py): `run`, `fail` (the next update-schema
        container exits 1 with `message` in its log) or `hang`."""
        self._call(lambda: self.api.jobs.set_mode(mode, message))

    def stored(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        """Copies of the stored objects of a kind in a namespace, as the API would list them
        (for tests that poll a state without a client process per poll)."""

        def read() -> list[dict[str, Any]]:
            found = self.api.store.of_kind(api_version, kind)
            return [
                copy.deepcopy(obj)
                for obj in found
                if obj.get("metadata", {}).get("namespace") == namespace
            ]

        return self._call(read)

    @property
    def writes(self) -> list[dict[str, Any]]:
        """Every write, oldest first: API writes (method, path, status; kind, name and images
        of written Deployments and Jobs) and the job controller's database writes (method
        `SQL`, `schema`: database, from, to)."""
        return self._call(lambda: list(self.api.writes))

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Recent requests, oldest first: method, path, content_type, status, the caller's
        `user`, the request attributes (verb, resource, subresource, group, namespace, name;
        resource '' for non-resource requests, see identity.py) and `authorized`, the verbs
        RBAC was asked about (`get` and `create` for a port-forward WebSocket, rbac.py)."""
        return self._call(lambda: list(self.api.requests))

    def issue_token(self, user: str) -> str:
        """A bearer token the stand-in authenticates as `user` (e.g.
        `system:serviceaccount:NS:NAME`, with that ServiceAccount's groups); its requests are
        logged under that name and authorized by RBAC (rbac.py). A ServiceAccount's own
        token, bound to the object, comes from the TokenRequest API (`kubectl create token`)."""
        return self._call(lambda: self.api.tokens.issue(user))

    def authorize(self, user: str, verb: str, **attributes: str) -> bool:
        """Would RBAC allow `user` (with the groups its name implies) this request? Attributes
        as in the request log: resource, subresource, group, namespace, name, or path."""
        from .identity import RequestInfo, user_of

        path = attributes.pop("path", "")
        info = RequestInfo(verb=verb, **attributes)
        return self._call(lambda: self.api.authorizer.authorize(user_of(user), info, path).allowed)

    def write_kubeconfig(
        self,
        path: str | Path,
        namespace: str | None = None,
        user: str = ADMIN_USER,
        token: str | None = None,
    ) -> Path:
        """A kubeconfig the real clients use unchanged: context `standin`, a bearer token
        that the stand-in authenticates as `user` (the admin by default), or `token` as it is
        (e.g. a ServiceAccount's from `kubectl create token`). The CA is a file beside it
        (`<name>.ca.crt`) rather than `certificate-authority-data`, which the Python client
        would copy into a temporary file that a killed process leaves behind."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ca_file = path.parent / f"{path.name}.ca.crt"
        ca_file.write_bytes(self.ca_pem)
        context: dict[str, Any] = {"cluster": CONTEXT, "user": CONTEXT}
        if namespace:
            context["namespace"] = namespace
        if token is None:
            token = ADMIN_TOKEN if user == ADMIN_USER else self.issue_token(user)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CONTEXT,
                    "cluster": {
                        "server": self.url,
                        "certificate-authority": str(ca_file),
                    },
                }
            ],
            "users": [{"name": CONTEXT, "user": {"token": token}}],
            "contexts": [{"name": CONTEXT, "context": context}],
            "current-context": CONTEXT,
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)  # clients warn about group/world-readable kubeconfigs
        return path
