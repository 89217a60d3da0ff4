"""check_live_objects: compare the objects the chart renders with the live ones, field by field."""

from __future__ import annotations

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from declared_state.models import Environment


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
