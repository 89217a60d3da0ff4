"""The Kubernetes error table, row by row, with errors the real client raises.

Statuses come from the Kubernetes API stand-in (`inject_faults`) through the real client,
connection errors from a port nobody listens on, kubeconfig errors from the real loader.
The expectations are written out here, not read from the table, so a wrong row fails.
"""

from __future__ import annotations

import uuid

import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError

from adapters.clients import KubeClients
from adapters.errors import ErrorType
from adapters.errors.kubernetes import (
    KUBERNETES_ERRORS,
    KUBERNETES_EXCEPTIONS,
    KUBERNETES_STATUSES,
    kubernetes_error,
)
from declared_state.models import Environment

FORBIDDEN, UNAVAILABLE = ErrorType.KUBERNETES_FORBIDDEN, ErrorType.KUBERNETES_UNAVAILABLE

# status -> (type, retryable)
STATUSES = {
    401: (FORBIDDEN, False),
    403: (FORBIDDEN, False),
    422: (ErrorType.CONFIGURATION_MISMATCH, False),
    429: (UNAVAILABLE, True),
    500: (UNAVAILABLE, True),
    502: (UNAVAILABLE, True),
    503: (UNAVAILABLE, True),
    504: (UNAVAILABLE, True),
}
# Not in the table: worth retrying, like a 5xx.
UNLISTED_STATUSES = [400, 404, 409, 410]


def _api_exception(kube_standin, core: k8s.CoreV1Api, status: int) -> ApiException:
    name = f"fault-{uuid.uuid4().hex[:10]}"
    kube_standin.inject_faults(f"/configmaps/{name}$", status=status, count=1, method="GET")
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_config_map(name, "default")
    assert raised.value.status == status
    return raised.value


def test_every_status_row_is_expected_here() -> None:
    assert set(KUBERNETES_STATUSES) == set(STATUSES)


@pytest.mark.parametrize("status", [*STATUSES, *UNLISTED_STATUSES])
def test_status_maps_to_its_type(kube_standin, core, status: int) -> None:
    error_type, retryable = STATUSES.get(status, (UNAVAILABLE, True))
    exc = _api_exception(kube_standin, core, status)

    error = kubernetes_error("reading ConfigMap default/x", exc)

    assert (error.type, error.non_retryable) == (error_type, not retryable)
    assert error.message.startswith("reading ConfigMap default/x: ")
    assert str(status) in error.message


def test_forbidden_names_rbac(kube_standin, core) -> None:
    error = kubernetes_error("reading x", _api_exception(kube_standin, core, 403))

    assert "check the kube context's RBAC" in error.message


def test_422_quotes_the_api_server_only_when_asked(kube_standin, core) -> None:
    exc = _api_exception(kube_standin, core, 422)

    quoted = kubernetes_error("updating ConfigMap ns/x", exc, quote_server=True)
    secret = kubernetes_error("updating Secret ns/x", exc)

    assert "injected by the stand-in" in quoted.message
    assert "injected by the stand-in" not in secret.message
    assert "fix or delete the existing object" in secret.message


def test_refused_connection_is_retryable_unavailable(
    unreachable_kube: KubeClients, local_env: Environment
) -> None:
    core = unreachable_kube.core_v1(local_env.kubernetes.context)
    with pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
        core.read_namespaced_secret("x", "default")

    error = kubernetes_error("reading Secret default/x", raised.value)

    assert (error.type, error.non_retryable) == (UNAVAILABLE, False)
    assert "Kubernetes API unreachable (MaxRetryError: " in error.message


@pytest.mark.parametrize(
    "exc",
    [
        urllib3.exceptions.ProtocolError("Connection aborted."),
        urllib3.exceptions.ReadTimeoutError(None, "/api/v1", "Read timed out."),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out"),
    ],
    ids=type,
)
def test_other_connection_errors_are_retryable_unavailable(exc: Exception) -> None:
    error = kubernetes_error("reading x", exc)

    assert (error.type, error.non_retryable) == (UNAVAILABLE, False)
    assert f"unreachable ({type(exc).__name__}: " in error.message


def test_unknown_kube_context_is_a_configuration_mismatch(kube_standin) -> None:
    kube = KubeClients(kubeconfig=str(kube_standin.kubeconfig_path))
    # KubeClients classifies it itself, for every caller (#20.3).
    with pytest.raises(ApplicationError) as raised:
        kube.core_v1("no-such-context")

    error = raised.value
    assert (error.type, error.non_retryable) == (ErrorType.CONFIGURATION_MISMATCH, True)
    assert "fix kubernetes.context" in error.message


def test_every_exception_class_the_callers_catch_has_a_row() -> None:
    classes = {cls for cls, _ in KUBERNETES_EXCEPTIONS}
    assert set(KUBERNETES_ERRORS) - classes == {ApiException}
