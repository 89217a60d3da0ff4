"""wait_frontend_healthy: wait until the new frontend answers SERVING on its gRPC health check."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field
from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import FRONTEND_RETRY, StepSpec, step_heartbeat
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.bootstrap import BootstrapInput


class WaitFrontendHealthyInput(FrozenModel):
    """Which frontend to wait for (`environment.frontend_address`) and how long."""

    environment: Environment
    poll_interval: timedelta = Field(default=timedelta(seconds=2), gt=timedelta(0))
    max_wait: timedelta = Field(
        default=timedelta(minutes=5),
        description="Give up after this long (or earlier, before the attempt's own timeout).",
    )
    dry_run: bool = False
    """Check once and report; never waits."""


class WaitFrontendHealthyResult(StepResult):
    """The frontend answered SERVING after `checks` health checks. Never changes anything."""

    address: str
    checks: int
    waited_seconds: float
    status: str = "SERVING"


@activity.defn(name="wait_frontend_healthy")
def wait_frontend_healthy(input: WaitFrontendHealthyInput) -> WaitFrontendHealthyResult:
    """Typed reference the workflows call; implemented by activities/wait_frontend_healthy.py."""
    raise NotImplementedError


SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="wait_frontend_healthy",
    activity=wait_frontend_healthy,
    make_input=lambda i: WaitFrontendHealthyInput(
        environment=i.environment, max_wait=i.deadlines.frontend_max_wait
    ),
    deadline=lambda i: i.deadlines.wait_frontend_healthy,
    start_to_close=lambda i: i.deadlines.frontend_max_wait + timedelta(minutes=1),
    retry=FRONTEND_RETRY,
    heartbeat=step_heartbeat,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
