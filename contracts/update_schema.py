"""update_schema: both Temporal databases to an upgrade hop's schema versions, by a
Kubernetes Job running `temporal-sql-tool update-schema` with the hop's admin-tools image,
verified by reading `schema_version` from the databases (the database is the truth)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import SCHEMA_RETRY, StepSpec, step_heartbeat
from declared_state.models import Environment
from declared_state.upgrade_path import Hop

if TYPE_CHECKING:
    from contracts.upgrade import HopInput


class UpdateSchemaInput(FrozenModel):
    environment: Environment
    hop: Hop
    poll_interval: timedelta = Field(default=timedelta(seconds=2), gt=timedelta(0))
    dry_run: bool = False
    """Read the databases and say whether a Job would run; create nothing."""


class StoreSchemaChange(FrozenModel):
    database: str
    before: str | None = Field(description="None: a Job of an earlier attempt had run already")
    after: str
    target: str


class UpdateSchemaResult(StepResult):
    job: str
    namespace: str
    image: str
    action: Literal["updated", "unchanged", "would update"]
    default_store: StoreSchemaChange
    visibility_store: StoreSchemaChange


@activity.defn(name="update_schema")
def update_schema(input: UpdateSchemaInput) -> UpdateSchemaResult:
    """Typed reference the workflows call; implemented by activities/update_schema.py."""
    raise NotImplementedError


SPEC: StepSpec[HopInput] = StepSpec(
    name="update_schema",
    activity=update_schema,
    make_input=lambda i: UpdateSchemaInput(environment=i.environment, hop=i.hop),
    deadline=lambda i: i.deadlines.update_schema,
    start_to_close=lambda i: timedelta(minutes=30),
    retry=SCHEMA_RETRY,
    heartbeat=step_heartbeat,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
