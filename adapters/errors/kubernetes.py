"""Kubernetes API errors -> ErrorType: one table by HTTP status, one by exception class.

The kubernetes client fails in three ways, all of them caught as `KUBERNETES_ERRORS`:

- `ApiException`: the API server answered with an error status (`status`, `reason`, and the
  Status object as JSON in `body`). `KUBERNETES_STATUSES` says what each status means;
  a status it does not list (400, an unexpected 404, 0 when there was no status at all) is
  treated like a 5xx: worth retrying, and the message names the status.
- urllib3 errors (`MaxRetryError` once its connection retries are spent, `ProtocolError`,
  `ReadTimeoutError`) and `OSError`: no answer at all (connection refused, DNS, TLS,
  timeout). Always retryable; they used to escape unclassified from some callers.
- `ConfigException`: the kubeconfig cannot be loaded or has no such context, or a worker in
  a pod is asked for another cluster than its own (adapters/clients.py). Raised when the
  client is built (`KubeClients.core_v1`), before any request; an operator must fix the
  environment's `kubernetes.context` or the worker's credentials.

404 and 409 are ordinary outcomes for most callers (missing object: create it; conflict:
read again), so callers handle those before they ask `kubernetes_error`. The API server's
own message is quoted for a 422 (it says which field it refuses) only when the caller asks
for it: a refused Secret's message may echo its data.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from temporalio.exceptions import ApplicationError

from adapters.errors import ErrorType, activity_error

KUBERNETES_ERRORS: tuple[type[Exception], ...] = (
    ApiException,
    urllib3.exceptions.HTTPError,
    OSError,
    ConfigException,
)


class KubernetesRow(NamedTuple):
    error_type: ErrorType
    message: str
    """`str.format` template: {what}, {status}, {reason}, {detail} (the API server's message
    when it may be quoted), {name} and {exc} (the exception's class name and text)."""


_FORBIDDEN = KubernetesRow(
    ErrorType.KUBERNETES_FORBIDDEN,
    "{what}: forbidden ({status} {reason}); check the kube context's RBAC",
)
_ANSWERED = KubernetesRow(
    ErrorType.KUBERNETES_UNAVAILABLE, "{what}: Kubernetes API answered {status} {reason}"
)
_UNREACHABLE = KubernetesRow(
    ErrorType.KUBERNETES_UNAVAILABLE, "{what}: Kubernetes API unreachable ({name}: {exc})"
)

KUBERNETES_STATUSES: dict[int, KubernetesRow] = {
    401: _FORBIDDEN,  # the kubeconfig's credentials are not accepted
    403: _FORBIDDEN,
    # The API refuses the object itself (`immutable: true`, a Secret of another type):
    # the same request will be refused again.
    422: KubernetesRow(
        ErrorType.CONFIGURATION_MISMATCH,
        "{what}: Kubernetes refused the object (422 {reason}){detail}; "
        "fix or delete the existing object",
    ),
    429: _ANSWERED,  # API priority and fairness: throttled
    500: _ANSWERED,
    502: _ANSWERED,
    503: _ANSWERED,
    504: _ANSWERED,
}
OTHER_STATUS = _ANSWERED
"""Any status the table does not list."""

# Tried in order; ApiException is looked up in KUBERNETES_STATUSES instead.
KUBERNETES_EXCEPTIONS: tuple[tuple[type[Exception], KubernetesRow], ...] = (
    (
        ConfigException,
        KubernetesRow(
            ErrorType.CONFIGURATION_MISMATCH,
            "{what}: the worker's Kubernetes credentials cannot be used for it ({exc}); fix "
            "kubernetes.context in the environment file or the worker's kubeconfig",
        ),
    ),
    (urllib3.exceptions.HTTPError, _UNREACHABLE),
    (OSError, _UNREACHABLE),
)


def kubernetes_error(what: str, exc: Exception, *, quote_server: bool = False) -> ApplicationError:
    """The ApplicationError for one of `KUBERNETES_ERRORS` raised while doing `what`.

    `quote_server=True` adds the API server's own message to a 422; never for a Secret,
    whose refusal may echo its data.
    """
    status, reason, detail = 0, "no answer", ""
    if isinstance(exc, ApiException):
        status, reason = exc.status or 0, exc.reason or "no answer"
        row = KUBERNETES_STATUSES.get(status, OTHER_STATUS)
        if quote_server:
            detail = f": {_server_message(exc)}"
    else:
        row = next(row for cls, row in KUBERNETES_EXCEPTIONS if isinstance(exc, cls))
    message = row.message.format(
        what=what, status=status, reason=reason, detail=detail, name=type(exc).__name__, exc=exc
    )
    return activity_error(message, row.error_type)


def unusable_credentials(source: str, context: str | None, exc: Exception) -> ApplicationError:
    """Kubernetes credentials that cannot be loaded (adapters/clients.py): the same
    non-retryable ConfigurationMismatch whichever client (API, port-forward, helm) loads them."""
    what = f"kube context {context or '(current)'} from {source}"
    return kubernetes_error(
        what,
        exc
        if isinstance(exc, ConfigException)
        else ConfigException(f"{type(exc).__name__}: {' '.join(str(exc).split())}"),
    )


def _server_message(exc: ApiException) -> str:
    """The `message` of the Status object the API server sent, else the reason."""
    try:
        return str(json.loads(exc.body or "").get("message", "")) or str(exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)
