"""moto as the AWS stand-in: an RDS MySQL instance pointing at the local MariaDB, the DB
password in Secrets Manager and the CA bundle in S3.

The server runs in-process (`ThreadedMotoServer`) so tests can change backend state
directly; `python -m local_stack.aws serve` runs the same thing as a background process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stack.processes import LOOPBACK, wait_for_stop_signal

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
RDS_INSTANCE_ID = "temporal-local"
RDS_ENGINE_VERSION = "8.0.39"
SECRET_ID = "temporal/local/db"
CA_BUCKET = "temporal-local-rds-ca"
CA_KEY = "global-bundle.pem"

RDS_STATES = ("available", "creating", "modifying", "backing-up", "stopped", "deleting")


def aws_env(endpoint_url: str) -> dict[str, str]:
    """Environment that sends every boto3 client to the stand-in with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # No instance-metadata probing (it would wait for timeouts offline).
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _point_endpoint_at(instance: Any, address: str) -> None:
    # moto derives Endpoint.Address from the identifier (a property on the class); give
    # this one instance a subclass whose address is our MariaDB host.
    base = type(instance)
    local_cls = type(
        "LocalEndpointDBInstance", (base,), {"address": property(lambda _self: address)}
    )
    instance.__class__ = local_cls


class MotoAlreadyRunning(RuntimeError):
    pass


@dataclass
class DatabaseTarget:
    """What the RDS instance, secret and S3 object describe."""

    host: str
    port: int
    password: str = field(repr=False)
    ca_bundle: Path
    user: str = "temporal_app"


@dataclass
class LocalAws:
    """A moto server on 127.0.0.1 seeded with the RDS/Secrets Manager/S3 data."""

    db: DatabaseTarget
    endpoint_url: str = ""
    _server: Any = field(default=None, repr=False)

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> LocalAws:
        global _running
        from moto.server import ThreadedMotoServer

        with _running_lock:
            if _running is not None:
                raise MotoAlreadyRunning(
                    f"a LocalAws is already running in this process ({_running.endpoint_url}); "
                    "moto's backends are process-global, so a second one would overwrite its "
                    "RDS instance, secret and S3 object: share the running one"
                )
            _running = self

        # werkzeug logs every request to stderr; tests and the CLI log stay readable.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # port=0: the OS picks a free port while binding, so there is no race.
        try:
            self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
            self._server.start()
            host, port = self._server.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
            self.seed()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        global _running
        if self._server is not None:
            self._server.stop()
            self._server = None
        with _running_lock:
            if _running is self:
                _running = None

    @property
    def env(self) -> dict[str, str]:
        return aws_env(self.endpoint_url)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    # --- seed data -------------------------------------------------------------------
    def seed(self) -> None:
        """(Re)create the RDS instance, secret and CA object; safe to call again."""
        self.delete_rds_instance()
        self.create_rds_instance()
        sm = self.client("secretsmanager")
        secret = json.dumps(
            {
                "username": self.db.user,
                "password": self.db.password,
                # One DB user serves both stores locally.
                "visibility_password": self.db.password,
            }
        )
        try:
            sm.create_secret(Name=SECRET_ID, SecretString=secret)
        except sm.exceptions.ResourceExistsException:
            sm.put_secret_value(SecretId=SECRET_ID, SecretString=secret)
        s3 = self.client("s3")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=CA_BUCKET)
        s3.put_object(Bucket=CA_BUCKET, Key=CA_KEY, Body=self.db.ca_bundle.read_bytes())

    def create_rds_instance(self) -> None:
        self.client("rds").create_db_instance(
            DBInstanceIdentifier=RDS_INSTANCE_ID,
            DBInstanceClass="db.t4g.micro",
            Engine="mysql",
            EngineVersion=RDS_ENGINE_VERSION,
            AllocatedStorage=20,
            MasterUsername="admin",
            MasterUserPassword=self.db.password,
            Port=self.db.port,
        )
        _point_endpoint_at(self._rds_instance(), self.db.host)

    # --- state changes for tests -------------------------------------------------------
    def _rds_backend(self) -> Any:
        from moto.rds.models import rds_backends

        return rds_backends[ACCOUNT_ID][REGION]

    def _rds_instance(self) -> Any:
        instance = self._rds_backend().databases.get(RDS_INSTANCE_ID)
        if instance is None:
            raise LookupError(f"RDS instance {RDS_INSTANCE_ID} does not exist")
        return instance

    def set_rds_status(self, status: str) -> None:
        """Put the RDS instance into `status` (creating, modifying, stopped, deleting, ...)."""
        if self._rds_backend().databases.get(RDS_INSTANCE_ID) is None:
            self.create_rds_instance()
        self._rds_instance().status = status

    def snapshots_stay_creating(self, held: bool) -> None:
        """While `held`, a new DB snapshot stays `creating` (real RDS takes minutes; moto
        makes it `available` at once), so a test can catch the snapshot step in its waiter;
        releasing makes every held snapshot `available`, as RDS finishing them would.
        Simplification: only the status moves; moto's progress and timing fields do not."""
        backend = self._rds_backend()
        if held:
            cls_create = type(backend).create_db_snapshot

            def create(*args: Any, **kwargs: Any) -> Any:
                snapshot = cls_create(backend, *args, **kwargs)
                snapshot.status = "creating"
                return snapshot

            backend.create_db_snapshot = create
            return
        backend.__dict__.pop("create_db_snapshot", None)
        for snapshot in backend.database_snapshots.values():
            if snapshot.status == "creating":
                snapshot.status = "available"

    def rds_status(self) -> str | None:
        instance = self._rds_backend().databases.get(RDS_INSTANCE_ID)
        return None if instance is None else str(instance.status)

    def delete_rds_instance(self) -> None:
        """Make the instance missing (DBInstanceNotFound from describe)."""
        backend = self._rds_backend()
        if RDS_INSTANCE_ID in backend.databases:
            backend.delete_db_instance(RDS_INSTANCE_ID, skip_final_snapshot=True)

    def state(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "region": REGION,
            "rds_instance_identifier": RDS_INSTANCE_ID,
            "secret_id": SECRET_ID,
            "ca_bucket": CA_BUCKET,
            "ca_key": CA_KEY,
            "env": self.env,
        }


_running: LocalAws | None = None
_running_lock = threading.Lock()


@contextlib.contextmanager
def local_aws(db: DatabaseTarget) -> Iterator[LocalAws]:
    """Fixture-style: seeded in-process moto server, stopped on exit."""
    aws = LocalAws(db).start()
    try:
        yield aws
    finally:
        aws.stop()


def _serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.aws serve")
    parser.add_argument("--db-host", required=True)
    parser.add_argument("--db-port", type=int, required=True)
    parser.add_argument("--ca-bundle", type=Path, required=True)
    args = parser.parse_args(argv)
    # The password comes through the environment so it does not show up in `ps`.
    password = os.environ["LOCAL_STACK_DB_PASSWORD"]
    aws = LocalAws(DatabaseTarget(args.db_host, args.db_port, password, args.ca_bundle)).start()
    print(json.dumps(aws.state()), flush=True)
    wait_for_stop_signal()
    aws.stop()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        sys.exit("usage: python -m local_stack.aws serve --db-host H --db-port P --ca-bundle F")
    sys.exit(_serve(sys.argv[2:]))
