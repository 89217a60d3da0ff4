"""soak: after an upgrade hop, the frontend must stay SERVING for a while before the next
hop (history shards load, pods that crash-loop show it)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from temporalio import activity

from contracts.base import FrozenModel, StepResult
from declared_state.models import Environment


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
