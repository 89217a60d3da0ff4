"""Wait until the new cluster's frontend answers SERVING on its gRPC health check.

`helm --wait` returns before the frontend serves (the chart has no readiness probe), and the
frontend says NOT_SERVING until cluster membership is ready, so this step polls the health
service `temporal.api.workflowservice.v1.WorkflowService` until it says SERVING.

A frontend pod whose image cannot be pulled (ImagePullBackOff: a tag the registry does not
have, a registry the cluster cannot reach) would never serve, and waiting out the deadline
only hides why: after each answer short of SERVING the frontend pods' container states are
read (adapters/pod_status.pull_failures), and such a pod stops the step at once, naming
the image. Reading them is a shortcut only: a refused or failed read changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio import activity
from temporalio.bridge.proto.health.v1 import HealthCheckRequest, HealthCheckResponse
from temporalio.service import RPCError

from adapters.errors import ErrorType, activity_error
from adapters.errors.temporal_rpc import rpc_answer
from adapters.pod_status import pull_failures
from adapters.temporal_target import (
    FrontendConnection,
    FrontendUnreachable,
    TargetTemporalClients,
    attempt_deadline,
)
from contracts.base import DriftItem
from contracts.wait_frontend_healthy import WaitFrontendHealthyInput, WaitFrontendHealthyResult
from declared_state.models import Environment, FrontendConnect

HEALTH_SERVICE = "temporal.api.workflowservice.v1.WorkflowService"
# One health RPC (or connect) never waits longer than this.
_CHECK_TIMEOUT = 5.0


async def health_check(frontend: FrontendConnection, budget: float) -> str:
    """One health check: 'SERVING', 'NOT_SERVING', ... or 'unreachable: <why>' (also what
    the upgrade's soak asks, check after check, and the drift check's check_temporal)."""
    timeout = max(0.5, min(_CHECK_TIMEOUT, budget))
    try:
        client = await frontend.client(timeout=timeout)
        resp = await client.service_client.health_service.check(
            HealthCheckRequest(service=HEALTH_SERVICE), timeout=timedelta(seconds=timeout)
        )
    except FrontendUnreachable as exc:
        return f"unreachable: {exc.reason}"
    except RPCError as exc:
        # UNAVAILABLE / DEADLINE_EXCEEDED: the cached connection's server is gone or slow;
        # NOT_FOUND: the health service does not know the service name (yet). Every
        # status means "not yet" here, even those errors/temporal_rpc.py calls permanent:
        # an ingress in front of a starting frontend answers UNIMPLEMENTED until its
        # route exists. Through a port-forward the pod's own words say more (nothing
        # listens on the port yet), and the next check resolves the Service again.
        why = frontend.last_error() or rpc_answer(exc)
        await frontend.reset()
        return f"unreachable: {why}"
    return HealthCheckResponse.ServingStatus.Name(resp.status)


class WaitFrontendHealthy:
    def __init__(self, clients: TargetTemporalClients):
        self._clients = clients

    @activity.defn(name="wait_frontend_healthy")
    async def wait_frontend_healthy(
        self, input: WaitFrontendHealthyInput
    ) -> WaitFrontendHealthyResult:
        env = input.environment
        async with self._clients.connect(env) as frontend:
            return await self._wait(input, frontend)

    def _pull_failures(self, env: Environment) -> list[str]:
        k8s = env.kubernetes
        selector = f"app.kubernetes.io/instance={k8s.release},app.kubernetes.io/component=frontend"
        try:
            return pull_failures(self._clients.kube.core_v1(k8s.context), k8s.namespace, selector)
        except Exception:  # noqa: BLE001 - a shortcut only: the health answers still decide
            return []

    async def _wait(
        self, input: WaitFrontendHealthyInput, frontend: FrontendConnection
    ) -> WaitFrontendHealthyResult:
        env = input.environment
        address = frontend.target
        started = time.monotonic()
        deadline = attempt_deadline(input.max_wait)
        interval = input.poll_interval.total_seconds()
        attempt = 0
        while True:
            attempt += 1
            answer = await health_check(frontend, deadline - time.monotonic())
            elapsed = round(time.monotonic() - started, 3)
            activity.heartbeat({"attempt": attempt, "last_answer": answer, "elapsed_s": elapsed})
            if answer == "SERVING" or input.dry_run:
                # A dry run looks once and reports what it saw instead of waiting.
                activity.logger.info(
                    "frontend %s is %s after %d checks (%.1fs)", address, answer, attempt, elapsed
                )
                drift: tuple[DriftItem, ...] = ()
                if answer != "SERVING":
                    drift = (
                        DriftItem(
                            message=f"frontend {address} answers {answer}, not SERVING",
                            kind="TemporalFrontend",
                            name=address,
                            live=answer,
                            declared="SERVING",
                            repairable=False,
                        ),
                    )
                return WaitFrontendHealthyResult(
                    address=address,
                    checks=attempt,
                    waited_seconds=elapsed,
                    status=answer,
                    changed=False,
                    summary=f"{address} {answer} after {attempt} check(s), {elapsed:.1f}s",
                    dry_run=input.dry_run,
                    drift=drift,
                )
            failures = await asyncio.to_thread(self._pull_failures, env)
            if failures:
                raise activity_error(
                    f"Temporal frontend {address} cannot start: {'; '.join(failures)}. Push or "
                    "mirror the image, or fix images.server and image_registry (the image "
                    "preflight, check_images, names what the registry has), then retry",
                    ErrorType.IMAGE_PULL_BACKOFF,
                )
            left = deadline - time.monotonic()
            if left <= 0:
                k8s = env.kubernetes
                hint = (
                    "Check that the frontend pods run and serve (kubectl get pods -n "
                    f"{k8s.namespace} -l app.kubernetes.io/component=frontend) and that this "
                    "worker may port-forward to them."
                    if frontend.mode == FrontendConnect.PORT_FORWARD
                    else "Check that the frontend pods run and that this worker can reach the "
                    "address (frontend.address in the environment file)."
                )
                raise activity_error(
                    f"Temporal frontend {address} is not healthy after {elapsed:.0f}s and "
                    f"{attempt} checks; last answer: {answer}. {hint}",
                    ErrorType.FRONTEND_UNHEALTHY,
                    {"address": address, "last_answer": answer, "checks": attempt},
                )
            activity.logger.debug("frontend %s: %s (check %d)", address, answer, attempt)
            # Cancellation arrives here as asyncio.CancelledError and propagates.
            await asyncio.sleep(min(interval, left))
