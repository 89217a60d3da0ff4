"""plan_upgrade: the hops from what the cluster runs to the declared chart, computed once and
recorded in the run's history.

The plan is read from this tool's version tables (declared_state/versions.py), which a new
release of the tool edits. Computed inside the workflow, a run replayed by a newer worker
(an upgrade that waits days for an operator's approval, say) would compute another plan and
install a chart no operator approved; computed here, in a local activity, the plan is a
marker in the history and every replay reads that record. A refusal (a downgrade, a gap in
the tables) is a result, not an error: it is as deterministic as the plan and is recorded
the same way, never retried.
"""

from __future__ import annotations

from temporalio import activity

from contracts.base import FrozenModel
from declared_state.models import ChartSpec, ImagesSpec
from declared_state.upgrade_path import Hop


class PlanUpgradeInput(FrozenModel):
    """What the cluster runs (read by read_live_versions) and the declared chart."""

    live_server: str
    live_chart: str | None
    target: ChartSpec
    images: ImagesSpec = ImagesSpec()
    """The environment's image overrides (each hop carries its chart's images with them)."""


class PlanUpgradeResult(FrozenModel):
    """The hops in order ((): nothing to do), or why no plan exists and what to do instead."""

    hops: tuple[Hop, ...] = ()
    refused: str | None = None


@activity.defn(name="plan_upgrade")
def plan_upgrade(input: PlanUpgradeInput) -> PlanUpgradeResult:
    """Typed reference the upgrade workflow calls; implemented by activities/plan_upgrade.py."""
    raise NotImplementedError
