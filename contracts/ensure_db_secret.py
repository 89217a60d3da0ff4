"""ensure_db_secret: the Kubernetes Secret both Temporal stores read their DB password from."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import KUBERNETES_WRITE_RETRY, StepSpec
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.bootstrap import BootstrapInput


class EnsureDbSecretInput(FrozenModel):
    """The environment whose DB password Secret is ensured."""

    environment: Environment
    dry_run: bool = False
    """Report what would change; write nothing."""


class EnsureDbSecretResult(StepResult):
    """Which Secret and keys, and what this run did (never the values)."""

    secret: str
    namespace: str
    keys: tuple[str, ...]
    action: Literal["created", "updated", "unchanged", "verified"]


@activity.defn(name="ensure_db_secret")
def ensure_db_secret(input: EnsureDbSecretInput) -> EnsureDbSecretResult:
    """Typed reference the workflows call; implemented by activities/ensure_db_secret.py."""
    raise NotImplementedError


SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="ensure_db_secret",
    activity=ensure_db_secret,
    make_input=lambda i: EnsureDbSecretInput(environment=i.environment),
    deadline=lambda i: i.deadlines.ensure_db_secret,
    start_to_close=lambda i: timedelta(minutes=1),
    retry=KUBERNETES_WRITE_RETRY,
    after=(),  # its own Secret, from Secrets Manager: needs nothing another step does
    drift_checked=True,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
