"""Version tables: which Temporal server a chart ships, which schema a server needs, which
releases are broken, and which chart each server minor is upgraded with.

Every row comes from the chart's and the server's public sources (shared notes,
`temporal-on-k8s-facts.md`): a chart's `Chart.yaml` `appVersion`, and the `Version` /
`VisibilityVersion` constants of `schema/mysql/v8/version.go` at each server tag. A version
outside the tables is refused rather than guessed; where a chart is available on disk, the
loader reads its server version from its `Chart.yaml` instead (declared_state/chart_files.py).

Schema versions are per patch release (1.26.0-1.26.1 need visibility 1.6, 1.26.2 needs 1.7),
so every lookup takes the full version. Pure data and functions: imported by the models and,
through them, by workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Version = tuple[int, ...]
ANY_PATCH = 1_000_000
"""Upper bound standing for "every patch of this minor" in a row's last version."""


def parse_version(text: str) -> Version:
    """'1.25.2' -> (1, 25, 2); raises ValueError for anything that is not dotted integers."""
    parts = text.strip().lstrip("v").split(".")
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a dotted version number: {text!r}")
    return tuple(int(p) for p in parts)


def _triple(text: str) -> Version:
    parts = parse_version(text)
    return (parts + (0, 0, 0))[:3]


def minor_of(version: str) -> tuple[int, int]:
    """'1.26.2' -> (1, 26)."""
    major, minor, _ = _triple(version)
    return major, minor


def version_key(version: str) -> Version:
    """A sort key that compares '1.9' < '1.14' < '1.14.1' as versions, not as text."""
    return _triple(version)


@dataclass(frozen=True)
class _Range:
    """Versions from `first` to `last` (inclusive); `*` as last patch means any patch."""

    first: str
    last: str

    def __contains__(self, version: str) -> bool:
        last = self.last.replace("*", str(ANY_PATCH))
        return _triple(self.first) <= _triple(version) <= _triple(last)

    def __str__(self) -> str:
        if self.first == self.last:
            return self.first
        return f"{self.first}-{self.last.replace('*', 'x')}"


@dataclass(frozen=True)
class ChartLine:
    """Charts in `charts` deploy server `server` (their Chart.yaml `appVersion`, which is
    also the `server.image.tag` their values pin)."""

    charts: _Range
    server: str


def _line(first: str, last: str, server: str) -> ChartLine:
    return ChartLine(_Range(first, last), server)


# Every chart tag's own Chart.yaml, one row per run of equal appVersions. The 1.29 line is
# not monotonic: 0.69.0 shipped 1.29.1, 0.70.0 and 0.71.0 went back to 1.29.0, 0.72.0 on
# ship 1.29.1 again.
CHART_LINES: tuple[ChartLine, ...] = (
    _line("0.51.0", "0.52.*", "1.25.2"),
    _line("0.53.0", "0.55.*", "1.26.2"),
    _line("0.56.0", "0.56.0", "1.27.0"),
    _line("0.56.1", "0.58.*", "1.27.1"),
    _line("0.59.0", "0.63.*", "1.27.2"),
    _line("0.64.0", "0.64.*", "1.28.0"),
    _line("0.65.0", "0.67.*", "1.28.1"),
    _line("0.68.0", "0.68.*", "1.29.0"),
    _line("0.69.0", "0.69.*", "1.29.1"),
    _line("0.70.0", "0.71.*", "1.29.0"),
    _line("0.72.0", "0.73.*", "1.29.1"),
    _line("0.74.0", "0.74.0", "1.30.3"),
    _line("1.0.0", "1.1.1", "1.30.3"),
    _line("1.2.0", "1.3.0", "1.31.0"),
    _line("1.4.0", "1.5.0", "1.31.1"),
    _line("1.6.0", "1.6.0", "1.31.2"),
)


@dataclass(frozen=True)
class SchemaVersions:
    """MySQL schema versions a server release needs in its two databases."""

    default_store: str
    visibility_store: str


@dataclass(frozen=True)
class _SchemaRow:
    servers: _Range
    schema: SchemaVersions


