"""What operators send to a run (approve, retry, skip, abort, pause, resume) and how a run
says which of those it takes right now, so no client parses the run's prose."""

from __future__ import annotations

from enum import StrEnum

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

    by: str = "unknown"
    reason: str = ""

    def describe(self, action: OperatorAction) -> str:
        """`retry by alice: schema updated`, as the run records it."""
        return f"{action.value} by {self.by}" + (f": {self.reason}" if self.reason else "")
