"""read_live_versions: the server release, chart and schema versions a cluster runs now.

- Server: the image tag of each server Deployment of the release (`app.kubernetes.io/
  instance=<release>`, component frontend/history/matching/worker). The upgrade pins the tag
  to the chart's server version, so the tag is the release; when the Deployments differ (a
  rollout under way, a hop that failed half-way) the oldest one counts. A tag that is no
  version (`latest`, a digest) cannot be planned from and is refused with what to pin.
- Chart: the Deployments' `helm.sh/chart` label (`temporal-0.52.0`).
- Schema: each database's `schema_version` row, read over TLS with the cluster's own
  password and CA bundle (activities/check_database.py's reader: the database is the truth).

Also used before provisioning (`refuse_more_than_one_minor`): a cluster more than one minor
behind its declaration is refused there and pointed at `upgrade`. The drift check reports
how the live versions differ from the declared chart as drift only `upgrade` repairs
(`repairable=False`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from temporalio import activity

from adapters.clients import KubeClients
from adapters.errors import ErrorType, activity_error
from adapters.errors.kubernetes import KUBERNETES_ERRORS, kubernetes_error
from contracts.base import DriftItem
from contracts.read_live_versions import ReadLiveVersionsInput, ReadLiveVersionsResult
from declared_state.models import Environment
from declared_state.versions import minor_of, parse_version, version_key

SERVER_COMPONENTS = ("frontend", "history", "matching", "worker")


class SchemaReader(Protocol):
    """What reads both databases' schema_version (DatabasePreflight in the worker)."""

    def read_schema_versions(self, env: Environment) -> tuple[str | None, str | None]: ...


_CHART_LABEL = re.compile(r"^(?P<name>.+)-(?P<version>\d+\.\d+\.\d+(?:[-+].*)?)$")


@dataclass(frozen=True)
class LiveServer:
    """What the release's server Deployments run; `versions` empty when none exists."""

    chart: str | None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def oldest(self) -> str | None:
        return min(self.versions.values(), key=version_key) if self.versions else None


def _image_version(image: str, where: str) -> str:
    tag = image.split("@", 1)[0].rpartition(":")[2] if ":" in image.split("/")[-1] else ""
    try:
        parse_version(tag)
    except ValueError:
        raise activity_error(
            f"{where} runs image {image!r}, whose tag names no server version; pin "
            "server.image.tag to the release it runs (e.g. 1.25.2) so upgrades can plan",
            ErrorType.CONFIGURATION_MISMATCH,
        ) from None
    return tag.lstrip("v")


def read_live_server(kube: KubeClients, env: Environment) -> LiveServer:
    """The release's server Deployments: their server versions and chart."""
    k8s = env.kubernetes
    where = f"release {k8s.release!r} in namespace {k8s.namespace}"
    try:
        deployments = kube.apps_v1(k8s.context).list_namespaced_deployment(
            k8s.namespace, label_selector=f"app.kubernetes.io/instance={k8s.release}"
        )
    except KUBERNETES_ERRORS as exc:
        if isinstance(exc, ApiException) and exc.status == 404:
            return LiveServer(chart=None)
        raise kubernetes_error(f"reading the Deployments of {where}", exc) from None
    versions: dict[str, str] = {}
    charts: set[str] = set()
    items: list[Any] = deployments.items or []
    for dep in items:
        labels = dep.metadata.labels or {}
        component = labels.get("app.kubernetes.io/component")
        if component not in SERVER_COMPONENTS:
            continue
        image = dep.spec.template.spec.containers[0].image
        versions[component] = _image_version(
            image, f"Deployment {k8s.namespace}/{dep.metadata.name}"
        )
        if match := _CHART_LABEL.match(labels.get("helm.sh/chart", "")):
            charts.add(match["version"])
    # Mid-upgrade the Deployments carry two charts' labels: the older one is still running.
    chart = min(charts, key=version_key) if charts else None
    return LiveServer(chart=chart, versions=versions)


