"""snapshot_database: an RDS snapshot before an upgrade hop touches the schema.

The snapshot's name comes from the environment and the hop's target (contracts/upgrade.py
`snapshot_id`), so every attempt of the hop means the same snapshot: a retry after a crash
finds the one it created and waits for it instead of taking a second. A snapshot of that
name taken before this upgrade started is another upgrade's backup: it is never passed off
as this hop's, the step stops and says how to get it out of the way.

`create_db_snapshot`, then the boto3 waiter `db_snapshot_available`, one short round per
heartbeat so a cancelled or crashed attempt is noticed. A snapshot RDS reports as failed (or
that vanished while being waited for) fails the step for an operator to decide.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import WaiterError
from temporalio import activity

from adapters.clients import AwsClients
from adapters.errors import ErrorType, activity_error
from adapters.errors.aws import AWS_ERRORS, aws_error
from contracts.snapshot_database import SnapshotDatabaseInput, SnapshotDatabaseResult

# A snapshot created a moment before the run's recorded start (clock skew between RDS and
# Temporal) still belongs to this run.
_CLOCK_SKEW = timedelta(minutes=2)
_TAGS = ("temporal-bootstrap/environment", "temporal-bootstrap/purpose")


class SnapshotDatabase:
    def __init__(self, aws: AwsClients):
        self._aws = aws

    @activity.defn(name="snapshot_database")
    def snapshot_database(self, input: SnapshotDatabaseInput) -> SnapshotDatabaseResult:
        env, name = input.environment, input.snapshot_id
        rds = self._aws.client("rds", env.rds.region)
        where = f"RDS snapshot {name!r} of instance {env.rds.instance_id!r}"
        found = self._describe(rds, name, where)
        if found is not None:
            created = found.get("SnapshotCreateTime")
            if created is not None and created < input.not_before - _CLOCK_SKEW:
                raise activity_error(
                    f"{where} exists already, taken {created:%Y-%m-%d %H:%M:%S %Z}, before this "
                    f"upgrade started: it is an earlier upgrade's backup, not this hop's. Keep "
                    f"it under another name (aws rds copy-db-snapshot, then delete it with aws "
                    f"rds delete-db-snapshot --db-snapshot-identifier {name} --region "
                    f"{env.rds.region}), then retry; or skip this step on purpose",
                    ErrorType.SNAPSHOT_CONFLICT,
                )
            action = "reused"
        elif input.dry_run:
            return self._result(input, None, "would create")
        else:
            found = self._create(rds, input, where)
            action = "created"
        if input.dry_run:
            return self._result(input, found, "reused")
        found = self._wait(rds, input, where)
        activity.logger.info("%s %s and available", where, action)
        return self._result(input, found, action)

    def _describe(self, rds: Any, name: str, where: str) -> dict[str, Any] | None:
        try:
            snapshots = rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"]
        except AWS_ERRORS as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code == "DBSnapshotNotFound":
                return None
            raise aws_error(f"describing {where}", exc, ErrorType.CONFIGURATION_MISMATCH) from None
        return dict(snapshots[0]) if snapshots else None

    def _create(self, rds: Any, input: SnapshotDatabaseInput, where: str) -> dict[str, Any]:
        env = input.environment
        try:
            response = rds.create_db_snapshot(
                DBSnapshotIdentifier=input.snapshot_id,
                DBInstanceIdentifier=env.rds.instance_id,
                Tags=[
                    {"Key": _TAGS[0], "Value": env.name},
                    {"Key": _TAGS[1], "Value": "before a Temporal upgrade hop"},
                ],
            )
        except AWS_ERRORS as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code == "DBSnapshotAlreadyExists":  # another attempt won the race: the same one
                found = self._describe(rds, input.snapshot_id, where)
                if found is not None:
                    return found
            raise aws_error(f"creating {where}", exc, ErrorType.CONFIGURATION_MISMATCH) from None
        activity.logger.info("%s created", where)
        return dict(response["DBSnapshot"])

    def _wait(self, rds: Any, input: SnapshotDatabaseInput, where: str) -> dict[str, Any]:
        """The boto3 waiter, one round per heartbeat, until the snapshot is available."""
        waiter = rds.get_waiter("db_snapshot_available")
        delay = max(1, int(input.poll_interval.total_seconds()))
        started = time.monotonic()
        while True:
            try:
                waiter.wait(
                    DBSnapshotIdentifier=input.snapshot_id,
                    WaiterConfig={"Delay": delay, "MaxAttempts": 1},
                )
            except WaiterError as exc:
                last = (exc.last_response or {}).get("DBSnapshots") or [{}]
                status = str(last[0].get("Status") or "missing")
                if "terminal failure" in str(exc) or status in ("failed", "deleted", "deleting"):
                    raise activity_error(
                        f"{where} is {status}; RDS did not complete it. See aws rds "
                        f"describe-events --source-type db-snapshot --source-identifier "
                        f"{input.snapshot_id}; then retry (after deleting it) or abort",
                        ErrorType.SNAPSHOT_FAILED,
                    ) from None
                activity.heartbeat(
                    {
                        "phase": f"waiting for snapshot {input.snapshot_id} ({status})",
                        "elapsed_s": round(time.monotonic() - started, 1),
                    }
                )
                time.sleep(delay)
                continue
            except AWS_ERRORS as exc:
                raise aws_error(f"waiting for {where}", exc, ErrorType.SNAPSHOT_FAILED) from None
            found = self._describe(rds, input.snapshot_id, where)
            if found is not None:
                return found

    def _result(
        self, input: SnapshotDatabaseInput, found: dict[str, Any] | None, action: Any
    ) -> SnapshotDatabaseResult:
        created: datetime | None = (found or {}).get("SnapshotCreateTime")
        status = str((found or {}).get("Status") or "missing")
        verb = {"created": "created", "reused": "taken earlier in this upgrade"}.get(action, action)
        return SnapshotDatabaseResult(
            snapshot_id=input.snapshot_id,
            instance_id=input.environment.rds.instance_id,
            status=status,
            created_at=created,
            action=action,
            changed=action == "created" or action == "would create",
            summary=f"snapshot {input.snapshot_id} {verb} ({status})",
            dry_run=input.dry_run,
        )
