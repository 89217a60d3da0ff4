"""The Temporal RPC table, status by status, and one refusal from a real frontend.

The expectations are written out here, not read from the table, so a wrong row fails.
"""

from __future__ import annotations

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from adapters.errors import ErrorType
from adapters.errors.temporal_rpc import TEMPORAL_RPC_STATUSES, temporal_rpc_error

S = RPCStatusCode
PERMANENT = {
    S.INVALID_ARGUMENT,
    S.FAILED_PRECONDITION,
    S.OUT_OF_RANGE,
    S.PERMISSION_DENIED,
    S.UNAUTHENTICATED,
    S.UNIMPLEMENTED,
}
REFUSED = ErrorType.NAMESPACE_REGISTRATION_FAILED


def _error(status: RPCStatusCode) -> ApplicationError:
    exc = RPCError(f"{status.name.lower()} happened", status, b"")
    return temporal_rpc_error("namespace 'x': register", exc, refused=REFUSED, remedy="fix it")


def test_every_status_has_a_row() -> None:
    assert set(TEMPORAL_RPC_STATUSES) == set(RPCStatusCode)


@pytest.mark.parametrize("status", list(RPCStatusCode), ids=lambda s: s.name)
def test_status_is_permanent_or_transient(status: RPCStatusCode) -> None:
    error = _error(status)

    if status in PERMANENT:
        assert (error.type, error.non_retryable) == (REFUSED, True)
        assert error.message == (
            f"namespace 'x': register was refused by the frontend ({status.name}: "
            f"{status.name.lower()} happened); fix it"
        )
    else:
        assert (error.type, error.non_retryable) == (ErrorType.FRONTEND_UNHEALTHY, False)
        assert error.message.endswith(
            f"({status.name}: {status.name.lower()} happened); will retry"
        )


async def test_real_refusal_is_permanent(target_temporal) -> None:
    client = await Client.connect(target_temporal.address)
    with pytest.raises(RPCError) as raised:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=""))

    error = temporal_rpc_error("describe", raised.value, refused=REFUSED, remedy="fix it")

    assert raised.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert (error.type, error.non_retryable) == (REFUSED, True)
