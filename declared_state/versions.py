"""Version tables: which Temporal server a chart ships, and which schema that server needs.

Both tables come from the chart's and the server's public sources (see the facts note);
a version outside them is refused rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

# chart (major, minor) -> server version it deploys
CHART_SERVER_VERSIONS: dict[tuple[int, int], str] = {
    (0, 51): "1.25.2",
    (0, 52): "1.25.2",
    (0, 53): "1.26.2",
    (0, 54): "1.26.2",
    (0, 55): "1.26.2",
    (0, 59): "1.27.2",
    (0, 60): "1.27.2",
    (0, 61): "1.27.2",
    (0, 62): "1.27.2",
    (0, 63): "1.27.2",
    (0, 64): "1.28.0",
}

# Only these chart lines use the persistence value layout that chart_values renders.
VALUES_LAYOUT_CHARTS = frozenset({(0, 51), (0, 52)})


@dataclass(frozen=True)
class SchemaVersions:
    """MySQL schema versions a server release needs in its two databases."""

    default_store: str
    visibility_store: str


# server (major, minor) -> schema versions it expects on MySQL 8
SERVER_SCHEMA_VERSIONS: dict[tuple[int, int], SchemaVersions] = {
    (1, 24): SchemaVersions("1.12", "1.6"),
    (1, 25): SchemaVersions("1.14", "1.6"),
    (1, 26): SchemaVersions("1.14", "1.7"),
    (1, 27): SchemaVersions("1.16", "1.9"),
    (1, 28): SchemaVersions("1.17", "1.9"),
}


def parse_version(text: str) -> tuple[int, ...]:
    """'1.25.2' -> (1, 25, 2); raises ValueError for anything that is not dotted integers."""
    parts = text.strip().lstrip("v").split(".")
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a dotted version number: {text!r}")
    return tuple(int(p) for p in parts)


def server_version_for_chart(chart_version: str) -> str | None:
    """The server version chart `chart_version` deploys, or None when it is not in the table."""
    major_minor = parse_version(chart_version)[:2]
    return CHART_SERVER_VERSIONS.get((major_minor[0], major_minor[1]))


def schema_versions_for_server(server_version: str) -> SchemaVersions | None:
    """Schema versions server `server_version` needs, or None when it is not in the table."""
    v = parse_version(server_version)
    return SERVER_SCHEMA_VERSIONS.get((v[0], v[1]))


def supported_chart_versions() -> str:
    """Human-readable list of chart lines the tables cover, for error messages."""
    return ", ".join(f"{a}.{b}.x" for a, b in sorted(CHART_SERVER_VERSIONS))
