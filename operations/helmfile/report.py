"""What the helmfile import reports: every problem in the old setup and every decision it made.

Each item names the file and key it is about, what was found, why it matters and what the
imported environment does instead. `changes` is that same decision spelled as a change to
the *original* values (in the original's own paths); `--compare` applies them to the
original values and renders again, so a difference between the two renderings counts as
explained only when an item's change produces it, never because the import says so.

Items never carry a secret value: a plaintext password is reported by its key alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

ValuesPath = tuple[str, ...]


class Severity(StrEnum):
    PROBLEM = "problem"
    """Wrong in the old setup, or not importable: the command exits 2."""
    NOTE = "note"
    """A decision the import made where the helmfile project says nothing, or a harmless
    difference in how the model spells a value; does not change the exit code."""


class _Remove:
    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Remove()
"""A ValuesChange value that removes the key."""


@dataclass(frozen=True)
class ValuesChange:
    """Set `path` in the original values to `value` (or remove it: `REMOVE`)."""

    path: ValuesPath
    value: Any


@dataclass(frozen=True)
class ReportItem:
    severity: Severity
    file: str
    """The file the finding is in (a values file, helmfile.yaml, or `chart default`)."""
    key: str
    """The values key (dotted), or a line for template findings."""
    finding: str
    why: str
    instead: str
    """What the imported environment does instead."""
    changes: tuple[ValuesChange, ...] = ()


def dotted(path: ValuesPath) -> str:
    return ".".join(path)
