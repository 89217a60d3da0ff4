"""soak: after an upgrade hop, the frontend must stay SERVING for a while before the next
hop (history shards load, pods that crash-loop show it)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field
from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import FRONTEND_RETRY, StepSpec, step_heartbeat
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.upgrade import HopInput


class SoakInput(FrozenModel):
    environment: Environment
    duration: timedelta
    poll_interval: timedelta = Field(default=timedelta(seconds=5), gt=timedelta(0))
    dry_run: bool = False
    """Check once."""


class SoakResult(StepResult):
    address: str
    checks: int
    soaked_seconds: float


@activity.defn(name="soak")
def soak(input: SoakInput) -> SoakResult:
    """Typed reference the workflows call; implemented by activities/soak.py."""
    raise NotImplementedError


SPEC: StepSpec[HopInput] = StepSpec(
    name="soak",
    activity=soak,
    make_input=lambda i: SoakInput(environment=i.environment, duration=i.environment.upgrade.soak),
    deadline=lambda i: i.environment.upgrade.soak * 2 + i.deadlines.soak_grace,
    start_to_close=lambda i: i.environment.upgrade.soak + i.deadlines.soak_grace,
    retry=FRONTEND_RETRY,
    heartbeat=step_heartbeat,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
