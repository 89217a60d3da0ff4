"""snapshot_database: an RDS snapshot of the instance before an upgrade hop changes it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field
from temporalio import activity

from contracts.base import FrozenModel, StepResult
from declared_state.models import Environment


class SnapshotDatabaseInput(FrozenModel):
    """Snapshot `environment.rds.instance_id` as `snapshot_id` and wait until it is usable."""

    environment: Environment
    snapshot_id: str
    not_before: datetime
    """When the upgrade started: a snapshot of this name taken earlier belongs to another
    upgrade and is never taken for this hop's backup."""
    poll_interval: timedelta = Field(default=timedelta(seconds=15), gt=timedelta(0))
    dry_run: bool = False
    """Report whether the snapshot exists; create nothing."""


class SnapshotDatabaseResult(StepResult):
    snapshot_id: str
    instance_id: str
    status: str
    created_at: datetime | None
    action: Literal["created", "reused", "would create"]
    """`reused`: this upgrade had taken it already (a retry after a crash)."""


@activity.defn(name="snapshot_database")
def snapshot_database(input: SnapshotDatabaseInput) -> SnapshotDatabaseResult:
    """Typed reference the workflows call; implemented by activities/snapshot_database.py."""
    raise NotImplementedError
