"""install_chart: `helm upgrade --install` of the Temporal chart with the generated values."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import HELM_RETRY, StepSpec, step_heartbeat
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.bootstrap import BootstrapInput

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
    digests: dict[str, str] = {}
    """`images.pin: digest`: each image (`repository:tag`) -> the digest deployed (#23.5)."""
    network_policies: tuple[str, ...] = ()
    """The bootstrap's NetworkPolicies this run created, updated or deleted (#23.3), e.g.
    `temporal-frontend updated (/spec/ingress/0/from)`; () when they were as declared."""


@activity.defn(name="install_chart")
def install_chart(input: InstallChartInput) -> InstallChartResult:
    """Typed reference the workflows call; implemented by activities/install_chart.py."""
    raise NotImplementedError


SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="install_chart",
    activity=install_chart,
    make_input=lambda i: InstallChartInput(
        environment=i.environment,
        timeout=i.deadlines.helm_timeout,
        # A retry comes only after the previous attempt missed its heartbeats for this
        # long, so a release still pending then was left by a dead helm: recover it.
        pending_grace=step_heartbeat(i),
    ),
    deadline=lambda i: i.deadlines.install_chart,
    # a pending-release recovery (rollback wait), the upgrade wait and its own rollback
    start_to_close=lambda i: i.deadlines.helm_timeout * 3 + timedelta(minutes=1),
    retry=HELM_RETRY,
    heartbeat=step_heartbeat,
    drift_checked=True,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
