"""The hops from the server version a cluster runs now to the declared chart.

Temporal moves one minor version at a time: first the latest patch of the current minor
(when more minors follow), then `1.(n+1).latest`, and so on; each hop is a chart and the
server patch it deploys (`versions.UPGRADE_PATH`), the last hop is the declared chart
itself. Where a minor has a chart in each values layout (1.30: 0.74.0 and 1.1.1), the hop
keeps the layout the cluster runs now, so the layout changes only where it must (at the
declared chart, or at the first minor no chart of the old layout deploys).

Refused, with what to do instead: a downgrade (the schema cannot go back: restore the
snapshot taken before the upgrade), a cluster older than the tables' first upgrade chart,
and a gap in the path. Pure: used by the upgrade workflow and its tests.
"""

from __future__ import annotations

from base.model import FrozenModel
from declared_state import versions
from declared_state.models import ChartSpec, Environment, ImageSet, ImagesSpec
from declared_state.versions import ChartRelease, version_key


class UpgradeRefused(ValueError):
    """The declared chart cannot be reached from the live version; the message says why
    and what to do instead."""


class Hop(FrozenModel):
    """One step of an upgrade: move the cluster to `chart` / `server`, schema first."""

    number: int
    from_server: str
    from_chart: str | None
    chart: str
    server: str
    default_schema: str
    visibility_schema: str
    images: ImageSet | None = None
    """What the hop's chart pins (server, admin-tools, web) with the environment's
    overrides; None only in a hop recorded before images were planned."""

    @property
    def chart_only(self) -> bool:
        """The server version stays; only the chart changes (no schema change)."""
        return self.from_server == self.server


def _pick(releases: tuple[ChartRelease, ...], layout: versions.ValuesLayout | None) -> ChartRelease:
    same = [r for r in releases if versions.values_layout(r.chart) == layout]
    return same[0] if same else releases[0]


def plan_upgrade(
    live_server: str,
    live_chart: str | None,
    target: ChartSpec,
    images: ImagesSpec | None = None,
) -> tuple[Hop, ...]:
    """The hops from `live_server` (deployed with `live_chart`) to `target`; () when the
    cluster already runs the declared chart and server. Each hop carries the images its
    chart pins, `images` (the environment's overrides) applied: repositories on every hop,
    tags on the declared chart's only. Raises UpgradeRefused."""
    overrides = images or ImagesSpec()
    target_server = target.target_server_version
    if version_key(target_server) < version_key(live_server):
        raise UpgradeRefused(
            f"the cluster runs Temporal server {live_server}, newer than the declared chart "
            f"{target.version} (server {target_server}): Temporal cannot be downgraded, its "
            f"schema does not go back. Declare chart.version {live_chart or 'as deployed'} "
            "again, or restore the database from the snapshot taken before the upgrade and "
            "provision the older chart"
        )
    if live_server == target_server and live_chart == target.version:
        return ()
    live_minor, target_minor = versions.minor_of(live_server), versions.minor_of(target_server)
    if live_minor[0] != target_minor[0]:
        raise UpgradeRefused(f"no upgrade path from server {live_server} to {target_server}")
    releases: list[ChartRelease] = []
    layout = versions.values_layout(live_chart) if live_chart else None
    if target_minor > live_minor:
        catch_up = versions.UPGRADE_PATH.get(live_minor)
        if catch_up is None and live_minor < min(versions.UPGRADE_PATH):
            first = ".".join(map(str, min(versions.UPGRADE_PATH)))
            raise UpgradeRefused(
                f"the cluster runs Temporal server {live_server}; the upgrade tables start at "
                f"server {first}: upgrade it to {first} by hand first (one minor at a time)"
            )
        if catch_up is not None:
            release = _pick(catch_up, layout)
            if version_key(release.server) > version_key(live_server):
                releases.append(release)
                layout = versions.values_layout(release.chart)
        for minor in range(live_minor[1] + 1, target_minor[1]):
            path = versions.UPGRADE_PATH.get((live_minor[0], minor))
            if path is None:
                raise UpgradeRefused(
                    f"no chart is known for Temporal server {live_minor[0]}.{minor}, which an "
                    f"upgrade from {live_server} to {target_server} must pass"
                )
            release = _pick(path, layout)
            releases.append(release)
            layout = versions.values_layout(release.chart)
    releases.append(ChartRelease(target.version, target_server))
    hops: list[Hop] = []
    server, chart = live_server, live_chart
    for number, release in enumerate(releases, start=1):
        schema = versions.schema_versions_for_server(release.server)
        if schema is None:
            raise UpgradeRefused(f"no schema versions are known for server {release.server}")
        last = number == len(releases)
        hops.append(
            Hop(
                number=number,
                from_server=server,
                from_chart=chart,
                chart=release.chart,
                server=release.server,
                default_schema=schema.default_store,
                visibility_schema=schema.visibility_store,
                images=overrides.resolve(
                    _release_chart(target, release.chart, release.server), declared=last
                ),
            )
        )
        server, chart = release.server, release.chart
    return tuple(hops)


def hop_chart(target: ChartSpec, hop: Hop) -> ChartSpec:
    """The chart spec a hop installs: the declared one for the last hop (its local copy
    included), the same repository at the hop's version for the others."""
    return _release_chart(target, hop.chart, hop.server)


def _release_chart(target: ChartSpec, chart: str, server: str) -> ChartSpec:
    if chart == target.version:
        return target
    return ChartSpec(
        repository=target.repository, name=target.name, version=chart, server_version=server
    )


def hop_environment(env: Environment, hop: Hop) -> Environment:
    """The environment a hop's steps see: the hop's chart, and exactly the hop's images (so
    the rendered values, the schema Job and the preflight agree on every image)."""
    update: dict[str, object] = {"chart": hop_chart(env.chart, hop)}
    if hop.images is not None:
        update["images"] = ImagesSpec.exactly(hop.images, env.images.pin)
    return env.model_copy(update=update)
