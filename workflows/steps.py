"""The step registry: how every workflow runs each step's activity.

One `StepActivity` per step: the typed activity reference from `contracts/<step>.py`, how to
build its input from the run's input, its deadline (all attempts), its per-attempt timeout,
heartbeat and retry policy. The bootstrap runs them in order, the drift check dry-runs the
ones that own state, and the upgrade runs install_chart and wait_frontend_healthy for each
hop (with the hop's chart) beside its own steps (`UPGRADE_STEP_ACTIVITIES`, built from a
`HopInput`), so a step behaves alike wherever it runs. A workflow that runs one step under
another record name (`hop 2: install_chart`) copies it with `dataclasses.replace(step,
name=...)`.

Retryability is not decided here: an activity error's type says whether it is permanent
(`adapters/errors` sets `non_retryable` from one table), so these policies only say how
often and how long to try what is worth trying.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

from contracts.base import FrozenModel, StepResult
from contracts.bootstrap import BootstrapInput
from contracts.check_database import CheckDatabaseInput, check_database
from contracts.check_images import CheckImagesInput, check_images
from contracts.check_live_objects import CheckLiveObjectsInput, check_live_objects
from contracts.check_server_version import CheckServerVersionInput, check_server_version
from contracts.check_temporal import CheckTemporalInput, check_temporal
from contracts.ensure_ca_bundle import EnsureCaBundleInput, ensure_ca_bundle
from contracts.ensure_db_secret import EnsureDbSecretInput, ensure_db_secret
from contracts.install_chart import InstallChartInput, install_chart
from contracts.read_live_versions import ReadLiveVersionsInput, read_live_versions
from contracts.register_namespaces import RegisterNamespacesInput, register_namespaces
from contracts.snapshot_database import SnapshotDatabaseInput, snapshot_database
from contracts.soak import SoakInput, soak
from contracts.update_schema import UpdateSchemaInput, update_schema
from contracts.upgrade import HopInput
from contracts.wait_frontend_healthy import WaitFrontendHealthyInput, wait_frontend_healthy

# The image preflight (check_images) came after runs were recorded: a run replays without
# it where its history has no marker (`workflow.patched`), and its record says so.
IMAGE_PREFLIGHT_PATCH = "image-preflight"
BEFORE_PREFLIGHT = "not run: the run started before the image preflight existed"

# Retry policies, one per concern.
PREFLIGHT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
KUBERNETES_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
HELM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=3,  # each attempt may wait the whole helm --timeout
)
FRONTEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=1.5,
    maximum_interval=timedelta(seconds=30),
)
NAMESPACE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)

AWS_WAIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
)
# A schema Job that is still running is waited for again; the Job itself is never doubled.
SCHEMA_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)

INSTALL_HEARTBEAT = timedelta(seconds=30)
WAIT_HEARTBEAT = timedelta(seconds=30)

# Contravariant: a step built from a BootstrapInput runs from a HopInput (a BootstrapInput).
RunInput = TypeVar("RunInput", bound=FrozenModel, contravariant=True)


@dataclass(frozen=True)
class StepActivity(Generic[RunInput]):
    """How the workflows run one step's activity: its input, timeouts and retry policy,
    each built from the run's input (`RunInput`: a BootstrapInput, or a HopInput)."""

    name: str
    activity: Callable[..., Any]
    """The typed reference from contracts/<step>.py (name and result type come from it)."""
    make_input: Callable[[RunInput], FrozenModel]
    deadline: Callable[[RunInput], timedelta]
    start_to_close: Callable[[RunInput], timedelta]
    retry: RetryPolicy
    heartbeat: timedelta | None = None
    read_only: bool = False

    async def execute(
        self,
        input: RunInput,
        *,
        dry_run: bool = False,
        within: timedelta | None = None,
        options: dict[str, Any] | None = None,
    ) -> StepResult:
        """Run this step's activity with its own timeouts and retry policy; `dry_run` asks it
        to report instead of change, `within` shortens its deadline, `options` set fields of
        its input (install_chart's `reapply`, say)."""
        activity_input = self.make_input(input)
        update = {**(options or {}), **({"dry_run": True} if dry_run else {})}
        if update:
            activity_input = activity_input.model_copy(update=update)
        deadline = self.deadline(input)
        start_to_close = self.start_to_close(input)
        if within is not None:
            deadline = min(deadline, within)
            start_to_close = min(start_to_close, deadline)
        result: StepResult = await workflow.execute_activity(
            self.activity,
            activity_input,
            schedule_to_close_timeout=deadline,
            start_to_close_timeout=start_to_close,
            heartbeat_timeout=self.heartbeat,
            retry_policy=self.retry,
        )
        return result


