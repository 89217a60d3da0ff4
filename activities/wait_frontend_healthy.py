"""Wait until the new cluster's frontend answers SERVING on its gRPC health check.

`helm --wait` returns before the frontend serves (the chart has no readiness probe), and the
frontend says NOT_SERVING until cluster membership is ready, so this step polls the health
service `temporal.api.workflowservice.v1.WorkflowService` until it says SERVING.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.bridge.proto.health.v1 import HealthCheckRequest, HealthCheckResponse
from temporalio.service import RPCError

from activities.errors import ErrorType, activity_error
from activities.temporal_target import FrontendUnreachable, TargetTemporalClients, attempt_deadline
from declared_state.models import Environment

HEALTH_SERVICE = "temporal.api.workflowservice.v1.WorkflowService"
# One health RPC (or connect) never waits longer than this.
_CHECK_TIMEOUT = 5.0


class WaitFrontendHealthyInput(BaseModel):
    """Which frontend to wait for (`environment.frontend_address`) and how long."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: Environment
    poll_interval: timedelta = Field(default=timedelta(seconds=2), gt=timedelta(0))
    max_wait: timedelta = Field(
        default=timedelta(minutes=5),
        description="Give up after this long (or earlier, before the attempt's own timeout).",
    )


class WaitFrontendHealthyResult(BaseModel):
    """The frontend answered SERVING after `checks` health checks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    checks: int
    waited_seconds: float
    status: str = "SERVING"


class WaitFrontendHealthy:
    def __init__(self, clients: TargetTemporalClients):
        self._clients = clients

    async def _check(self, env: Environment, budget: float) -> str:
        """One health check: 'SERVING', 'NOT_SERVING', ... or 'unreachable: <why>'."""
        timeout = max(0.5, min(_CHECK_TIMEOUT, budget))
        try:
            client = await self._clients.client(env, timeout=timeout)
            resp = await client.service_client.health_service.check(
                HealthCheckRequest(service=HEALTH_SERVICE), timeout=timedelta(seconds=timeout)
            )
        except FrontendUnreachable as exc:
            return f"unreachable: {exc.reason}"
        except RPCError as exc:
            # UNAVAILABLE / DEADLINE_EXCEEDED: the cached connection's server is gone or slow;
            # NOT_FOUND: the health service does not know the service name (yet).
            return f"unreachable: {exc.status.name}: {exc.message}"
        return HealthCheckResponse.ServingStatus.Name(resp.status)

    @activity.defn(name="wait_frontend_healthy")
    async def wait_frontend_healthy(
        self, input: WaitFrontendHealthyInput
    ) -> WaitFrontendHealthyResult:
        env = input.environment
        address = env.frontend_address
        started = time.monotonic()
        deadline = attempt_deadline(input.max_wait)
        interval = input.poll_interval.total_seconds()
        attempt = 0
        while True:
            attempt += 1
            answer = await self._check(env, deadline - time.monotonic())
            elapsed = round(time.monotonic() - started, 3)
            activity.heartbeat({"attempt": attempt, "last_answer": answer, "elapsed_s": elapsed})
            if answer == "SERVING":
                activity.logger.info(
                    "frontend %s is SERVING after %d checks (%.1fs)", address, attempt, elapsed
                )
                return WaitFrontendHealthyResult(
                    address=address, checks=attempt, waited_seconds=elapsed
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise activity_error(
                    f"Temporal frontend {address} is not healthy after {elapsed:.0f}s and "
                    f"{attempt} checks; last answer: {answer}. Check that the frontend pods run "
                    "and that this worker can reach the address (frontend.address in the "
                    "environment file).",
                    ErrorType.FRONTEND_UNHEALTHY,
                    {"address": address, "last_answer": answer, "checks": attempt},
                )
            activity.logger.debug("frontend %s: %s (check %d)", address, answer, attempt)
            # Cancellation arrives here as asyncio.CancelledError and propagates.
            await asyncio.sleep(min(interval, left))
