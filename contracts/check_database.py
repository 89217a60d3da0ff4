"""check_database: the read-only preflight of the RDS instance and both Temporal databases."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import PREFLIGHT_RETRY, StepSpec
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.bootstrap import BootstrapInput


class CheckDatabaseInput(FrozenModel):
    """The environment whose RDS instance and databases to check."""

    environment: Environment
    dry_run: bool = False
    """Accepted for symmetry with the other steps: this step only ever reads."""


class StoreSchema(FrozenModel):
    """Temporal's schema version in one database, and the version the target server needs."""

    database: str
    found: str
    required: str


class CheckDatabaseResult(StepResult):
    """What the preflight saw; every check passed when this is returned. Never changes
    anything, so `changed` is always False."""

    instance_id: str
    instance_status: str
    engine_version: str
    endpoint: str
    port: int
    ca_certificate_identifier: str | None
    ca_certificate_valid_till: datetime | None
    ca_bundle_certificates: int
    tls_server_name: str
    default_store: StoreSchema
    visibility_store: StoreSchema


@activity.defn(name="check_database")
def check_database(input: CheckDatabaseInput) -> CheckDatabaseResult:
    """Typed reference the workflows call; implemented by activities/check_database.py."""
    raise NotImplementedError


SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="check_database",
    activity=check_database,
    make_input=lambda i: CheckDatabaseInput(environment=i.environment),
    deadline=lambda i: i.deadlines.check_database,
    start_to_close=lambda i: timedelta(minutes=1),
    retry=PREFLIGHT_RETRY,
    # Reads only, but after the image preflight, so that the writes that run at once with it
    # (ensure_ca_bundle, ensure_db_secret) come after the preflight too; a name not in a
    # list is ignored there.
    after=("check_images",),
    read_only=True,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
