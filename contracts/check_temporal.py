"""check_temporal: what no Kubernetes tool sees: the running Temporal cluster against the
declaration (frontend health, server version, history shards, schema versions)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.check_database import StoreSchema
from contracts.step_spec import PREFLIGHT_RETRY, StepSpec
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.bootstrap import BootstrapInput


class CheckTemporalInput(FrozenModel):
    """The environment whose running cluster is checked."""

    environment: Environment
    dry_run: bool = False
    """Accepted for symmetry with the other steps: this step only ever reads, and nothing it
    finds is repaired by running it (each finding names the command that repairs it)."""


class CheckTemporalResult(StepResult):
    """What the cluster reported (None: could not be read) against what is declared."""

    frontend: str
    """The frontend as messages name it (a Service and port, or an address)."""
    health: str
    """SERVING, NOT_SERVING, or `unreachable: <why>`."""
    server_version: str | None = None
    declared_server_version: str
    history_shards: int | None = None
    declared_history_shards: int | None = None
    schemas: tuple[StoreSchema, ...] = ()
    """Each database's schema version and what the running server (or, when it cannot be
    asked, the declared one) needs."""


@activity.defn(name="check_temporal")
def check_temporal(input: CheckTemporalInput) -> CheckTemporalResult:
    """Typed reference the workflows call; implemented by activities/check_temporal.py."""
    raise NotImplementedError


SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="check_temporal",
    activity=check_temporal,
    make_input=lambda i: CheckTemporalInput(environment=i.environment),
    deadline=lambda i: i.deadlines.check_temporal,
    start_to_close=lambda i: timedelta(minutes=2),
    retry=PREFLIGHT_RETRY,
    read_only=True,
    drift_checked=True,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
