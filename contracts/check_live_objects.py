"""check_live_objects: compare the objects the chart renders with the live ones, field by field."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import PREFLIGHT_RETRY, StepSpec
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.bootstrap import BootstrapInput


class CheckLiveObjectsInput(FrozenModel):
    """The environment whose chart-owned objects are compared with what runs."""

    environment: Environment
    dry_run: bool = True
    """Accepted for symmetry with the other steps: this step only ever reads. Its drift is
    repaired by install_chart (`reapply`), which re-applies the manifest with one revision."""


class CheckLiveObjectsResult(StepResult):
    """How many objects the manifest has, how many were compared, and the differences (in
    `drift`, ignored ones included and flagged); never changes anything."""

    release: str
    namespace: str
    objects: int
    """Objects in the rendered manifest (helm hooks excluded)."""
    compared: int
    """Of those, read live and compared (the rest are missing or could not be read)."""
    ignored: int = 0
    """Differences matched by `drift_check.ignore` (in `drift` with `ignored` set)."""


@activity.defn(name="check_live_objects")
def check_live_objects(input: CheckLiveObjectsInput) -> CheckLiveObjectsResult:
    """Typed reference the workflows call; implemented by activities/check_live_objects.py."""
    raise NotImplementedError


SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="check_live_objects",
    activity=check_live_objects,
    make_input=lambda i: CheckLiveObjectsInput(environment=i.environment),
    deadline=lambda i: i.deadlines.check_live_objects,
    start_to_close=lambda i: timedelta(minutes=2),
    retry=PREFLIGHT_RETRY,
    read_only=True,
    drift_checked=True,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
