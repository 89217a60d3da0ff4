"""The one frozen base model, and the contract every step result keeps.

`StepResult` is what the workflows read: `changed` (in a dry run: would change), a one-line
`summary` for people, `drift`, the ways the live state differed from the declaration before
the step acted (a dry run only reports them), and `unchecked`, what it could not read. No caller guesses from dict keys or
parses prose: each step's result type subclasses `StepResult` and adds its own typed fields.
"""

from __future__ import annotations

from typing import Any

from base.model import FrozenModel

__all__ = ["DriftItem", "FrozenModel", "StepResult", "differing_paths"]


class DriftItem(FrozenModel):
    """One way the live state differs from the declaration. Never carries a secret value:
    secret content is compared by digest and reported by key name only."""

    message: str
    """The human line, e.g. `key global-bundle.pem differs from CA bundle s3://b/k`."""
    kind: str = ""
    """What differs: a Kubernetes kind, `HelmRelease`, `TemporalNamespace`, ..."""
    namespace: str = ""
    name: str = ""
    path: str = ""
    """Where inside the object (a key, a dotted values path or a JSON pointer)."""
    live: str | None = None
    declared: str | None = None
    repairable: bool = True
    """Whether the drift check's `remediate` can repair it (by running the step, or the step
    that owns what was checked, for real)."""
    how: str = ""
    """How it is repaired, for people: the command to run when `remediate` cannot (a schema
    update, `starter.py upgrade`), or what `remediate` does. "" when re-running the step is
    all there is to say."""
    ignored: bool = False
    """Matched an ignore rule (`drift_check.ignore`): counted, not shown, never acted on."""
    version_skew: bool = False
    """Caused by the cluster running another chart or server version than the declaration
    (mid-upgrade, or a declaration edited without `upgrade`): never `repairable`, since
    re-applying the declared chart would move versions without the schema step; only
    `starter.py upgrade ENV` moves them."""
    left_alone: bool = False
    """Something the step's run never touches (a Temporal namespace nobody declared, under
    `undeclared_namespaces: report`): never `repairable`, yet no reason to hold back the run
    that repairs the step's other differences. Reported until a person acts (`how`)."""

    def __str__(self) -> str:
        return self.message


class StepResult(FrozenModel):
    """What every step returns, whatever else it reports."""

    changed: bool
    """The step changed something (in a dry run: would change something)."""
    summary: str
    """One line for people: what the step did or found."""
    drift: tuple[DriftItem, ...] = ()
    """How the live state differed from the declaration before any write; () when in sync."""
    dry_run: bool = False
    """Nothing was written: `changed` and the summary say what the step would have done."""
    unchecked: tuple[DriftItem, ...] = ()
    """What could not be read (forbidden, not answering), so is neither in sync nor drifted:
    the drift check reports it as "could not check", never as in sync."""
    notes: tuple[str, ...] = ()
    """What the step saw and leaves alone because the declaration says so, for people (a
    namespace nobody declared, under `undeclared_namespaces: protect`): never drift."""


def differing_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Where two JSON documents differ: dotted key paths (`rds.port`), list items by index
    (`temporal_namespaces[0].retention`) when both lists are as long, else the whole list;
    `prefix` ("" for the root) where the documents themselves differ. Paths only, never
    values, so the result can be shown whatever the documents hold."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(old.keys() | new.keys(), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                found.append(path)
            else:
                found += differing_paths(old[key], new[key], path)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            path
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for path in differing_paths(a, b, f"{prefix}[{i}]")
        ]
    return [] if old == new else [prefix]
