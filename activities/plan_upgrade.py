"""plan_upgrade: the upgrade plan as a (local) activity, so the workflow records it.

Only a call of the pure `declared_state.upgrade_path.plan_upgrade` over this release's
version tables; no I/O. Async, so it runs on the worker's event loop without an executor
(a local activity in every worker, the tests' included).
"""

from __future__ import annotations

from temporalio import activity

from contracts.plan_upgrade import PlanUpgradeInput, PlanUpgradeResult
from declared_state import upgrade_path


@activity.defn(name="plan_upgrade")
async def plan_upgrade(input: PlanUpgradeInput) -> PlanUpgradeResult:
    try:
        hops = upgrade_path.plan_upgrade(
            input.live_server, input.live_chart, input.target, input.images
        )
    except upgrade_path.UpgradeRefused as exc:
        return PlanUpgradeResult(refused=str(exc))
    return PlanUpgradeResult(hops=hops)
