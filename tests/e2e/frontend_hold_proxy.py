"""A stand-in for the network hop in front of the target Temporal frontend, for tests that must
stop the worker at an exact point of a step.

`FrontendHoldProxy` is a plaintext gRPC server (grpcio, sync, a thread per call) that forwards
every unary-unary call as raw bytes to the upstream frontend (local_stack/grpc_forward.py:
request and response bytes, metadata, deadline, the upstream's status and trailing metadata
on failure). It records every call: the method and, for RegisterNamespace and DescribeNamespace, the
namespace.

`hold(method, namespace=...)` makes matching calls block before they are forwarded, until
`release()`. `wait_held()` returns the first held call once it has arrived. A held call whose
client went away meanwhile (the worker was killed with SIGKILL, so the HTTP/2 connection
closed and grpc cancelled the call) is dropped on release, never forwarded: a real frontend
never sees a request its client abandoned before sending it. `HeldCall.wait_client_gone()`
lets a test wait until the proxy has noticed, so releasing cannot race the cancellation.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest

from local_stack.grpc_forward import UnaryHandler, answer, forward

REGISTER_NAMESPACE = "/temporal.api.workflowservice.v1.WorkflowService/RegisterNamespace"
DESCRIBE_NAMESPACE = "/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace"
_BY_NAMESPACE = {
    REGISTER_NAMESPACE: RegisterNamespaceRequest,
    DESCRIBE_NAMESPACE: DescribeNamespaceRequest,
}


@dataclass
class Call:
    """One call that reached the proxy, and what became of it."""

    method: str
    namespace: str | None = None
    # "ok" or "error" (forwarded; the upstream's status is in `code`), "dropped" (held, and
    # its client was gone on release: never forwarded); None while in flight.
    outcome: str | None = None
    code: grpc.StatusCode | None = None
    held: bool = False


@dataclass
class HeldCall:
    call: Call
    _client_gone: threading.Event = field(default_factory=threading.Event)

    def wait_client_gone(self, timeout: float) -> bool:
        """True once the call has ended; before `release()` a held call ends only when its
        client cancels it (deadline passed, connection closed)."""
        return self._client_gone.wait(timeout)


def _namespace(method: str, request: bytes) -> str | None:
    parse = _BY_NAMESPACE.get(method)
    return None if parse is None else parse.FromString(request).namespace


class FrontendHoldProxy:
    """Stand-in for a hop in front of the Temporal frontend that can hold chosen calls."""

    def __init__(self, upstream: str, host: str = "127.0.0.1"):
        self.upstream = upstream
        self._host = host
        self._channel = grpc.insecure_channel(upstream)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        self._server.add_generic_rpc_handlers((UnaryHandler(self._handle),))
        self.address = ""
        self.calls: list[Call] = []
        self._lock = threading.Condition()
        self._holds: set[tuple[str, str | None]] = set()
        self._held: list[HeldCall] = []
        self._released = threading.Event()

    def start(self) -> FrontendHoldProxy:
        port = self._server.add_insecure_port(f"{self._host}:0")
        self._server.start()
        self.address = f"{self._host}:{port}"
        return self

    def stop(self) -> None:
        self.release()
        self._server.stop(grace=None).wait()
        self._channel.close()

    def __enter__(self) -> FrontendHoldProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def hold(self, method: str, namespace: str | None = None) -> None:
        """Block calls to `method` (only those for `namespace`, if given) until `release()`."""
        with self._lock:
            self._released.clear()
            self._holds.add((method, namespace))

    def release(self) -> None:
        """Let every held call go on (or be dropped, if its client is gone); stop holding."""
        with self._lock:
            self._holds.clear()
            self._released.set()

    def wait_held(self, timeout: float) -> HeldCall:
        """The first held call, once one has arrived."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._held, timeout):
                raise TimeoutError(f"no held call arrived within {timeout}s")
            return self._held[0]

    def wait_done(self, call: Call, timeout: float) -> Call:
        """`call` once it has an outcome."""
        with self._lock:
            if not self._lock.wait_for(lambda: call.outcome is not None, timeout):
                raise TimeoutError(f"{call} not done within {timeout}s")
            return call

    def wait_forwarded(self, method: str, namespace: str | None, timeout: float) -> Call:
        """The first call to `method` (for `namespace`) the upstream answered OK, once done."""

        def found() -> Call | None:
            return next(
                (
                    c
                    for c in self.calls
                    if c.method == method
                    and c.namespace == namespace
                    and c.code == grpc.StatusCode.OK
                ),
                None,
            )

        with self._lock:
            call = self._lock.wait_for(found, timeout)
            if call is None:
                raise TimeoutError(f"no {method} ({namespace}) answered OK within {timeout}s")
            return call

    def forwarded(self, method: str) -> list[Call]:
        """The calls to `method` that reached the upstream frontend (whatever it answered)."""
        with self._lock:
            return [c for c in self.calls if c.method == method and c.outcome != "dropped"]

    def _is_held(self, call: Call) -> bool:
        with self._lock:
            return not self._holds.isdisjoint({(call.method, None), (call.method, call.namespace)})

    def _done(self, call: Call, outcome: str, code: grpc.StatusCode | None = None) -> None:
        with self._lock:
            call.outcome, call.code = outcome, code
            self._lock.notify_all()

    def _handle(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        call = Call(method, _namespace(method, request))
        with self._lock:
            self.calls.append(call)
        if self._is_held(call):
            held = HeldCall(call)
            if not context.add_callback(held._client_gone.set):
                held._client_gone.set()  # the call had already ended
            call.held = True
            with self._lock:
                self._held.append(held)
                self._lock.notify_all()
            self._released.wait()
            if not context.is_active():
                self._done(call, "dropped")
                return b""  # goes nowhere: the call is already cancelled
        forwarded = forward(self._channel, method, request, context)
        ok = forwarded.code == grpc.StatusCode.OK
        self._done(call, "ok" if ok else "error", forwarded.code)
        return answer(context, forwarded)
