"""soak: after an upgrade hop, the frontend's health must stay SERVING for
`upgrade.soak` before the next hop starts.

History shards load for a while after a rollout, and a server that crash-loops on the new
release answers SERVING between restarts: one good answer proves little, a stretch of them
does. Every answer is heartbeated; the first that is not SERVING ends the soak for an
operator to decide (retry soaks again from the start, skip goes on, abort stops between
hops). A retry after a crash soaks again from the start, so a soak is never shortened.
"""

from __future__ import annotations

import asyncio
import time

from temporalio import activity

from activities.wait_frontend_healthy import health_check
from adapters.errors import ErrorType, activity_error
from adapters.temporal_target import FrontendConnection, TargetTemporalClients, attempt_deadline
from contracts.soak import SoakInput, SoakResult


class Soak:
    def __init__(self, clients: TargetTemporalClients):
        self._clients = clients

    @activity.defn(name="soak")
    async def soak(self, input: SoakInput) -> SoakResult:
        async with self._clients.connect(input.environment) as frontend:
            return await self._soak(input, frontend)

    async def _soak(self, input: SoakInput, frontend: FrontendConnection) -> SoakResult:
        address = frontend.target
        duration = input.duration.total_seconds()
        started = time.monotonic()
        deadline = attempt_deadline(input.duration + input.poll_interval)
        checks = 0
        while True:
            checks += 1
            answer = await health_check(frontend, deadline - time.monotonic())
            soaked = round(time.monotonic() - started, 1)
            activity.heartbeat(
                {"phase": f"soak {soaked:.0f}/{duration:.0f}s: {answer}", "checks": checks}
            )
            if answer != "SERVING":
                raise activity_error(
                    f"Temporal frontend {address} answered {answer} {soaked:.0f}s into the "
                    f"{duration:.0f}s soak (check {checks}); the hop's release is deployed but "
                    "not steady. Look at the server pods (restarts, logs), then retry to soak "
                    "again, skip to go on anyway, or abort",
                    ErrorType.SOAK_FAILED,
                    {"address": address, "last_answer": answer, "checks": checks},
                )
            if soaked >= duration or input.dry_run:
                break
            await asyncio.sleep(
                min(input.poll_interval.total_seconds(), max(0.0, duration - soaked))
            )
        activity.logger.info("%s stayed SERVING for %.0fs (%d checks)", address, soaked, checks)
        return SoakResult(
            address=address,
            checks=checks,
            soaked_seconds=soaked,
            changed=False,
            summary=f"{address} SERVING for {soaked:.0f}s ({checks} checks)",
            dry_run=input.dry_run,
        )
