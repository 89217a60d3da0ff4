"""check_server_version: the server release the new frontend reports (GetSystemInfo) is at
least the one an upgrade hop deployed."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import FRONTEND_RETRY, StepSpec
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.upgrade import HopInput


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


SPEC: StepSpec[HopInput] = StepSpec(
    name="check_server_version",
    activity=check_server_version,
    make_input=lambda i: CheckServerVersionInput(environment=i.environment, minimum=i.hop.server),
    deadline=lambda i: i.deadlines.check_server_version,
    start_to_close=lambda i: timedelta(minutes=1),
    retry=FRONTEND_RETRY,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
