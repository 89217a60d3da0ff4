"""Input, findings and result of the drift-check workflow (`drift-check-<environment>`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field

from contracts.base import DriftItem, FrozenModel
from contracts.bootstrap import StepDeadlines
from contracts.operator import RefusedInput
from declared_state.models import DriftPolicy, Environment

# What the drift check compares is the specs marked `drift_checked` (workflows/drift_check.py
# CHECKED). Runs started before the live checks existed replay with the steps they had.
DRIFT_CHECKED_STEPS_V1 = (
    "ensure_ca_bundle",
    "ensure_db_secret",
    "install_chart",
    "register_namespaces",
)
LIVE_CHECKS_PATCH = "live-object-and-temporal-checks"
LEFT_ALONE_PATCH = "left-alone-drift"
"""Runs with this marker call a repaired step whose re-check finds only `left_alone`
differences (namespaces nobody declared) drifted, not "not restored" (a failed repair), and
do not let such differences keep `remediate` from running the step for its other ones."""

# A read-only check's drift is repaired by running another step for real, with these input
# options; a check mapped to None is repaired by nothing remediate does (its findings name
# the commands). Steps not listed repair their own drift.
REPAIRED_BY: dict[str, tuple[str, dict[str, bool]] | None] = {
    "check_live_objects": ("install_chart", {"reapply": True}),
    "check_temporal": None,
}


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
    """The check could not run, or could not read part of what it checks (`unchecked`)."""
    REPAIRED = "repaired"
    REPAIR_FAILED = "repair failed"
    NOT_RESTORED = "not restored"
    """The repair ran, and the check after it still finds these differences."""


class DriftFinding(FrozenModel):
    """What one step's state looked like against the declaration."""

    step: str
    status: FindingStatus
    action: str = Field(
        default="", description="what the step would do (drifted) or did (repaired)"
    )
    drift: tuple[DriftItem, ...] = ()
    error: str = ""
    unchecked: tuple[DriftItem, ...] = ()
    """What the check could not read ("could not check")."""
    would_change: bool = False
    """The step's dry run said a real run would change something."""
    notes: tuple[str, ...] = ()
    """What the step left alone because the declaration says so (StepResult.notes): shown
    as information, never drift."""

    @property
    def shown(self) -> tuple[DriftItem, ...]:
        """The differences not covered by an ignore rule."""
        return tuple(d for d in self.drift if not d.ignored)

    @property
    def ignored(self) -> int:
        return sum(1 for d in self.drift if d.ignored)

    @property
    def repairable(self) -> bool:
        """Would running a step for real change something here?"""
        return self.would_change or any(d.repairable for d in self.shown)

    @property
    def forbids_its_own_run(self) -> bool:
        """A step's own finding with a difference its run must not touch: install_chart
        when another chart version is declared (re-applying would upgrade the cluster
        without its schema step; only `upgrade` moves versions). A `left_alone` difference
        (a namespace nobody declared) is not one: the run never touches it (the workflow
        asks LEFT_ALONE_PATCH before it relies on that)."""
        return any(not d.repairable and not d.left_alone for d in self.shown)


class DriftRecord(FrozenModel):
    """One difference (or one thing that could not be checked), flat, for scripts and
    alerting: `starter.py drift ENV --output json` prints these, the `progress` query carries
    them. Fields are only ever added, never renamed or removed."""

    step: str
    status: FindingStatus
    """The step's finding: drifted, repaired, not restored, ..."""
    kind: str
    namespace: str
    name: str
    path: str
    live: str | None
    """JSON text of the live value (a digest for Secret content); null when absent."""
    declared: str | None
    ignored: bool
    repairable: bool
    """`remediate` repairs it; false: `how` names what does."""
    how: str
    message: str
    checked: bool = True
    """False: could not be read (forbidden, not answering); neither in sync nor drifted."""
    version_skew: bool = False
    """Caused by the cluster running another chart or server version than declared: not
    repairable, `how` says to move it with `starter.py upgrade`."""


def drift_records(findings: tuple[DriftFinding, ...]) -> tuple[DriftRecord, ...]:
    """Every difference and every unchecked item of `findings`, in check order."""
    records = []
    for finding in findings:
        for item, checked in [(d, True) for d in finding.drift] + [
            (u, False) for u in finding.unchecked
        ]:
            records.append(
                DriftRecord(
                    step=finding.step,
                    status=finding.status,
                    kind=item.kind,
                    namespace=item.namespace,
                    name=item.name,
                    path=item.path,
                    live=item.live,
                    declared=item.declared,
                    ignored=item.ignored,
                    repairable=item.repairable and checked and not item.ignored,
                    how=item.how,
                    message=item.message,
                    checked=checked,
                    version_skew=item.version_skew,
                )
            )
    return tuple(records)


class DriftState(StrEnum):
    CHECKING = "checking"
    WAITING_FOR_APPROVAL = "waiting for approval"
    REPAIRING = "repairing"
    IN_SYNC = "in sync"
    DRIFTED = "drifted"
    REPAIRED = "repaired"
    REPAIR_FAILED = "repair failed"
    """remediate ran, and something is still different (helm did not restore it, or the
    repair itself failed)."""
    CHECK_FAILED = "check failed"


class DriftCheckResult(FrozenModel):
    """Every checked step; `state` sums it up (also the `progress` query's answer)."""

    environment: str
    policy: DriftPolicy
    state: DriftState
    findings: tuple[DriftFinding, ...] = ()
    approved_by: str | None = None
    checked_at: datetime | None = None
    records: tuple[DriftRecord, ...] = ()
    """`findings` flattened: one record per difference (see DriftRecord)."""
    refused: tuple[RefusedInput, ...] = Field(
        default=(), description="operator signals the check did not act on (newest last)"
    )
    refused_dropped: int = Field(
        default=0, description="refused signals older than those listed (the history has all)"
    )

    @property
    def drifted_steps(self) -> tuple[str, ...]:
        return tuple(f.step for f in self.findings if f.status == FindingStatus.DRIFTED)