def refuse_more_than_one_minor(live: LiveServer, env: Environment) -> None:
    """Provisioning may move a cluster at most one minor, never back a minor: anything else
    is an upgrade (schema first, one minor at a time) or a downgrade."""
    running = live.oldest
    if running is None:
        return
    declared = env.chart.target_server_version
    behind = minor_of(declared)[1] - minor_of(running)[1]
    if minor_of(declared)[0] == minor_of(running)[0] and 0 <= behind <= 1:
        return
    cluster = f"the cluster runs Temporal server {running} (chart {live.chart or 'unknown'})"
    if behind < 0 or minor_of(declared)[0] < minor_of(running)[0]:
        raise activity_error(
            f"{cluster}, newer than the declared chart {env.chart.version} (server {declared}): "
            "Temporal cannot be downgraded. Declare the chart it runs, or restore the database "
            "from the snapshot taken before its upgrade and provision again",
            ErrorType.UPGRADE_REQUIRED,
        )
    raise activity_error(
        f"{cluster}, {behind} minors behind the declared chart {env.chart.version} (server "
        f"{declared}); servers move one minor at a time, schema first. Run "
        f"`python starter.py upgrade {env.name} --plan` to see the hops, then "
        f"`python starter.py upgrade {env.name}`",
        ErrorType.UPGRADE_REQUIRED,
    )


class ReadLiveVersions:
    """Reads the release from Kubernetes and the schema from the databases."""

    def __init__(self, kube: KubeClients, schema_reader: SchemaReader):
        self._kube = kube
        self._schema = schema_reader

    @activity.defn(name="read_live_versions")
    def read_live_versions(self, input: ReadLiveVersionsInput) -> ReadLiveVersionsResult:
        env = input.environment
        live = read_live_server(self._kube, env)
        default, visibility = self._schema.read_schema_versions(env)
        server = live.oldest
        drift = _drift(env, live, default, visibility)
        if server is None:
            summary = f"no Temporal release {env.kubernetes.release} in {env.kubernetes.namespace}"
        else:
            summary = f"server {server} (chart {live.chart or 'unknown'})"
            if len(set(live.versions.values())) > 1:
                summary += " mid-rollout: " + ", ".join(
                    f"{c} {v}" for c, v in sorted(live.versions.items())
                )
        summary += (
            f"; schema {env.database.default_store} {default or 'missing'}, "
            f"{env.database.visibility_store} {visibility or 'missing'}"
        )
        activity.logger.info("%s: %s", env.name, summary)
        return ReadLiveVersionsResult(
            release=env.kubernetes.release,
            namespace=env.kubernetes.namespace,
            chart=live.chart,
            server_version=server,
            server_versions=live.versions,
            default_schema=default,
            visibility_schema=visibility,
            changed=False,
            summary=summary,
            drift=drift,
            dry_run=input.dry_run,
        )


def _drift(
    env: Environment, live: LiveServer, default: str | None, visibility: str | None
) -> tuple[DriftItem, ...]:
    """Live versions that differ from what the declared chart deploys and needs. Only an
    upgrade moves them (schema first), so none is repairable by re-applying a step."""
    declared = env.chart.target_server_version
    needs = env.schema_versions
    fix = f"run `python starter.py upgrade {env.name} --plan`"
    k8s = env.kubernetes
    items = []
    if live.oldest is not None and live.oldest != declared:
        items.append(
            DriftItem(
                message=f"server {live.oldest} runs, declared {declared} (chart "
                f"{env.chart.version}): {fix}",
                kind="TemporalServer",
                namespace=k8s.namespace,
                name=k8s.release,
                path="server.image.tag",
                live=live.oldest,
                declared=declared,
                repairable=False,
            )
        )
    for database, found, wanted in (
        (env.database.default_store, default, needs.default_store),
        (env.database.visibility_store, visibility, needs.visibility_store),
    ):
        if found != wanted:
            items.append(
                DriftItem(
                    message=f"database {database} schema {found or 'missing'}, declared "
                    f"server {declared} needs {wanted}: {fix}",
                    kind="DatabaseSchema",
                    name=database,
                    path="schema_version.curr_version",
                    live=found,
                    declared=wanted,
                    repairable=False,
                )
            )
    return tuple(items)
