"""register_namespaces: register the declared Temporal namespaces and keep their settings."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from temporalio import activity

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import NAMESPACE_RETRY, StepSpec, step_heartbeat
from declared_state.models import Environment

if TYPE_CHECKING:
    from contracts.bootstrap import BootstrapInput

NamespaceAction = Literal["created", "updated", "unchanged"]
SettingAction = Literal["added", "updated", "unchanged", "refused", "removed"]


class RegisterNamespacesInput(FrozenModel):
    """The environment whose `temporal_namespaces` are registered on its frontend."""

    environment: Environment
    concurrency: int = Field(
        default=16,
        ge=1,
        description="Namespaces handled at once. Rejections by the server's rate limit are "
        "paced either way; bench/namespaces.py measured 1, 4, 16 and 64 (docs/benchmarks.md): "
        "16 was fastest at 20 namespaces, all four within 1.11x of the admission floor at 200.",
    )
    usable_timeout: timedelta = Field(
        default=timedelta(seconds=60),
        description="How long to wait for every namespace to be usable through the frontend.",
    )
    poll_interval: timedelta = Field(default=timedelta(seconds=1), gt=timedelta(0))
    list_undeclared: bool | None = Field(
        default=None,
        description="List the namespaces on the server nobody declared (`undeclared`); "
        "None: on dry runs only (the drift check), provisioning does not read them.",
    )
    dry_run: bool = False
    """Report what would change; write nothing."""


class NamespaceSetting(FrozenModel):
    """What happened to one managed setting of a namespace (#22.2): a search attribute, the
    owner email or one data key. Values are not repeated here (the drift items carry them)."""

    field: str = Field(
        description="`search_attributes/<name>`, `owner_email`, `data/<key>` or "
        "`archival/<history|visibility>`, as in the drift path "
        "`/temporal_namespaces/<namespace>/<field>`."
    )
    action: SettingAction = Field(
        description="`refused`: a search attribute's type or an archival URI differs (dry runs "
        "only; a real run stops before any write instead); `removed`: a search attribute not declared, in a "
        "namespace with `allow_deletion`."
    )


class NamespaceOutcome(FrozenModel):
    """What happened to one declared namespace."""

    name: str
    action: NamespaceAction
    retention_before: timedelta | None = Field(description="None: the namespace did not exist.")
    retention_after: timedelta
    description_changed: bool
    settings: tuple[NamespaceSetting, ...] = Field(
        default=(),
        description="One per declared search attribute, then owner email, then data key; () "
        "in results recorded before #22.",
    )


class RegisterNamespacesResult(StepResult):
    """One outcome per declared namespace (declaration order) and the undeclared ones found."""

    namespaces: tuple[NamespaceOutcome, ...]
    undeclared: tuple[str, ...] = Field(
        default=(),
        description="Namespaces on the server nobody declared; left alone. Listed only when "
        "the input's `list_undeclared` says so.",
    )


@activity.defn(name="register_namespaces")
def register_namespaces(input: RegisterNamespacesInput) -> RegisterNamespacesResult:
    """Typed reference the workflows call; implemented by activities/register_namespaces.py."""
    raise NotImplementedError


SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="register_namespaces",
    activity=register_namespaces,
    make_input=lambda i: RegisterNamespacesInput(environment=i.environment),
    deadline=lambda i: i.deadlines.register_namespaces,
    start_to_close=lambda i: timedelta(minutes=5),
    retry=NAMESPACE_RETRY,
    heartbeat=step_heartbeat,
    drift_checked=True,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