STEP_ACTIVITIES: dict[str, StepActivity[BootstrapInput]] = {
    s.name: s
    for s in (
        StepActivity[BootstrapInput](
            "check_database",
            check_database,
            lambda i: CheckDatabaseInput(environment=i.environment),
            lambda i: i.deadlines.check_database,
            lambda i: timedelta(minutes=1),
            PREFLIGHT_RETRY,
            read_only=True,
        ),
        StepActivity[BootstrapInput](
            "check_images",
            check_images,
            lambda i: CheckImagesInput(environment=i.environment),
            lambda i: i.deadlines.check_images,
            lambda i: timedelta(minutes=5),
            PREFLIGHT_RETRY,
            heartbeat=timedelta(seconds=30),
            read_only=True,
        ),
        StepActivity[BootstrapInput](
            "ensure_ca_bundle",
            ensure_ca_bundle,
            lambda i: EnsureCaBundleInput(environment=i.environment),
            lambda i: i.deadlines.ensure_ca_bundle,
            lambda i: timedelta(minutes=1),
            KUBERNETES_WRITE_RETRY,
        ),
        StepActivity[BootstrapInput](
            "ensure_db_secret",
            ensure_db_secret,
            lambda i: EnsureDbSecretInput(environment=i.environment),
            lambda i: i.deadlines.ensure_db_secret,
            lambda i: timedelta(minutes=1),
            KUBERNETES_WRITE_RETRY,
        ),
        StepActivity[BootstrapInput](
            "install_chart",
            install_chart,
            lambda i: InstallChartInput(
                environment=i.environment,
                timeout=i.deadlines.helm_timeout,
                # A retry comes only after the previous attempt missed its heartbeats for this
                # long, so a release still pending then was left by a dead helm: recover it.
                pending_grace=INSTALL_HEARTBEAT,
            ),
            lambda i: i.deadlines.install_chart,
            # a pending-release recovery (rollback wait), the upgrade wait and its own rollback
            lambda i: i.deadlines.helm_timeout * 3 + timedelta(minutes=1),
            HELM_RETRY,
            heartbeat=INSTALL_HEARTBEAT,
        ),
        StepActivity[BootstrapInput](
            "wait_frontend_healthy",
            wait_frontend_healthy,
            lambda i: WaitFrontendHealthyInput(
                environment=i.environment, max_wait=i.deadlines.frontend_max_wait
            ),
            lambda i: i.deadlines.wait_frontend_healthy,
            lambda i: i.deadlines.frontend_max_wait + timedelta(minutes=1),
            FRONTEND_RETRY,
            heartbeat=timedelta(seconds=30),
        ),
        StepActivity[BootstrapInput](
            "check_live_objects",
            check_live_objects,
            lambda i: CheckLiveObjectsInput(environment=i.environment),
            lambda i: i.deadlines.check_live_objects,
            lambda i: timedelta(minutes=2),
            PREFLIGHT_RETRY,
            read_only=True,
        ),
        StepActivity[BootstrapInput](
            "check_temporal",
            check_temporal,
            lambda i: CheckTemporalInput(environment=i.environment),
            lambda i: i.deadlines.check_temporal,
            lambda i: timedelta(minutes=2),
            PREFLIGHT_RETRY,
            read_only=True,
        ),
        StepActivity[BootstrapInput](
            "register_namespaces",
            register_namespaces,
            lambda i: RegisterNamespacesInput(environment=i.environment),
            lambda i: i.deadlines.register_namespaces,
            lambda i: timedelta(minutes=5),
            NAMESPACE_RETRY,
            heartbeat=timedelta(seconds=30),
        ),
        StepActivity[BootstrapInput](
            "read_live_versions",
            read_live_versions,
            lambda i: ReadLiveVersionsInput(environment=i.environment),
            lambda i: i.deadlines.read_live_versions,
            lambda i: timedelta(minutes=1),
            PREFLIGHT_RETRY,
            read_only=True,
        ),
    )
}

UPGRADE_STEP_ACTIVITIES: dict[str, StepActivity[HopInput]] = {
    s.name: s
    for s in (
        StepActivity[HopInput](
            "check_images",
            check_images,
            lambda i: CheckImagesInput(
                environment=i.environment,
                job_images=(
                    (i.hop.images.admin_tools.reference,)
                    if i.hop.images and i.hop.images.admin_tools
                    else ()
                ),
            ),
            lambda i: i.deadlines.check_images,
            lambda i: timedelta(minutes=5),
            PREFLIGHT_RETRY,
            heartbeat=timedelta(seconds=30),
            read_only=True,
        ),
        StepActivity[HopInput](
            "snapshot_database",
            snapshot_database,
            lambda i: SnapshotDatabaseInput(
                environment=i.environment, snapshot_id=i.snapshot_id, not_before=i.not_before
            ),
            lambda i: i.deadlines.snapshot_database,
            # one attempt waits for the snapshot in heartbeats; a retry takes the same one up
            lambda i: timedelta(minutes=30),
            AWS_WAIT_RETRY,
            heartbeat=WAIT_HEARTBEAT,
        ),
        StepActivity[HopInput](
            "update_schema",
            update_schema,
            lambda i: UpdateSchemaInput(environment=i.environment, hop=i.hop),
            lambda i: i.deadlines.update_schema,
            lambda i: timedelta(minutes=30),
            SCHEMA_RETRY,
            heartbeat=WAIT_HEARTBEAT,
        ),
        StepActivity[HopInput](
            "check_server_version",
            check_server_version,
            lambda i: CheckServerVersionInput(environment=i.environment, minimum=i.hop.server),
            lambda i: i.deadlines.check_server_version,
            lambda i: timedelta(minutes=1),
            FRONTEND_RETRY,
        ),
        StepActivity[HopInput](
            "soak",
            soak,
            lambda i: SoakInput(environment=i.environment, duration=i.environment.upgrade.soak),
            lambda i: i.environment.upgrade.soak * 2 + i.deadlines.soak_grace,
            lambda i: i.environment.upgrade.soak + i.deadlines.soak_grace,
            FRONTEND_RETRY,
            heartbeat=WAIT_HEARTBEAT,
        ),
    )
}
