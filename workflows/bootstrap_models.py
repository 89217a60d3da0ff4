"""Input, progress, signals and result of the bootstrap workflow.

Shared by the workflow, the starter and the tests. Pure pydantic: no I/O, safe in the
workflow sandbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from declared_state.models import Environment

BOOTSTRAP_STEPS = (
    "check_database",
    "ensure_ca_bundle",
    "ensure_db_secret",
    "approval",
    "install_chart",
    "wait_frontend_healthy",
    "register_namespaces",
)


def bootstrap_workflow_id(environment: str) -> str:
    """One provisioning run per environment at a time: `provision-<environment>`."""
    return f"provision-{environment}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StepDeadlines(_Frozen):
    """How long each step may take in total (all retries) before it waits for an operator."""

    check_database: timedelta = timedelta(minutes=10)
    ensure_ca_bundle: timedelta = timedelta(minutes=5)
    ensure_db_secret: timedelta = timedelta(minutes=5)
    install_chart: timedelta = timedelta(minutes=30)
    wait_frontend_healthy: timedelta = timedelta(minutes=15)
    register_namespaces: timedelta = timedelta(minutes=10)
    helm_timeout: timedelta = Field(
        default=timedelta(minutes=10), description="helm --timeout of one install attempt"
    )
    frontend_max_wait: timedelta = Field(
        default=timedelta(minutes=5), description="health polling within one attempt"
    )


class BootstrapInput(_Frozen):
    """A frozen snapshot of the environment, taken by the starter; no secret values."""

    environment: Environment
    requested_by: str = "unknown"
    deadlines: StepDeadlines = StepDeadlines()
    dry_run: bool = Field(default=False, description="Run the read-only preflight only.")


class OperatorSignal(_Frozen):
    """Payload of retry / skip / abort / approve / pause / resume (every field optional)."""

    by: str = "unknown"
    reason: str = ""


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_FOR_OPERATOR = "waiting for operator"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


class StepProgress(BaseModel):
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
    details: dict[str, Any] = Field(default_factory=dict)
    operator_actions: list[str] = Field(default_factory=list)


class RunState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_FOR_OPERATOR = "waiting for operator"
    DONE = "done"
    ABORTED = "aborted"


class BootstrapProgress(BaseModel):
    """Answer of the `progress` query: where the run is and what each step did."""

    environment: str
    state: RunState
    steps: list[StepProgress]
    waiting_for: str | None = Field(
        default=None, description="what the operator is asked for, when the run waits"
    )
    approved_by: str | None = None
    dry_run: bool = False

    def step(self, name: str) -> StepProgress:
        return next(s for s in self.steps if s.name == name)


class BootstrapResult(BaseModel):
    """The final record of a finished run (an aborted run fails with the same list)."""

    environment: str
    state: RunState
    steps: list[StepProgress]
    approved_by: str | None = None
    changed: bool = False
