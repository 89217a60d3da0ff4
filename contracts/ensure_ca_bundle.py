"""ensure_ca_bundle: publish the RDS CA bundle as the ConfigMap the server pods mount."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import KUBERNETES_WRITE_RETRY, StepSpec
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.bootstrap import BootstrapInput

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


SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="ensure_ca_bundle",
    activity=ensure_ca_bundle,
    make_input=lambda i: EnsureCaBundleInput(environment=i.environment),
    deadline=lambda i: i.deadlines.ensure_ca_bundle,
    start_to_close=lambda i: timedelta(minutes=1),
    retry=KUBERNETES_WRITE_RETRY,
    after=(),  # its own ConfigMap, from S3: needs nothing another step does
    drift_checked=True,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
