"""Temporal frontend RPC errors -> permanent or transient, by gRPC status.

The SDK raises `temporalio.service.RPCError` with an `RPCStatusCode`. `TEMPORAL_RPC_STATUSES`
lists every status and says whether asking again can help:

- permanent: the frontend refuses the request itself: INVALID_ARGUMENT, FAILED_PRECONDITION
  and OUT_OF_RANGE (the declaration, e.g. a global namespace on a single cluster),
  PERMISSION_DENIED and UNAUTHENTICATED (the worker's credentials), UNIMPLEMENTED (a server
  that does not offer this API). The error gets the caller's `refused` type, which must be
  a non-retryable one (register_namespaces: NamespaceRegistrationFailed), and the caller's
  remedy;
- transient: everything else (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL,
  ABORTED, ...) -> FrontendUnhealthy, retryable. NOT_FOUND and ALREADY_EXISTS are ordinary
  outcomes the callers handle before they ask (a namespace to register, a race lost); when
  one reaches the table anyway (a namespace deleted mid-update) the next attempt sees the
  new state.

Dialling is not an RPC: `Client.connect` fails with RuntimeError (refused, DNS, TLS
handshake), which temporal_target turns into `FrontendUnreachable`, always retryable.
wait_frontend_healthy does not ask this table about its health checks: it waits for a
frontend that is still starting, where every answer short of SERVING means "not yet"
until its deadline (an ingress whose route is not in place yet answers UNIMPLEMENTED).
"""

from __future__ import annotations

from typing import Literal

from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from adapters.errors import ErrorType, activity_error

Verdict = Literal["permanent", "transient"]

TEMPORAL_RPC_STATUSES: dict[RPCStatusCode, Verdict] = {
    RPCStatusCode.OK: "transient",  # never raised; here so that every status has a row
    RPCStatusCode.CANCELLED: "transient",
    RPCStatusCode.UNKNOWN: "transient",
    RPCStatusCode.INVALID_ARGUMENT: "permanent",
    RPCStatusCode.DEADLINE_EXCEEDED: "transient",
    RPCStatusCode.NOT_FOUND: "transient",
    RPCStatusCode.ALREADY_EXISTS: "transient",
    RPCStatusCode.PERMISSION_DENIED: "permanent",
    RPCStatusCode.RESOURCE_EXHAUSTED: "transient",
    RPCStatusCode.FAILED_PRECONDITION: "permanent",
    RPCStatusCode.ABORTED: "transient",
    RPCStatusCode.OUT_OF_RANGE: "permanent",
    RPCStatusCode.UNIMPLEMENTED: "permanent",
    RPCStatusCode.INTERNAL: "transient",
    RPCStatusCode.UNAVAILABLE: "transient",
    RPCStatusCode.DATA_LOSS: "transient",
    RPCStatusCode.UNAUTHENTICATED: "permanent",
}


def rpc_answer(exc: RPCError) -> str:
    """`STATUS: message`, how messages and heartbeats quote the frontend's answer."""
    return f"{exc.status.name}: {exc.message}"


def temporal_rpc_error(
    what: str, exc: RPCError, *, refused: ErrorType, remedy: str
) -> ApplicationError:
    """The ApplicationError for an RPC that failed while doing `what`.

    A permanent status becomes `refused` with `remedy` (what the operator must change); a
    transient one FrontendUnhealthy, which the retry policy retries.
    """
    if TEMPORAL_RPC_STATUSES.get(exc.status, "transient") == "permanent":
        return activity_error(
            f"{what} was refused by the frontend ({rpc_answer(exc)}); {remedy}", refused
        )
    return activity_error(
        f"{what} failed, the frontend did not answer properly ({rpc_answer(exc)}); will retry",
        ErrorType.FRONTEND_UNHEALTHY,
    )
