"""check_server_version: the frontend reports (GetSystemInfo) at least the server release an
upgrade hop deployed.

Health alone does not show which binaries answer: old pods serve until the rollout replaces
them. A frontend that reports an older release is "not yet" (retried while pods roll);
after the step's deadline an operator decides.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.service import RPCError

from adapters.errors import ErrorType, activity_error
from adapters.errors.temporal_rpc import rpc_answer
from adapters.temporal_target import (
    FrontendConnection,
    FrontendUnreachable,
    TargetTemporalClients,
)
from contracts.check_server_version import CheckServerVersionInput, CheckServerVersionResult
from declared_state.versions import version_key

_TIMEOUT = 10.0


class CheckServerVersion:
    def __init__(self, clients: TargetTemporalClients):
        self._clients = clients

    @activity.defn(name="check_server_version")
    async def check_server_version(
        self, input: CheckServerVersionInput
    ) -> CheckServerVersionResult:
        async with self._clients.connect(input.environment) as frontend:
            return await self._check(input, frontend)

    async def _check(
        self, input: CheckServerVersionInput, frontend: FrontendConnection
    ) -> CheckServerVersionResult:
        address = frontend.target
        try:
            client = await frontend.client(timeout=_TIMEOUT)
            info = await client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=_TIMEOUT)
            )
        except FrontendUnreachable as exc:
            raise activity_error(
                f"Temporal frontend {address} unreachable: {exc.reason}",
                ErrorType.FRONTEND_UNHEALTHY,
            ) from None
        except RPCError as exc:
            raise activity_error(
                f"GetSystemInfo of Temporal frontend {address}: {rpc_answer(exc)}",
                ErrorType.FRONTEND_UNHEALTHY,
            ) from None
        reported = info.server_version.lstrip("v")
        try:
            behind = version_key(reported) < version_key(input.minimum)
        except ValueError:
            raise activity_error(
                f"Temporal frontend {address} reports server version {reported!r}, which is "
                "no version number",
                ErrorType.CONFIGURATION_MISMATCH,
            ) from None
        if behind:
            raise activity_error(
                f"Temporal frontend {address} reports server {reported}, older than the "
                f"{input.minimum} this hop deployed: pods of the old release still answer "
                "(rollout under way, or the new pods do not start)",
                ErrorType.SERVER_VERSION_BEHIND,
            )
        activity.logger.info("%s reports server %s (>= %s)", address, reported, input.minimum)
        return CheckServerVersionResult(
            address=address,
            server_version=reported,
            minimum=input.minimum,
            changed=False,
            summary=f"{address} reports server {reported} (hop: {input.minimum})",
            dry_run=input.dry_run,
        )
