"""read_live_versions: what a cluster runs now (server release, chart, schema versions).

Read from the cluster, never assumed: the server version is the image tag of the release's
server Deployments (the oldest when they differ, mid-rollout), the chart is their
`helm.sh/chart` label, the schema versions are the databases' own `schema_version` rows.
The upgrade plans from it; the drift check reports how it differs from the declaration
(items that only `upgrade` repairs, never `remediate`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field
from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import PREFLIGHT_RETRY, StepSpec
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.bootstrap import BootstrapInput


class ReadLiveVersionsInput(FrozenModel):
    """The environment whose release and databases to read."""

    environment: Environment
    dry_run: bool = False
    """Accepted for symmetry with the other steps: this step only ever reads."""


class ReadLiveVersionsResult(StepResult):
    """The live versions; `server_version` None when no server Deployment exists. Never
    changes anything, so `changed` is always False."""

    release: str
    namespace: str
    chart: str | None = Field(description="the deployed chart version, e.g. 0.52.0")
    server_version: str | None = Field(description="the oldest server release running")
    server_versions: dict[str, str] = Field(
        default_factory=dict, description="per server Deployment (frontend, history, ...)"
    )
    default_schema: str | None = None
    visibility_schema: str | None = None

    @property
    def installed(self) -> bool:
        return self.server_version is not None


@activity.defn(name="read_live_versions")
def read_live_versions(input: ReadLiveVersionsInput) -> ReadLiveVersionsResult:
    """Typed reference the workflows call; implemented by activities/read_live_versions.py."""
    raise NotImplementedError


SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="read_live_versions",
    activity=read_live_versions,
    make_input=lambda i: ReadLiveVersionsInput(environment=i.environment),
    deadline=lambda i: i.deadlines.read_live_versions,
    start_to_close=lambda i: timedelta(minutes=1),
    retry=PREFLIGHT_RETRY,
    read_only=True,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
