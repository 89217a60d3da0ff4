"""check_server_version: the server release the new frontend reports (GetSystemInfo) is at
least the one an upgrade hop deployed."""

from __future__ import annotations

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from declared_state.models import Environment


class CheckServerVersionInput(FrozenModel):
    environment: Environment
    minimum: str
    """The hop's server version."""
    dry_run: bool = False


class CheckServerVersionResult(StepResult):
    address: str
    server_version: str
    minimum: str


@activity.defn(name="check_server_version")
def check_server_version(input: CheckServerVersionInput) -> CheckServerVersionResult:
    """Typed reference the workflows call; implemented by activities/check_server_version.py."""
    raise NotImplementedError
