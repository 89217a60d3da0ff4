"""What operators send to a run (approve, retry, skip, abort, pause, resume), how a run says
which of those it takes right now (so no client parses the run's prose), what it answers to
an action it took, and how it records operator input it did not act on.

`parse_request` turns whatever a signal carried (nothing, one value, several, a bare string,
a number, an object with unknown keys) into an `OperatorRequest` or a `ValueError` saying
what was wrong with its shape. It never echoes the values themselves: an operator who pasted
a password as a reason must not find it in `progress` or a log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError

from contracts.base import FrozenModel


class OperatorAction(StrEnum):
    APPROVE = "approve"
    """Open the approval gate (before install_chart; a drift check's repair)."""
    RETRY = "retry"
    """Run the step that waits for an operator again."""
    SKIP = "skip"
    """Move on past the step that waits; recorded in the result."""
    ABORT = "abort"
    """End the run with a failure that lists what was done."""
    PAUSE = "pause"
    """Hold the run before its next step."""
    RESUME = "resume"
    """Let a paused run go on."""


class OperatorRequest(FrozenModel):
    """Payload of every operator action (each field optional, so a bare signal works)."""

    by: str = Field(default="unknown", max_length=200)
    reason: str = Field(default="", max_length=2000)

    def describe(self, action: OperatorAction) -> str:
        """`retry by alice: schema updated`, as the run records it."""
        return f"{action.value} by {self.by}" + (f": {self.reason}" if self.reason else "")


class ActionReceipt(FrozenModel):
    """What a run answers to an operator action it took (the update's result)."""

    action: OperatorAction
    by: str
    effect: str
    """What the run does now because of it, e.g. `check_database runs again`."""


class RefusedInput(FrozenModel):
    """Operator input a run did not act on (a malformed or untimely signal, an unknown
    signal name), as `progress` shows it. Never the payload's values, only its shape."""

    name: str
    """The signal's name as sent (`retry`, `approv`, ...)."""
    at: datetime
    why: str


REFUSED_KEPT = 20
"""How many refused inputs a run keeps for `progress` (the newest; the history has all)."""

EXPECTED_PAYLOAD = 'one JSON object like {"by": "alice", "reason": "CAB-123"}, or nothing'


def _shape(value: Any) -> str:
    """What a decoded JSON value is, without its content."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a bare string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def parse_request(args: Sequence[Any]) -> OperatorRequest:
    """The OperatorRequest a signal's decoded inputs stand for; ValueError naming what is
    wrong with their shape (never their values) otherwise."""
    if len(args) > 1:
        raise ValueError(f"{len(args)} inputs were sent; expected {EXPECTED_PAYLOAD}")
    if not args or args[0] is None:
        return OperatorRequest()
    payload = args[0]
    if isinstance(payload, OperatorRequest):
        return payload
    if not isinstance(payload, dict):
        raise ValueError(f"the input is {_shape(payload)}; expected {EXPECTED_PAYLOAD}")
    try:
        return OperatorRequest.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg'].lower()}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise ValueError(f"{problems}; expected {EXPECTED_PAYLOAD}") from None


# --- the commands that send an action (status, follow and notifications show them) ------


def temporal_cli_action(workflow_id: str, action: OperatorAction, by: str) -> str:
    """The temporal CLI's way to send an action: an update, so a refusal comes back."""
    return (
        f"temporal workflow update execute --workflow-id {workflow_id} --name {action.value} "
        f'--input \'{{"by": "{by}"}}\''
    )


def operator_commands(
    env_name: str,
    workflow_id: str,
    actions: Iterable[OperatorAction],
    by: str,
    run_option: str = "",
) -> list[str]:
    """For each action: the starter command (`run_option`: ` --upgrade` for an upgrade run)
    and the temporal CLI update that do it."""
    lines = []
    for action in actions:
        lines.append(f"  python starter.py {action.value} {env_name}{run_option}")
        lines.append(f"  {temporal_cli_action(workflow_id, action, by)}")
    return lines


def drift_approval_commands(env_name: str, workflow_id: str, by: str) -> list[str]:
    return [
        f"  python starter.py approve-drift {env_name}",
        f"  {temporal_cli_action(workflow_id, OperatorAction.APPROVE, by)}",
    ]
