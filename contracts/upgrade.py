"""Input, progress and result of the upgrade workflow (`upgrade-<environment>`).

The run reads what the cluster runs (read_live_versions), plans the hops to the declared
chart (declared_state/upgrade_path.py) and takes them one by one; each hop's steps are
`UpgradeWorkflow.HOP` (workflows/upgrade.py), recorded as `hop <n>: <step>`. Progress and result extend the bootstrap's, so
the operations layer follows, renders and steers both alike.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from pydantic import Field

from contracts import read_live_versions
from contracts.base import FrozenModel
from contracts.bootstrap import BootstrapInput, BootstrapProgress, BootstrapResult, StepDeadlines
from declared_state.models import Environment
from declared_state.upgrade_path import Hop

FIRST_STEP = read_live_versions.SPEC.name


def upgrade_workflow_id(environment: str, *, plan_only: bool = False) -> str:
    """One upgrade per environment at a time: `upgrade-<environment>` (`-plan` for --plan)."""
    return f"upgrade-{environment}" + ("-plan" if plan_only else "")


def hop_step(hop: int, step: str) -> str:
    """The record name of a hop's step: `hop 2: update_schema`."""
    return f"hop {hop}: {step}"


def snapshot_id(environment: str, hop: Hop) -> str:
    """The RDS snapshot taken before `hop`, named after the environment and the hop's target:
    `<env>-before-temporal-1-26-2-chart-0-55-0` (letters, digits and single hyphens, as RDS
    requires). The same name on every attempt, so a crash never makes a second one."""
    name = f"{environment}-before-temporal-{hop.server}-chart-{hop.chart}".lower()
    name = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", name)).strip("-")
    return name if name[:1].isalpha() else f"env-{name}"


class UpgradeDeadlines(StepDeadlines):
    """The bootstrap's step deadlines (install_chart, wait_frontend_healthy, helm_timeout)
    and the upgrade's own steps'."""

    snapshot_database: timedelta = timedelta(hours=2)
    update_schema: timedelta = Field(
        default=timedelta(hours=2),
        description="visibility 1.10-1.14 add generated columns; large tables take long",
    )
    check_server_version: timedelta = timedelta(minutes=10)
    soak_grace: timedelta = Field(
        default=timedelta(minutes=2), description="the soak's deadline beyond its duration"
    )


class UpgradeInput(FrozenModel):
    """A frozen snapshot of the environment (chart.version is the target); no secrets."""

    environment: Environment
    requested_by: str = "unknown"
    deadlines: UpgradeDeadlines = UpgradeDeadlines()
    plan_only: bool = Field(default=False, description="Read and plan; change nothing.")


class HopInput(BootstrapInput):
    """What a hop's steps are built from: the environment with the hop's chart (so the
    reused install_chart and wait_frontend_healthy steps run as they do in a bootstrap)."""

    deadlines: UpgradeDeadlines = UpgradeDeadlines()
    hop: Hop
    snapshot_id: str
    not_before: datetime


class UpgradeProgress(BootstrapProgress):
    """Answer of the `progress` query: the plan, the hop under way, every step so far."""

    plan: tuple[Hop, ...] = ()
    planned: bool = Field(default=False, description="the plan is known (live versions read)")
    hop: int | None = Field(default=None, description="the hop under way (1-based)")
    live_server: str | None = None
    live_chart: str | None = None
    live_schema: tuple[str | None, str | None] = (None, None)
    snapshots: tuple[str, ...] = ()
    cluster: str = Field(default="", description="where the cluster stands now, for people")
    plan_only: bool = False


class UpgradeResult(BootstrapResult):
    """The final record: the plan, the hops taken, the snapshots to restore from."""

    plan: tuple[Hop, ...] = ()
    live_server: str | None = None
    live_chart: str | None = None
    live_schema: tuple[str | None, str | None] = (None, None)
    snapshots: tuple[str, ...] = ()
    plan_only: bool = False
