"""Forwarding one unary gRPC call as raw bytes, as a network hop in front of a server does.

`forward` sends the request bytes to the upstream with the call's metadata (without HTTP/2
pseudo headers) and its remaining deadline, and returns what came back: the response bytes
or the upstream's status code, details and trailing metadata (where Temporal puts its error
details). `answer` hands that to the caller unchanged. Used by the local stack's frontend
pods (frontend_pods.py) and by the e2e tests' hold proxy (tests/e2e/frontend_hold_proxy.py).
Temporal's clients make only unary calls (long polls included), so streams are not served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

# No deadline on the incoming call: grpc reports a huge time_remaining(); forward none.
_NO_DEADLINE = 24 * 3600.0


@dataclass
class Forwarded:
    """The upstream's answer to one call."""

    code: grpc.StatusCode
    response: bytes = b""
    details: str = ""
    trailing: tuple[Any, ...] = ()


def forward(
    channel: grpc.Channel, method: str, request: bytes, context: grpc.ServicerContext
) -> Forwarded:
    metadata = [(k, v) for k, v in context.invocation_metadata() if not k.startswith(":")]
    remaining = context.time_remaining()
    timeout = remaining if remaining is not None and remaining < _NO_DEADLINE else None
    upstream = channel.unary_unary(method)  # no (de)serializers: bytes pass through
    try:
        response, rpc = upstream.with_call(request, timeout=timeout, metadata=metadata)
    except grpc.RpcError as exc:
        return Forwarded(
            exc.code(),  # type: ignore[attr-defined]
            details=exc.details() or "",  # type: ignore[attr-defined]
            trailing=tuple(exc.trailing_metadata() or ()),  # type: ignore[attr-defined]
        )
    return Forwarded(grpc.StatusCode.OK, response, trailing=tuple(rpc.trailing_metadata() or ()))


def answer(context: grpc.ServicerContext, forwarded: Forwarded) -> bytes:
    """Return `forwarded` to the caller: its response, or its error status."""
    context.set_trailing_metadata(forwarded.trailing)
    if forwarded.code != grpc.StatusCode.OK:
        context.abort(forwarded.code, forwarded.details)
    return forwarded.response


class UnaryHandler(grpc.GenericRpcHandler):
    """Every method to `handle(method, request bytes, context) -> response bytes`."""

    def __init__(self, handle: Callable[[str, bytes, grpc.ServicerContext], bytes]):
        self._handle = handle

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: self._handle(method, request, context)
        )
