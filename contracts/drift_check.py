"""Input, findings and result of the drift-check workflow (`drift-check-<environment>`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field

from contracts.base import DriftItem, FrozenModel
from contracts.bootstrap import StepDeadlines
from contracts.operator import RefusedInput
from declared_state.models import DriftPolicy, Environment

# What the drift check compares, in bootstrap order: the state each step owns.
DRIFT_CHECKED_STEPS = (
    "ensure_ca_bundle",
    "ensure_db_secret",
    "install_chart",
    "register_namespaces",
)


def drift_check_workflow_id(environment: str) -> str:
    """A check started by hand: `drift-check-<environment>` (one at a time)."""
    return f"drift-check-{environment}"


def drift_schedule_id(environment: str) -> str:
    """The Temporal Schedule that runs the check every `drift_check.interval`."""
    return f"drift-check-{environment}"


class DriftCheckInput(FrozenModel):
    """A frozen snapshot of the declared environment (no secret values), like BootstrapInput."""

    environment: Environment
    requested_by: str = "unknown"
    policy: DriftPolicy | None = Field(
        default=None, description="Overrides the environment's drift_check.policy for this run."
    )
    deadlines: StepDeadlines = StepDeadlines()
    approval_timeout: timedelta | None = Field(
        default=None,
        description="policy ask: how long to wait for `approve` (default: drift_check.interval).",
    )

    @property
    def effective_policy(self) -> DriftPolicy:
        return self.policy or self.environment.drift_check.policy


class FindingStatus(StrEnum):
    IN_SYNC = "in sync"
    DRIFTED = "drifted"
    CHECK_FAILED = "check failed"
    REPAIRED = "repaired"
    REPAIR_FAILED = "repair failed"


class DriftFinding(FrozenModel):
    """What one step's state looked like against the declaration."""

    step: str
    status: FindingStatus
    action: str = Field(
        default="", description="what the step would do (drifted) or did (repaired)"
    )
    drift: tuple[DriftItem, ...] = ()
    error: str = ""


class DriftState(StrEnum):
    CHECKING = "checking"
    WAITING_FOR_APPROVAL = "waiting for approval"
    REPAIRING = "repairing"
    IN_SYNC = "in sync"
    DRIFTED = "drifted"
    REPAIRED = "repaired"
    CHECK_FAILED = "check failed"


class DriftCheckResult(FrozenModel):
    """Every checked step; `state` sums it up (also the `progress` query's answer)."""

    environment: str
    policy: DriftPolicy
    state: DriftState
    findings: tuple[DriftFinding, ...] = ()
    approved_by: str | None = None
    checked_at: datetime | None = None
    refused: tuple[RefusedInput, ...] = Field(
        default=(), description="operator signals the check did not act on (newest last)"
    )

    @property
    def drifted_steps(self) -> tuple[str, ...]:
        return tuple(f.step for f in self.findings if f.status == FindingStatus.DRIFTED)
