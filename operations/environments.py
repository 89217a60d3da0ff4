"""Offline operations on environment files: load and validate, render with the real chart,
and summarise what provisioning would create. No Temporal server needed.

`load` also checks that the environment fits a workflow input: every run carries the whole
environment in its input (and so in its history), and the server refuses payloads above a
few MB with a raw RPC error after everything else has passed. `MAX_INPUT_BYTES` keeps it well
below that, measured as the SDK's data converter serializes it.

`render` runs helm (through adapters/helm_cli.py), imported when called, so commands that
never render do not pay for it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from temporalio.contrib.pydantic import pydantic_data_converter

from contracts.bootstrap import BootstrapInput
from contracts.drift_check import DriftCheckInput
from declared_state.archival import ARCHIVAL_KINDS, ArchivalState
from declared_state.loader import InvalidEnvironment, Problem, load_environment
from declared_state.models import Environment, format_duration

if TYPE_CHECKING:
    from operations.chart_lock import LockStatus

MAX_INPUT_BYTES = 1024 * 1024
"""The largest workflow input an environment may make (the server's hard limit is 4 MB)."""


class RenderFailed(RuntimeError):
    """helm could not render the environment; the message is helm's own (or why not)."""


def load(name: str, directory: Path) -> Environment:
    """Load and validate, and check it fits a workflow input; raises `InvalidEnvironment`
    listing every problem."""
    env = load_environment(name, directory)
    size = workflow_input_size(env)
    if size > MAX_INPUT_BYTES:
        raise InvalidEnvironment(
            [
                Problem(
                    str(directory.absolute() / f"{name}.yaml"),
                    "",
                    f"the environment makes a workflow input of {size // 1024} KiB; the limit "
                    f"is {MAX_INPUT_BYTES // 1024} KiB (every run carries it in its input and "
                    "history): trim extra_values or YAML aliases that repeat large values",
                )
            ]
        )
    return env


def workflow_input_size(env: Environment) -> int:
    """Bytes of the largest workflow input `env` goes into, as the client serializes it."""
    converter = pydantic_data_converter.payload_converter
    inputs = (BootstrapInput(environment=env), DriftCheckInput(environment=env))
    return max(converter.to_payloads([value])[0].ByteSize() for value in inputs)


def render(env: Environment) -> str:
    """The manifests `helm template` renders for `env` (what provisioning would apply)."""
    from adapters.charts import ChartUnavailable
    from adapters.helm_cli import HelmCommandFailed, HelmNotFound, render_environment

    try:
        return render_environment(env)
    except HelmCommandFailed as exc:
        raise RenderFailed(
            f"helm could not render environment {env.name!r}:\n{exc.stderr}"
        ) from None
    except ChartUnavailable as exc:
        raise RenderFailed(str(exc)) from None
    except (HelmNotFound, FileNotFoundError, ValueError) as exc:
        raise RenderFailed(f"environment {env.name!r}: {exc}") from None


def check_chart_lock(env: Environment, directory: Path, *, update: bool = False) -> LockStatus:
    """Fetch env's chart through the cache and check it against `directory`'s charts.lock
    (operations/chart_lock.py), before anything renders or starts; every refusal (no
    chart, another digest, an unreadable lock) is a RenderFailed of one line."""
    from adapters.charts import ChartUnavailable
    from adapters.helm_cli import HelmNotFound
    from operations.chart_lock import ChartLockInvalid, ChartLockMismatch, check_chart

    try:
        return check_chart(env, directory, update=update)
    except (ChartUnavailable, ChartLockInvalid, ChartLockMismatch, HelmNotFound) as exc:
        raise RenderFailed(str(exc)) from None


@dataclass(frozen=True)
class Prepared:
    """An environment loaded, validated and rendered once: every command that starts
    something renders first (bad values fail before anything starts) and keeps the render
    for what it shows, instead of rendering again."""

    env: Environment
    manifests: str
    lock: LockStatus | None = None
    """The chart checked against charts.lock (operations/chart_lock.py)."""


def prepare(name: str, directory: Path) -> Prepared:
    """`load`, the chart checked against charts.lock, then `render`; raises
    `InvalidEnvironment` or `RenderFailed`."""
    env = load(name, directory)
    lock = check_chart_lock(env, directory)
    return Prepared(env, render(env), lock)


def lock_charts(name: str, directory: Path, update: bool = False) -> LockStatus:
    """`starter.py lock-charts`: load, fetch the chart and record (or with `update`
    replace) its charts.lock entry; raises `InvalidEnvironment` or `RenderFailed`."""
    return check_chart_lock(load(name, directory), directory, update=update)


@dataclass(frozen=True)
class WebUiExposure:
    """Who can reach the new cluster's Web UI, and how (shown before anything starts)."""

    enabled: bool
    url: str | None = None
    plain_http: bool = False
    """No web_ingress.tls_secret: the UI is served over HTTP."""
    public: bool = False
    """web_ingress.public: true and no access control."""
    allowed_cidrs: tuple[str, ...] = ()
    auth_url: str | None = None
    oidc_provider: str | None = None
    """The UI's own OIDC sign-in (web_ui.auth: oidc): the provider's issuer URL."""
    oidc_client: str | None = None


def web_ui_exposure(env: Environment) -> WebUiExposure:
    ingress = env.web_ingress
    oidc = env.web_ui.oidc
    provider, client = (oidc.provider_url, oidc.client_id) if oidc else (None, None)
    if not ingress.enabled:
        return WebUiExposure(enabled=False, oidc_provider=provider, oidc_client=client)
    scheme = "https" if ingress.tls_secret else "http"
    return WebUiExposure(
        enabled=True,
        url=f"{scheme}://{ingress.host}",
        plain_http=not ingress.tls_secret,
        public=not ingress.access.restricted,
        allowed_cidrs=ingress.access.allowed_cidrs,
        auth_url=ingress.access.auth_url,
        oidc_provider=provider,
        oidc_client=client,
    )


@dataclass(frozen=True)
class EnvironmentSummary:
    """What `validate` shows: the chart, versions, targets, the Web UI's exposure and the
    rendered objects."""

    rows: tuple[tuple[str, str], ...]
    exposure: WebUiExposure


def chart_source(env: Environment) -> str:
    """Where the chart comes from: its local copy, or its repository (and the mirror the
    machine's TEMPORAL_BOOTSTRAP_CHART_MIRROR setting fetches it from instead)."""
    from adapters.charts import chart_source as source_of

    chart = env.chart
    if chart.local_path:
        return chart.local_path
    used = source_of(chart)
    return chart.repository if used.setting is None else f"{chart.repository}, via {used.location}"


def notifications_text(env: Environment) -> str:
    """Who is told what (`validate`): each webhook, its events and where the worker reads its
    URL, which `validate` cannot check (it is the worker's environment, not this one's)."""
    return (
        "; ".join(
            f"{w.name}: {', '.join(e.value for e in w.events)} (URL from the worker's {w.source})"
            for w in env.notifications.webhooks
        )
        or "none (docs/observability.md)"
    )


def archival_text(env: Environment) -> str:
    """What the cluster archives and where (`validate`), and which namespaces archive."""
    cluster = env.archival
    if not cluster.any_enabled:
        return "off (archival)"
    kinds = []
    for kind in ARCHIVAL_KINDS:
        spec = cluster.kind(kind)
        archiving = [
            ns.name
            for ns in env.temporal_namespaces
            if ns.archival
            and (declared := ns.archival.kind(kind))
            and declared.state == ArchivalState.ENABLED
        ]
        if spec.enabled:
            kinds.append(
                f"{kind} to {spec.uri} by default (namespaces: {', '.join(archiving) or 'none'} "
                f"declared, others {spec.namespace_default.value})"
            )
        else:
            kinds.append(f"{kind} off")
    assert cluster.s3store is not None  # an enabled kind needs it
    return (
        f"{'; '.join(kinds)}; S3 in {cluster.s3store.region} with the server pods' AWS "
        "credentials (IAM role)"
    )


def summarize(
    env: Environment, manifests: str, lock: LockStatus | None = None
) -> EnvironmentSummary:
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
            ("archival", archival_text(env)),
            ("notifications", notifications_text(env)),
            ("rendered objects", ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))),
            *((("chart lock", lock.text()),) if lock is not None else ()),
        ),
        exposure=web_ui_exposure(env),
    )


__all__ = [
    "MAX_INPUT_BYTES",
    "EnvironmentSummary",
    "InvalidEnvironment",
    "Prepared",
    "RenderFailed",
    "WebUiExposure",
    "check_chart_lock",
    "lock_charts",
    "load",
    "prepare",
    "render",
    "summarize",
    "web_ui_exposure",
    "workflow_input_size",
]
