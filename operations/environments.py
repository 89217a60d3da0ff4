"""Offline operations on environment files: load and validate, render with the real chart,
and summarise what provisioning would create. No Temporal server needed.

`render` runs helm (through activities/helm_cli.py), imported when called, so commands that
never render do not pay for it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from declared_state.loader import InvalidEnvironment, load_environment
from declared_state.models import Environment, format_duration


class RenderFailed(RuntimeError):
    """helm could not render the environment; the message is helm's own (or why not)."""


def load(name: str, directory: Path) -> Environment:
    """Load and validate; raises `InvalidEnvironment` listing every problem."""
    return load_environment(name, directory)


def render(env: Environment) -> str:
    """The manifests `helm template` renders for `env` (what provisioning would apply)."""
    from activities.helm_cli import HelmCommandFailed, HelmNotFound, render_environment

    try:
        return render_environment(env)
    except HelmCommandFailed as exc:
        raise RenderFailed(
            f"helm could not render environment {env.name!r}:\n{exc.stderr}"
        ) from None
    except (HelmNotFound, FileNotFoundError, ValueError) as exc:
        raise RenderFailed(f"environment {env.name!r}: {exc}") from None


@dataclass(frozen=True)
class EnvironmentSummary:
    """What `validate` shows: the chart, versions, targets and the rendered objects."""

    rows: tuple[tuple[str, str], ...]


def chart_source(env: Environment) -> str:
    """Where the chart comes from: its local copy, or its repository (and the mirror the
    machine's TEMPORAL_BOOTSTRAP_CHART_REPOSITORY setting sends helm to instead)."""
    from activities.helm_cli import chart_repository

    chart = env.chart
    if chart.local_path:
        return chart.local_path
    used = chart_repository(chart)
    return chart.repository if used == chart.repository else f"{chart.repository}, via {used}"


def summarize(env: Environment, manifests: str) -> EnvironmentSummary:
    kinds = Counter(
        doc["kind"]
        for doc in yaml.safe_load_all(manifests)
        if isinstance(doc, dict) and "kind" in doc
    )
    chart = env.chart
    return EnvironmentSummary(
        rows=(
            ("chart", f"{chart.name} {chart.version} ({chart_source(env)})"),
            ("server version", chart.target_server_version),
            (
                "schema needed",
                f"{env.database.default_store} {env.schema_versions.default_store}, "
                f"{env.database.visibility_store} {env.schema_versions.visibility_store}",
            ),
            ("release", f"{env.kubernetes.release} in namespace {env.kubernetes.namespace}"),
            ("database", f"{env.rds.instance_id} ({env.rds.endpoint}:{env.rds.port})"),
            (
                "namespaces",
                ", ".join(
                    f"{ns.name} ({format_duration(ns.retention)})" for ns in env.temporal_namespaces
                )
                or "none",
            ),
            ("rendered objects", ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))),
        )
    )


__all__ = [
    "EnvironmentSummary",
    "InvalidEnvironment",
    "RenderFailed",
    "load",
    "render",
    "summarize",
]
