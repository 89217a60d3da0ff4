"""ensure_ca_bundle: publish the RDS CA bundle as the ConfigMap the server pods mount."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from declared_state.models import Environment

WriteAction = Literal["created", "updated", "unchanged"]


class EnsureCaBundleInput(FrozenModel):
    """The environment whose CA bundle is published."""

    environment: Environment
    dry_run: bool = False
    """Report what would change; write nothing."""


class EnsureCaBundleResult(StepResult):
    """Where the bundle is, whether this run wrote it (or would), and what it holds."""

    config_map: str
    namespace: str
    key: str
    action: WriteAction
    sha256: str
    certificates: int
    earliest_expiry: datetime
    pod_security: WriteAction | None = None
    """What labelling the namespace with its Pod Security level did; None with `none`."""


@activity.defn(name="ensure_ca_bundle")
def ensure_ca_bundle(input: EnsureCaBundleInput) -> EnsureCaBundleResult:
    """Typed reference the workflows call; implemented by activities/ensure_ca_bundle.py."""
    raise NotImplementedError