def _schema(first: str, last: str, default_store: str, visibility_store: str) -> _SchemaRow:
    return _SchemaRow(_Range(first, last), SchemaVersions(default_store, visibility_store))


# server releases -> schema versions they expect on MySQL 8 (PostgreSQL 12 uses the same)
SERVER_SCHEMAS: tuple[_SchemaRow, ...] = (
    _schema("1.24.0", "1.24.0", "1.12", "1.5"),
    _schema("1.24.1", "1.24.3", "1.12", "1.6"),
    _schema("1.25.0", "1.25.2", "1.14", "1.6"),
    _schema("1.26.0", "1.26.1", "1.14", "1.6"),
    _schema("1.26.2", "1.26.3", "1.14", "1.7"),
    _schema("1.27.0", "1.27.0", "1.15", "1.9"),
    _schema("1.27.1", "1.27.4", "1.16", "1.9"),
    _schema("1.28.0", "1.28.4", "1.17", "1.9"),
    _schema("1.29.0", "1.29.7", "1.18", "1.9"),
    _schema("1.30.0", "1.30.6", "1.18", "1.13"),
    _schema("1.31.0", "1.31.2", "1.19", "1.14"),
)

# Releases the community operator's upgrade guard refuses -> the next good release
# (None: a later patch of the same minor; no table row names one).
BROKEN_SERVERS: dict[str, str | None] = {
    "1.21.0": None,
    "1.21.1": None,
    "1.24.0": "1.24.1",
    "1.27.0": "1.27.1",
}


@dataclass(frozen=True)
class ChartRelease:
    """One chart version and the server version it deploys."""

    chart: str
    server: str


# server minor -> the chart(s) an upgrade moves it there with: the latest chart that deploys
# the minor's latest patch the tables know. Two entries where the chart's values layout
# changed within a minor (1.30: 0.74.0 is the last of the old layout, 1.1.1 of the new).
UPGRADE_PATH: dict[tuple[int, int], tuple[ChartRelease, ...]] = {
    (1, 25): (ChartRelease("0.52.0", "1.25.2"),),
    (1, 26): (ChartRelease("0.55.0", "1.26.2"),),
    (1, 27): (ChartRelease("0.63.0", "1.27.2"),),
    (1, 28): (ChartRelease("0.67.0", "1.28.1"),),
    (1, 29): (ChartRelease("0.73.2", "1.29.1"),),
    (1, 30): (ChartRelease("0.74.0", "1.30.3"), ChartRelease("1.1.1", "1.30.3")),
    (1, 31): (ChartRelease("1.6.0", "1.31.2"),),
}

# The images each chart pins in its values.yaml (`server.image`, `admintools.image`,
# `web.image`; repositories temporalio/server, temporalio/admin-tools, temporalio/ui in every
# chart), per exact chart version, read from the chart at each tag. The admin-tools tag is
# NOT the server version for many charts, and bare tags made from the server version have
# been missing from the registry (helm-charts issues #491, #594, #756/#757, #767): a tag is
# always the chart's, never built. 0.68.0 pins `admin-tools:1.29.0`, which never existed.


@dataclass(frozen=True)
class ChartImages:
    """The tags a chart's values pin for its three images."""

    server: str
    admin_tools: str
    web: str


IMAGE_REPOSITORIES: dict[str, str] = {
    "server": "temporalio/server",
    "admin_tools": "temporalio/admin-tools",
    "web": "temporalio/ui",
}


def _images(server: str, admin_tools: str, web: str, *charts: str) -> dict[str, ChartImages]:
    return dict.fromkeys(charts, ChartImages(server, admin_tools, web))


