"""Image registry answers -> ErrorType, for the image preflight (activities/check_images.py).

One row per outcome of `adapters.registry.RegistryClient.exists`, in `REGISTRY_OUTCOMES`:

- `found`: no error;
- `missing` (HTTP 404 to the manifest HEAD): ImageMissing, permanent: the tag is not in the
  registry, every pull of it would fail (ErrImagePull, then ImagePullBackOff);
- `denied` (401/403 after the token flow): Docker Hub's answer for a repository that does
  not exist or is private. The cluster may pull with imagePullSecrets the worker does not
  have, so it is a warning, unless the environment is strict (ImagePullDenied, permanent);
- `unreachable` (DNS, refused, TLS, timeouts, 429, 5xx): an air-gapped cluster pulls from
  mirrors the worker may not see, so it is a warning, unless strict (RegistryUnreachable,
  retryable: the registry may come back within the step's deadline).

Messages name the image, the registry (and the mirror asked), and what to do; credentials
never reach this module.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from temporalio.exceptions import ApplicationError

from adapters.errors import ErrorType, activity_error

Outcome = Literal["found", "missing", "denied", "unreachable"]


class RegistryRow(NamedTuple):
    error_type: ErrorType | None
    """None: no error."""
    warn_unless_strict: bool
    """A warning, the run goes on, unless image_registry.strict."""
    problem: str
    """`str.format` template over {image}, {registry}, {asked}, {detail}."""


REGISTRY_OUTCOMES: dict[Outcome, RegistryRow] = {
    "found": RegistryRow(None, False, "{image} is in {registry}"),
    "missing": RegistryRow(
        ErrorType.IMAGE_MISSING,
        False,
        "{image} is not in {registry} (asked {asked}: {detail})",
    ),
    "denied": RegistryRow(
        ErrorType.IMAGE_PULL_DENIED,
        True,
        "{registry} refuses to say whether {image} exists (asked {asked}: {detail}); the "
        "repository does not exist, or it is private and image_registry.credentials_file has "
        "no credentials for {registry}",
    ),
    "unreachable": RegistryRow(
        ErrorType.REGISTRY_UNREACHABLE,
        True,
        "cannot reach {registry} to check {image} (asked {asked}: {detail}); set "
        "image_registry.mirrors when the worker must use a mirror",
    ),
}


def registry_problem(outcome: Outcome, image: str, registry: str, asked: str, detail: str) -> str:
    return REGISTRY_OUTCOMES[outcome].problem.format(
        image=image, registry=registry, asked=asked, detail=detail
    )


def registry_error(outcome: Outcome, problems: list[str], advice: str) -> ApplicationError:
    """The preflight's error for the problems of one outcome (all its images at once)."""
    row = REGISTRY_OUTCOMES[outcome]
    assert row.error_type is not None, "found is not an error"
    return activity_error("; ".join(problems) + f". {advice}", row.error_type)
