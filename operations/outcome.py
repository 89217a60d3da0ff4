"""What an operation tells the command that called it: lines for people (`Say`) as they come,
then how it ended (`Outcome`). The CLI prints the lines and maps the outcome to its exit code;
it decides nothing else. Keeping the two apart lets a command stream a long run's progress
while the exit code stays a pure function of the outcome.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

from rich.console import RenderableType


class Outcome(Enum):
    """How an operation ended; each is one exit code of the CLI."""

    DONE = "done"
    FAILED = "failed"
    WAITING = "waiting"
    """For an operator (or for a choice the operator has to make)."""
    INVALID = "invalid"
    DRIFTED = "drifted"


@dataclass(frozen=True)
class Say:
    """One thing to show: a line (or a table) for stdout, or for stderr."""

    content: RenderableType
    stderr: bool = False


Report: TypeAlias = AsyncIterator[Say | Outcome]
"""An operation's output: any number of `Say`, then exactly one `Outcome`."""


def say_all(lines: str | list[str], *, stderr: bool = False) -> list[Say]:
    return [Say(line, stderr) for line in ([lines] if isinstance(lines, str) else lines)]
