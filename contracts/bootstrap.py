"""Input, progress and result of the bootstrap workflow (`provision-<environment>`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, SerializeAsAny

from contracts.base import FrozenModel, StepResult, differing_paths
from contracts.check_database import CheckDatabaseResult
from contracts.check_images import CheckImagesResult
from contracts.check_server_version import CheckServerVersionResult
from contracts.ensure_ca_bundle import EnsureCaBundleResult
from contracts.ensure_db_secret import EnsureDbSecretResult
from contracts.install_chart import InstallChartResult
from contracts.operator import OperatorAction, RefusedInput
from contracts.read_live_versions import ReadLiveVersionsResult
from contracts.register_namespaces import RegisterNamespacesResult
from contracts.snapshot_database import SnapshotDatabaseResult
from contracts.soak import SoakResult
from contracts.update_schema import UpdateSchemaResult
from contracts.wait_frontend_healthy import WaitFrontendHealthyResult
from declared_state.models import Environment


class UnlistedStepResult(StepResult):
    """A result of a step AnyStepResult does not list, read back from JSON: the StepResult
    fields every workflow reads, and the step's own fields kept as they came."""

    model_config = ConfigDict(extra="allow")


AnyStepResult = Annotated[
    CheckDatabaseResult
    | EnsureCaBundleResult
    | EnsureDbSecretResult
    | InstallChartResult
    | WaitFrontendHealthyResult
    | RegisterNamespacesResult
    | ReadLiveVersionsResult
    | SnapshotDatabaseResult
    | UpdateSchemaResult
    | CheckServerVersionResult
    | SoakResult
    | CheckImagesResult
    | SerializeAsAny[StepResult]
    | SerializeAsAny[UnlistedStepResult],
    Field(union_mode="left_to_right"),
]
"""The typed result of any step, as the progress query and the run's result carry it; a
step this union does not name (a new one) is carried whole, its own fields included, and
read back as an UnlistedStepResult."""


def bootstrap_workflow_id(environment: str) -> str:
    """One provisioning run per environment at a time: `provision-<environment>`."""
    return f"provision-{environment}"


class StepDeadlines(FrozenModel):
    """How long each step may take in total (all retries) before it waits for an operator.

    The steps' specs read these (a run's input may set them); they stay fields because run
    inputs in recorded histories carry them. A new step's spec needs no field here: its
    `deadline` may return a fixed value (contracts/step_spec.py)."""

    check_database: timedelta = timedelta(minutes=10)
    ensure_ca_bundle: timedelta = timedelta(minutes=5)
    ensure_db_secret: timedelta = timedelta(minutes=5)
    install_chart: timedelta = timedelta(minutes=30)
    wait_frontend_healthy: timedelta = timedelta(minutes=15)
    register_namespaces: timedelta = timedelta(minutes=10)
    read_live_versions: timedelta = timedelta(minutes=10)
    check_live_objects: timedelta = timedelta(minutes=5)
    check_temporal: timedelta = timedelta(minutes=5)
    helm_timeout: timedelta = Field(
        default=timedelta(minutes=10), description="helm --timeout of one install attempt"
    )
    frontend_max_wait: timedelta = Field(
        default=timedelta(minutes=5), description="health polling within one attempt"
    )


class BootstrapInput(FrozenModel):
    """A frozen snapshot of the environment, taken by the starter; no secret values."""

    environment: Environment
    requested_by: str = "unknown"
    deadlines: StepDeadlines = StepDeadlines()
    dry_run: bool = Field(default=False, description="Run the read-only preflight only.")


class Redeclaration(FrozenModel):
    """A new declaration handed to a run that waits for an operator (`redeclare` update):
    the waiting step runs again with it, and so does every later step."""

    environment: Environment
    by: str = Field(default="unknown", max_length=200)
    reason: str = Field(default="", max_length=2000)


def declaration_changes(old: Environment, new: Environment) -> tuple[str, ...]:
    """The key paths (`rds.port`, `temporal_namespaces[0].retention`) where two
    declarations differ; () when they are the same. Paths only, never values."""
    paths = differing_paths(old.model_dump(mode="json"), new.model_dump(mode="json"))
    return tuple(path or "(everything)" for path in paths)


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_FOR_OPERATOR = "waiting for operator"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


class StepProgress(FrozenModel):
    """One step as the `progress` query and the result show it."""

    name: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = Field(default=0, description="times the workflow ran this step's activity")
    last_error: str | None = None
    last_error_type: str | None = None
    retry_state: str | None = Field(
        default=None,
        description="why retries ended: NON_RETRYABLE_FAILURE, TIMEOUT (deadline), MAXIMUM_ATTEMPTS_REACHED",
    )
    started_at: datetime | None = None
    ended_at: datetime | None = None
    changed: bool | None = Field(default=None, description="did the step change anything")
    summary: str = ""
    result: AnyStepResult | None = Field(
        default=None, description="the step's typed result, once it is done"
    )
    operator_actions: tuple[str, ...] = ()


class RunState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_FOR_OPERATOR = "waiting for operator"
    DONE = "done"
    ABORTED = "aborted"


class BootstrapProgress(FrozenModel):
    """Answer of the `progress` query: where the run is and what each step did."""

    environment: str
    state: RunState
    steps: tuple[StepProgress, ...]
    waiting_for: str | None = Field(
        default=None, description="what the operator is asked for, when the run waits"
    )
    allowed_actions: tuple[OperatorAction, ...] = Field(
        default=(), description="the operator actions the run takes now"
    )
    approved_by: str | None = None
    dry_run: bool = False
    refused: tuple[RefusedInput, ...] = Field(
        default=(), description="operator signals the run did not act on (newest last)"
    )
    refused_dropped: int = Field(
        default=0, description="refused signals older than those listed (the history has all)"
    )

    def step(self, name: str) -> StepProgress:
        return next(s for s in self.steps if s.name == name)


class BootstrapResult(FrozenModel):
    """The final record of a finished run (an aborted run fails with the same list)."""

    environment: str
    state: RunState
    steps: tuple[StepProgress, ...]
    approved_by: str | None = None
    changed: bool = False
