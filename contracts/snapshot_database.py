"""snapshot_database: an RDS snapshot of the instance before an upgrade hop changes it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import AWS_WAIT_RETRY, StepSpec, step_heartbeat
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.upgrade import HopInput

# How often the waiter asks RDS for the snapshot's status (less often with a short heartbeat
# timeout, see SPEC).
SNAPSHOT_POLL = timedelta(seconds=15)


class SnapshotDatabaseInput(FrozenModel):
    """Snapshot `environment.rds.instance_id` as `snapshot_id` and wait until it is usable."""

    environment: Environment
    snapshot_id: str
    not_before: datetime
    """When the upgrade started: a snapshot of this name taken earlier belongs to another
    upgrade and is never taken for this hop's backup."""
    poll_interval: timedelta = Field(default=SNAPSHOT_POLL, gt=timedelta(0))
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


SPEC: StepSpec[HopInput] = StepSpec(
    name="snapshot_database",
    activity=snapshot_database,
    make_input=lambda i: SnapshotDatabaseInput(
        environment=i.environment,
        snapshot_id=i.snapshot_id,
        not_before=i.not_before,
        # It heartbeats once per poll: at least twice per heartbeat timeout (15 s with the
        # default 30 s timeout, the field's default, so a replayed input is the same).
        poll_interval=min(SNAPSHOT_POLL, step_heartbeat(i) / 2),
    ),
    deadline=lambda i: i.deadlines.snapshot_database,
    # one attempt waits for the snapshot in heartbeats; a retry takes the same one up
    start_to_close=lambda i: timedelta(minutes=30),
    retry=AWS_WAIT_RETRY,
    heartbeat=step_heartbeat,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
