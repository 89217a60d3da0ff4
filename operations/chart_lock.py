"""charts.lock: the digest of every chart version the environments fetched, like go.sum.

The file lives beside the environment files (`<environments-dir>/charts.lock`) and is meant
to be committed with them. One entry per chart name, version and source:

    charts:
    - name: temporal
      version: 0.52.0
      source: https://go.temporal.io/helm-charts
      kind: archive           # sha256 of the chart archive's bytes
      digest: sha256:...

A mirror folder is named `mirror folder` (its path differs between machines) and its chart
directories get `kind: content`: sha256 over the chart's sorted file paths and file bytes,
the same in every copy of the folder (`helm package` is not used: its archive carries file
times, so two copies of one chart package to different bytes). Archives anywhere get
`kind: archive`.

The first fetch of a name, version and source records its entry. A later fetch whose digest
differs (a re-tagged or tampered chart) is refused before anything is rendered or
installed, naming both digests and the source, and the refused copy is dropped from the
chart cache; `starter.py lock-charts ENV --update` accepts the new digest. The starter
checks the lock (`validate`, `render`, `provision`, `upgrade`, `drift`, `schedule`); the
worker installs the cache's copy the starter checked when both share a state folder (the
demo), and otherwise trusts its own cache: the lock is not part of a run's input.

A lock file that is not this shape is refused (exit 3) naming the file; nothing overwrites
it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapters.charts import FetchedChart, evict, fetch_chart
from declared_state.models import Environment

LOCK_FILE = "charts.lock"
HEADER = """\
# charts.lock: the digest of every chart version these environments fetched (like go.sum).
# Written by temporal-bootstrap on a chart version's first fetch; a fetch with another
# digest is refused. Accept a new one with: python starter.py lock-charts ENV --update
# kind archive: sha256 of the chart archive; kind content: sha256 over the chart folder's
# sorted file paths and file bytes (a mirror folder's chart directories). See docs/charts.md.
"""


class ChartLockInvalid(ValueError):
    """charts.lock cannot be read; the message names the file."""


class ChartLockMismatch(RuntimeError):
    """The fetched chart's digest is not the one charts.lock records; one line."""


@dataclass(frozen=True)
class LockEntry:
    name: str
    version: str
    source: str
    kind: str
    digest: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.name, self.version, self.source


@dataclass(frozen=True)
class LockStatus:
    state: str
    """`matches`, `recorded` (first fetch), `updated` (--update), `not locked`."""
    path: Path
    entry: LockEntry | None = None
    previous: LockEntry | None = None

    def entry_text(self) -> str:
        """`temporal 0.52.0: <status>`, for lock-charts."""
        if self.entry is None:
            return self.text()
        return f"{self.entry.name} {self.entry.version}: {self.text()}"

    def text(self) -> str:
        if self.entry is None:
            return "not locked (chart.local_path is the environment's own file)"
        entry = f"{self.entry.digest} ({self.entry.kind}, {self.entry.source})"
        if self.state == "matches":
            return f"matches {self.path.name}: {entry}"
        if self.state == "updated" and self.previous is not None:
            return f"updated in {self.path}: {self.previous.digest} -> {entry}"
        return f"recorded in {self.path}: {entry}"


def lock_path(directory: Path) -> Path:
    return directory / LOCK_FILE


def read_lock(path: Path) -> dict[tuple[str, str, str], LockEntry]:
    if not path.exists():
        return {}
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ChartLockInvalid(f"{path}: cannot be read: {exc}") from None
    charts = (data or {}).get("charts") if isinstance(data or {}, dict) else None
    if charts is None:
        charts = []
    if not isinstance(charts, list):
        raise ChartLockInvalid(f"{path}: charts: expected a list of entries")
    entries = {}
    for index, item in enumerate(charts):
        fields = ("name", "version", "source", "kind", "digest")
        if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in fields):
            raise ChartLockInvalid(
                f"{path}: charts[{index}]: expected the strings {', '.join(fields)}"
            )
        entry = LockEntry(*(str(item[f]) for f in fields))
        entries[entry.key] = entry
    return entries


def write_lock(path: Path, entries: dict[tuple[str, str, str], LockEntry]) -> None:
    """Written to a temporary file and renamed, so a reader never sees half a lock."""
    charts = [
        {
            "name": e.name,
            "version": e.version,
            "source": e.source,
            "kind": e.kind,
            "digest": e.digest,
        }
        for e in sorted(entries.values(), key=lambda e: e.key)
    ]
    text = HEADER + yaml.safe_dump({"charts": charts}, sort_keys=False)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=".charts.lock-", delete=False
    ) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def check_chart(env: Environment, directory: Path, *, update: bool = False) -> LockStatus:
    """Fetch env's chart (through the cache) and check it against `directory`'s charts.lock:
    record a first entry, accept a matching one, refuse another digest (ChartLockMismatch)
    unless `update`. Raises ChartUnavailable, ChartLockInvalid."""
    path = lock_path(directory)
    if env.chart.local_path:
        return LockStatus("not locked", path)
    entries = read_lock(path)
    fetched = fetch_chart(env.chart)
    entry = _entry(fetched)
    known = entries.get(entry.key)
    if known is not None and (known.digest, known.kind) == (entry.digest, entry.kind):
        return LockStatus("matches", path, entry)
    if known is not None and not update:
        evict(fetched)
        raise ChartLockMismatch(
            f"chart {entry.name} {entry.version} from {fetched.source.describe()} has digest "
            f"{entry.digest} ({entry.kind}), but {path} records {known.digest} ({known.kind}) "
            f"for it: refused, nothing was installed (a re-tagged or altered chart); if the "
            f"new chart is expected: python starter.py lock-charts {env.name} --update"
        )
    entries[entry.key] = entry
    write_lock(path, entries)
    return LockStatus("recorded" if known is None else "updated", path, entry, known)


def _entry(fetched: FetchedChart) -> LockEntry:
    return LockEntry(
        fetched.name, fetched.version, fetched.source.lock_name, fetched.kind, fetched.digest
    )
