"""check_images: the image preflight. Before the first write of a provision or of an upgrade
hop, every image the rendered manifests and the hop's schema Job will pull is looked up in
its registry (OCI distribution API); a missing one stops the run there, with nothing
written. Read-only."""

from __future__ import annotations

from typing import Literal

from temporalio import activity

from contracts.base import FrozenModel, StepResult
from declared_state.models import Environment


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


class CheckImagesResult(StepResult):
    images: tuple[ImageCheck, ...]
    warnings: tuple[str, ...] = ()
    """Images that could not be checked (registry unreachable or refusing), not strict."""


@activity.defn(name="check_images")
def check_images(input: CheckImagesInput) -> CheckImagesResult:
    """Typed reference the workflows call; implemented by activities/check_images.py."""
    raise NotImplementedError
