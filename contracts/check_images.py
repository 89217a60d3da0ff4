"""check_images: the image preflight. Before the first write of a provision or of an upgrade
hop, every image the rendered manifests and the hop's schema Job will pull is looked up in
its registry (OCI distribution API); a missing one stops the run there, with nothing
written. Read-only."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import PREFLIGHT_RETRY, StepSpec
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.bootstrap import BootstrapInput
    from contracts.upgrade import HopInput


class CheckImagesInput(FrozenModel):
    environment: Environment
    job_images: tuple[str, ...] = ()
    """Images a step pulls beside the chart's manifests (an upgrade hop's schema Job)."""
    dry_run: bool = False
    """Nothing to skip: the check writes nothing either way."""


class ImageCheck(FrozenModel):
    image: str
    used_by: tuple[str, ...]
    """What pulls it: `Deployment/temporal-web`, `schema Job`."""
    registry: str
    asked: str
    """The base URL asked (the registry's, or its mirror's)."""
    outcome: Literal["found", "missing", "denied", "unreachable"]
    digest: str | None = None
    """The manifest digest the tag resolved to (found images; #23.5)."""


class CheckImagesResult(StepResult):
    images: tuple[ImageCheck, ...]
    warnings: tuple[str, ...] = ()
    """Images that could not be checked (registry unreachable or refusing), not strict."""


@activity.defn(name="check_images")
def check_images(input: CheckImagesInput) -> CheckImagesResult:
    """Typed reference the workflows call; implemented by activities/check_images.py."""
    raise NotImplementedError


# The image preflight came after runs were recorded: a run replays without it where its
# history has no marker (`workflow.patched`), and its record says so.
IMAGE_PREFLIGHT_PATCH = "image-preflight"
BEFORE_PREFLIGHT = "not run: the run started before the image preflight existed"
DEADLINE = timedelta(minutes=10)
# Not the environment's step_timeouts.heartbeat: one registry lookup may take its whole
# HTTP timeout between two heartbeats.
PREFLIGHT_HEARTBEAT = timedelta(seconds=30)

SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="check_images",
    activity=check_images,
    make_input=lambda i: CheckImagesInput(environment=i.environment),
    deadline=lambda i: DEADLINE,
    start_to_close=lambda i: timedelta(minutes=5),
    retry=PREFLIGHT_RETRY,
    heartbeat=lambda i: PREFLIGHT_HEARTBEAT,
    read_only=True,
)
"""Provision: before the first write (contracts/step_spec.py)."""

HOP_SPEC: StepSpec[HopInput] = StepSpec(
    name="check_images",
    activity=check_images,
    make_input=lambda i: CheckImagesInput(
        environment=i.environment,
        job_images=(
            (i.hop.images.admin_tools.reference,)
            if i.hop.images and i.hop.images.admin_tools
            else ()
        ),
    ),
    deadline=lambda i: DEADLINE,
    start_to_close=lambda i: timedelta(minutes=5),
    retry=PREFLIGHT_RETRY,
    heartbeat=lambda i: PREFLIGHT_HEARTBEAT,
    read_only=True,
)
"""An upgrade hop: before its snapshot, with the hop's schema Job image."""