CHART_IMAGES: dict[str, ChartImages] = {
    **_images("1.25.2", "1.25.2-tctl-1.18.1-cli-1.1.1", "2.31.2", "0.51.0", "0.52.0"),
    **_images("1.26.2", "1.26.2", "2.33.0", "0.53.0", "0.54.0"),
    **_images("1.26.2", "1.26.2", "2.34.0", "0.55.0"),
    **_images("1.27.0", "1.27.0", "2.35.1", "0.56.0"),
    **_images("1.27.1", "1.27.1", "2.36.0", "0.57.0", "0.58.0"),
    **_images("1.27.2", "1.27.2-tctl-1.18.2-cli-1.3.0", "2.36.1", "0.59.0", "0.60.0"),
    **_images("1.27.2", "1.27.2-tctl-1.18.2-cli-1.3.0", "2.37.1", "0.61.0", "0.62.0", "0.63.0"),
    **_images("1.28.0", "1.28.0-tctl-1.18.2-cli-1.3.0", "2.38.3", "0.64.0"),
    **_images("1.28.1", "1.28.1-tctl-1.18.4-cli-1.4.1", "2.39.0", "0.65.0", "0.66.0", "0.67.0"),
    **_images("1.29.0", "1.29.0", "2.40.1", "0.68.0"),
    **_images("1.29.0", "1.29", "2.40.1", "0.68.1"),
    **_images("1.29.1", "1.29.1-tctl-1.18.4-cli-1.5.0", "2.42.1", "0.69.0", "0.72.0"),
    **_images("1.29.0", "1.29.1-tctl-1.18.4-cli-1.5.0", "2.42.1", "0.70.0", "0.71.0"),
    **_images("1.29.1", "1.29.1-tctl-1.18.4-cli-1.5.0", "2.43.3", "0.73.0"),
    **_images("1.29.1", "1.29.1-tctl-1.18.4-cli-1.5.0", "2.44.0", "0.73.1", "0.73.2"),
    **_images("1.30.3", "1.30.3", "2.48.1", "0.74.0", "1.0.0", "1.1.0", "1.1.1"),
    **_images("1.31.0", "1.31.0", "2.49.1", "1.2.0"),
    **_images("1.31.0", "1.31.0", "2.51.1", "1.3.0"),
    **_images("1.31.1", "1.31.1", "2.51.1", "1.4.0", "1.5.0"),
    **_images("1.31.2", "1.31.2", "2.52.0", "1.6.0"),
}


def chart_images(chart_version: str) -> ChartImages | None:
    """The image tags chart `chart_version` pins, or None for a chart the table lacks."""
    return CHART_IMAGES.get(chart_version)


ValuesLayout = Literal["persistence", "datastores"]


def values_layout(chart_version: str) -> ValuesLayout:
    """`persistence` (charts before 1.0: `server.config.persistence.<store>`, chart-level
    schema jobs) or `datastores` (1.0 and later: `persistence.datastores.<name>` in the
    server's own format, per-store createDatabase/manageSchema)."""
    return "persistence" if _triple(chart_version) < (1, 0, 0) else "datastores"


def server_version_for_chart(chart_version: str) -> str | None:
    """The server version chart `chart_version` deploys, or None when the tables do not
    know the chart."""
    for line in CHART_LINES:
        if chart_version in line.charts:
            return line.server
    return None


def schema_versions_for_server(server_version: str) -> SchemaVersions | None:
    """Schema versions server `server_version` needs, or None when it is not in the table."""
    for row in SERVER_SCHEMAS:
        if server_version in row.servers:
            return row.schema
    return None


def charts_for_server(server_version: str) -> list[str]:
    """The chart lines known to deploy exactly `server_version`, for messages."""
    return [str(line.charts) for line in CHART_LINES if line.server == server_version]


def broken_release(server_version: str) -> str | None:
    """Why `server_version` is refused and what to use instead; None when it is fine."""
    if server_version not in BROKEN_SERVERS:
        return None
    good = BROKEN_SERVERS[server_version]
    if good is None:
        instead = f"a later {'.'.join(server_version.split('.')[:2])}.x patch"
    else:
        charts = charts_for_server(good)
        instead = good + (f" (chart {' or '.join(charts)})" if charts else "")
    return (
        f"Temporal server {server_version} is a release known to be broken; "
        f"use the next good release {instead} instead"
    )


def supported_chart_versions() -> str:
    """Human-readable list of the chart versions the tables know, for error messages."""
    return ", ".join(str(line.charts) for line in sorted(CHART_LINES, key=_line_start))


def _line_start(line: ChartLine) -> Version:
    return _triple(line.charts.first)


def supported_server_versions() -> str:
    return ", ".join(str(row.servers) for row in SERVER_SCHEMAS)
