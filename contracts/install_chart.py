"""install_chart: `helm upgrade --install` of the Temporal chart with the generated values."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from declared_state.models import Environment

ReleaseAction = Literal["installed", "upgraded", "unchanged"]


class InstallChartInput(FrozenModel):
    """Install or upgrade the environment's Temporal release."""

    environment: Environment
    timeout: timedelta = timedelta(minutes=5)
    """helm's `--timeout`: how long to wait for readiness (the rollback gets as long again)."""
    pending_grace: timedelta = timedelta(minutes=2)
    """A `pending-*` release younger than this may still be worked on and is not touched."""
    reapply: bool = False
    """Upgrade even when the release's chart and values are as declared: helm re-applies the
    manifest over objects changed by hand (the drift check's repair of check_live_objects'
    drift), one new revision. A dry run ignores it."""
    dry_run: bool = False
    """Report what would change; write nothing."""


class InstallChartResult(StepResult):
    """The release as deployed after the step (in a dry run: as it is, `revision` 0 and
    `status` "missing" when there is none)."""

    release: str
    namespace: str
    revision: int
    chart: str
    app_version: str
    status: str
    action: ReleaseAction
    recovered_from: str | None = None
    """`pending-upgrade` etc. when an abandoned release was rolled back / uninstalled first."""


@activity.defn(name="install_chart")
def install_chart(input: InstallChartInput) -> InstallChartResult:
    """Typed reference the workflows call; implemented by activities/install_chart.py."""
    raise NotImplementedError
