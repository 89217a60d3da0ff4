"""Where charts come from: the chart cache, filled once per chart from its source.

Every reader of a chart (installs, renders, upgrade hops, the helmfile import, the local
stack's chart repository) asks `fetch_chart` for a local copy and hands that path to helm;
nothing reads a chart folder that happens to lie beside the checkout.

The source of a chart, in this order:
- `TEMPORAL_BOOTSTRAP_CHART_MIRROR`, the machine's offline mirror: a folder of chart
  directories (each with its `Chart.yaml`) or archives (`NAME-VERSION.tgz`), or a chart
  repository URL. `TEMPORAL_BOOTSTRAP_CHART_REPOSITORY` is its older name (a repository URL)
  and is read when the mirror setting is unset. A machine's setting, like helm's own
  repositories: it never enters a run's input.
- else the environment's `chart.repository` (`https://go.temporal.io/helm-charts`).
(`chart.local_path` is an explicit chart file and bypasses all of this, see helm_cli.)

The cache lives in the state folder (`<state>/chart-cache/`). A repository's chart is pulled
once (`helm pull NAME --repo URL --version V`) into `<hash of URL>/NAME-VERSION.tgz` and
never pulled again, as Go's module cache keeps a module; a chart from a mirror folder is
copied under its digest (`folder/NAME-VERSION-<digest>`), so an edited mirror makes a new
entry instead of serving a stale copy. Writes go to a temporary name and are renamed into
place, so two processes filling the same entry (the starter and the worker of the demo share
the state folder) both end with a whole copy.

Each fetched chart carries a digest for charts.lock (operations/chart_lock.py): sha256 of
the archive's bytes, or, for a chart directory, sha256 over its sorted file paths and file
bytes ("content"). A folder is never packaged to digest it: `helm package` writes file
times into the archive, so two copies of one chart package to different bytes.

Failure modes: no network and no mirror, a repository without that version, a mirror folder
without that chart: `ChartUnavailable`, one line naming the chart, the source and the
setting. helm missing: `HelmNotFound` (helm_cli).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from declared_state.chart_files import ChartUnreadable, read_chart_metadata
from declared_state.models import ChartSpec
from declared_state.paths import state_dir

MIRROR_VARIABLE = "TEMPORAL_BOOTSTRAP_CHART_MIRROR"
REPOSITORY_ALIAS = "TEMPORAL_BOOTSTRAP_CHART_REPOSITORY"
"""The mirror setting's older name (a repository URL); read when the mirror is unset."""

ARCHIVE = "archive"
"""Digest kind: sha256 of the chart archive's bytes."""
CONTENT = "content"
"""Digest kind: sha256 over a chart directory's sorted relative file paths and file bytes."""

MIRROR_FOLDER = "mirror folder"
"""How charts.lock names a folder source: the folder's path differs between machines, while
a content digest is the same in every copy of the chart."""

PULL_TIMEOUT_S = 120


class ChartUnavailable(OSError):
    """The chart could not be fetched from its source; the message is one line."""


@dataclass(frozen=True)
class Source:
    """Where a chart is fetched from."""

    location: str
    """A repository URL, or a mirror folder's absolute path."""
    is_folder: bool
    setting: str | None
    """The machine setting that chose this source; None for the environment's repository."""

    @property
    def lock_name(self) -> str:
        """The source as a charts.lock entry names it."""
        return MIRROR_FOLDER if self.is_folder else self.location

    def describe(self) -> str:
        return f"{self.location} ({self.setting})" if self.setting else self.location


@dataclass(frozen=True)
class FetchedChart:
    """A chart in the cache."""

    name: str
    version: str
    path: Path
    """The cached archive or directory, what helm is given as CHART."""
    digest: str
    """`sha256:<hex>`, of `kind`."""
    kind: str
    source: Source


def mirror_setting() -> tuple[str, str] | None:
    """(variable, value) of the machine's chart mirror, if one is set."""
    for variable in (MIRROR_VARIABLE, REPOSITORY_ALIAS):
        value = os.environ.get(variable, "").strip()
        if value:
            return variable, value
    return None


def chart_source(spec: ChartSpec) -> Source:
    mirror = mirror_setting()
    if mirror is None:
        return Source(spec.repository.rstrip("/"), is_folder=False, setting=None)
    variable, value = mirror
    if "://" in value:
        return Source(value.rstrip("/"), is_folder=False, setting=variable)
    return Source(str(Path(value).expanduser().absolute()), is_folder=True, setting=variable)


def cache_dir() -> Path:
    return state_dir() / "chart-cache"


