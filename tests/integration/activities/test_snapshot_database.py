"""snapshot_database against moto's RDS: one snapshot per hop, however often it runs, and
never another upgrade's snapshot passed off as this hop's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.snapshot_database import SnapshotDatabase
from adapters.clients import AwsClients
from contracts.snapshot_database import SnapshotDatabaseInput, SnapshotDatabaseResult
from declared_state.models import Environment
from local_stack.aws import LocalAws
from tests.helpers import attempt


@pytest.fixture
def snapshots(local_aws: LocalAws):
    rds = local_aws.client("rds")
    made: list[str] = []
    yield rds, made
    for name in made:
        rds.delete_db_snapshot(DBSnapshotIdentifier=name)


def take(
    aws: AwsClients, env: Environment, name: str, not_before: datetime, **kw
) -> SnapshotDatabaseResult:
    return attempt().run(
        SnapshotDatabase(aws).snapshot_database,
        SnapshotDatabaseInput(environment=env, snapshot_id=name, not_before=not_before, **kw),
    )


def test_one_snapshot_per_hop_however_often_the_step_runs(aws_clients, local_env, snapshots):
    rds, made = snapshots
    started = datetime.now(UTC)
    first = take(aws_clients, local_env, "local-before-temporal-1-26-2", started)
    made.append(first.snapshot_id)
    assert (first.action, first.status, first.changed) == ("created", "available", True)
    again = take(aws_clients, local_env, "local-before-temporal-1-26-2", started)
    assert again.action == "reused" and again.created_at == first.created_at
    found = rds.describe_db_snapshots(DBInstanceIdentifier="temporal-local", SnapshotType="manual")[
        "DBSnapshots"
    ]
    assert [s["DBSnapshotIdentifier"] for s in found] == ["local-before-temporal-1-26-2"]


def test_a_snapshot_from_before_this_upgrade_is_never_taken_for_it(
    aws_clients, local_env, snapshots
):
    rds, made = snapshots
    earlier = take(aws_clients, local_env, "local-before-temporal-1-27-2", datetime.now(UTC))
    made.append(earlier.snapshot_id)
    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(ApplicationError) as info:
        take(aws_clients, local_env, "local-before-temporal-1-27-2", later)
    assert (info.value.type, info.value.non_retryable) == ("SnapshotConflict", True)
    assert "an earlier upgrade's backup" in info.value.message
    assert (
        "aws rds delete-db-snapshot --db-snapshot-identifier local-before-temporal-1-27-2"
        in info.value.message
    )


def test_a_dry_run_creates_nothing(aws_clients, local_env, snapshots):
    rds, _ = snapshots
    result = take(aws_clients, local_env, "local-dry-run", datetime.now(UTC), dry_run=True)
    assert (result.action, result.dry_run) == ("would create", True)
    assert (
        rds.describe_db_snapshots(DBInstanceIdentifier="temporal-local", SnapshotType="manual")[
            "DBSnapshots"
        ]
        == []
    )
