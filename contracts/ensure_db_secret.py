"""ensure_db_secret: the Kubernetes Secret both Temporal stores read their DB password from."""

from __future__ import annotations

from typing import Literal

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from declared_state.models import Environment


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