def directory_digest(directory: Path) -> str:
    """sha256 over every file's relative path and bytes (sorted by path): the same for every
    copy of a chart folder whatever its file times, different after any edit."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_chart(spec: ChartSpec, helm: str | None = None) -> FetchedChart:
    """The cached copy of chart `spec.name` `spec.version` from its source (see the module
    docstring), fetched first if needed. Raises ChartUnavailable."""
    source = chart_source(spec)
    if source.is_folder:
        return _from_folder(spec, source)
    return _from_repository(spec, source, helm)


def evict(chart: FetchedChart) -> None:
    """Drop a cached chart (one whose digest charts.lock refuses), so the next fetch asks
    the source again instead of serving the refused copy."""
    if chart.path.is_dir():
        shutil.rmtree(chart.path, ignore_errors=True)
    else:
        chart.path.unlink(missing_ok=True)


def unavailable(spec: ChartSpec, source: Source, why: str) -> ChartUnavailable:
    hint = (
        f"check {source.setting}"
        if source.setting
        else f"on a machine without access to it set {MIRROR_VARIABLE} to a folder of charts "
        "or a chart repository URL"
    )
    return ChartUnavailable(
        f"chart {spec.name} {spec.version} could not be fetched from {source.describe()}: "
        f"{why}; {hint}"
    )


def _from_repository(spec: ChartSpec, source: Source, helm: str | None) -> FetchedChart:
    from adapters.helm_cli import HelmCommandFailed, error_message, find_helm

    key = hashlib.sha256(source.location.encode()).hexdigest()[:16]
    folder = cache_dir() / key
    target = folder / f"{spec.name}-{spec.version}.tgz"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".pull-") as tmp:
            try:
                proc = subprocess.run(
                    [find_helm(helm), "pull", spec.name, "--repo", source.location]
                    + ["--version", spec.version, "--destination", tmp],
                    capture_output=True,
                    text=True,
                    timeout=PULL_TIMEOUT_S,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                raise unavailable(spec, source, f"no answer in {PULL_TIMEOUT_S} s") from None
            if proc.returncode != 0:
                # HelmCommandFailed says so when the binary is no helm (it prints nothing).
                stderr = HelmCommandFailed(["pull"], proc.returncode, proc.stderr).stderr
                why = error_message(stderr.splitlines()).splitlines()[0]
                raise unavailable(spec, source, why.removeprefix("Error: ")[:300])
            pulled = list(Path(tmp).glob("*.tgz"))
            if len(pulled) != 1:
                raise unavailable(spec, source, "helm pull wrote no chart archive")
            os.replace(pulled[0], target)
    return FetchedChart(
        spec.name, spec.version, target, f"sha256:{file_digest(target)}", ARCHIVE, source
    )


def _from_folder(spec: ChartSpec, source: Source) -> FetchedChart:
    folder = Path(source.location)
    if not folder.is_dir():
        raise unavailable(spec, source, "no such folder")
    found = _find_in_folder(folder, spec.name, spec.version)
    if found is None:
        raise unavailable(
            spec,
            source,
            f"the folder holds no chart {spec.name} {spec.version} (directory "
            f"with Chart.yaml, or {spec.name}-{spec.version}.tgz)",
        )
    cached = cache_dir() / "folder"
    cached.mkdir(parents=True, exist_ok=True)
    if found.is_dir():
        digest, kind = directory_digest(found), CONTENT
        target = cached / f"{spec.name}-{spec.version}-{digest[:16]}"
        if not (target / "Chart.yaml").is_file():
            with tempfile.TemporaryDirectory(dir=cached, prefix=".copy-") as tmp:
                staging = Path(tmp) / "chart"
                shutil.copytree(found, staging)
                _rename_into_place(staging, target)
    else:
        digest, kind = file_digest(found), ARCHIVE
        target = cached / f"{spec.name}-{spec.version}-{digest[:16]}.tgz"
        if not target.is_file():
            with tempfile.NamedTemporaryFile(dir=cached, prefix=".copy-", delete=False) as copy:
                shutil.copyfile(found, copy.name)
            os.replace(copy.name, target)
    return FetchedChart(spec.name, spec.version, target, f"sha256:{digest}", kind, source)


def _rename_into_place(staging: Path, target: Path) -> None:
    try:
        staging.rename(target)
    except OSError:
        if not target.is_dir():  # lost a race to another process: its copy is as good
            raise


def _find_in_folder(folder: Path, name: str, version: str) -> Path | None:
    """`NAME-VERSION/` or `NAME-VERSION.tgz` by the usual names first, then any chart
    directory or archive in the folder whose Chart.yaml says NAME and VERSION."""
    for guess in (folder / f"{name}-{version}", folder / f"{name}-{version}.tgz"):
        if _is_chart(guess, name, version):
            return guess
    for entry in sorted(folder.iterdir()):
        if _is_chart(entry, name, version):
            return entry
    return None


def _is_chart(path: Path, name: str, version: str) -> bool:
    if not (path.is_dir() and (path / "Chart.yaml").is_file()) and not (
        path.is_file() and path.name.endswith(".tgz")
    ):
        return False
    try:
        meta = read_chart_metadata(path)
    except ChartUnreadable:
        return False
    return meta.name == name and meta.version == version


def folder_charts(folder: Path) -> list[tuple[str, str]]:
    """(name, version) of every chart directory or archive in a mirror folder."""
    found = set()
    for entry in sorted(folder.iterdir()):
        if (entry.is_dir() and (entry / "Chart.yaml").is_file()) or entry.name.endswith(".tgz"):
            try:
                meta = read_chart_metadata(entry)
            except ChartUnreadable:
                continue
            found.add((meta.name, meta.version))
    return sorted(found)
