"""The version tables and the upgrade path, checked against the shipped charts and the facts
note: per-patch schema versions, broken releases, and the hops from a live server to a
declared chart."""

from __future__ import annotations

import pytest
import yaml

from declared_state import versions
from declared_state.chart_files import read_chart_metadata
from declared_state.models import ChartSpec, ImageOverride, ImagesSpec
from declared_state.upgrade_path import UpgradeRefused, hop_chart, plan_upgrade
from tests.helpers import MIRROR_CHARTS


@pytest.mark.parametrize("chart", sorted(p.name for p in MIRROR_CHARTS.glob("temporal-*")))
def test_the_table_agrees_with_every_shipped_chart(chart):
    meta = read_chart_metadata(MIRROR_CHARTS / chart)
    assert versions.server_version_for_chart(meta.version) == meta.app_version
    assert versions.schema_versions_for_server(meta.app_version) is not None


def _pinned(chart: str) -> dict[str, str]:
    """The image references a chart's own values.yaml pins, read here independently."""
    values = yaml.safe_load((MIRROR_CHARTS / chart / "values.yaml").read_text())
    return {
        name: f"{values[key]['image']['repository']}:{values[key]['image']['tag']}"
        for name, key in (("server", "server"), ("admin_tools", "admintools"), ("web", "web"))
    }


@pytest.mark.parametrize("chart", sorted(p.name for p in MIRROR_CHARTS.glob("temporal-*")))
def test_the_image_table_is_what_every_shipped_chart_pins(chart):
    version = chart.removeprefix("temporal-")
    images = ImagesSpec().resolve(ChartSpec(version=version, server_version=None))
    assert {n: i.reference for n, i in images.components() if i} == _pinned(chart)


def test_every_hop_carries_its_charts_images_and_overrides_repositories_everywhere_tags_last():
    overrides = ImagesSpec(
        admin_tools=ImageOverride(repository="mirror.example.com/temporalio/admin-tools"),
        web=ImageOverride(tag="2.99.0-custom"),
    )
    plan = plan_upgrade("1.25.2", "0.52.0", chart("1.6.0"), overrides)
    for hop in plan:
        pinned = _pinned(f"temporal-{hop.chart}")
        assert hop.images is not None
        assert hop.images.server is not None and hop.images.server.reference == pinned["server"]
        assert hop.images.admin_tools is not None
        assert hop.images.admin_tools.reference == ("mirror.example.com/" + pinned["admin_tools"])
        assert hop.images.web is not None
        web = "temporalio/ui:2.99.0-custom" if hop.chart == "1.6.0" else pinned["web"]
        assert hop.images.web.reference == web


@pytest.mark.parametrize(
    ("server", "default_store", "visibility_store"),
    [
        ("1.25.2", "1.14", "1.6"),
        ("1.26.0", "1.14", "1.6"),
        ("1.26.1", "1.14", "1.6"),
        ("1.26.2", "1.14", "1.7"),
        ("1.27.0", "1.15", "1.9"),
        ("1.27.2", "1.16", "1.9"),
        ("1.28.1", "1.17", "1.9"),
        ("1.29.1", "1.18", "1.9"),
        ("1.30.3", "1.18", "1.13"),
        ("1.31.2", "1.19", "1.14"),
    ],
)
def test_schema_versions_are_per_patch(server, default_store, visibility_store):
    assert versions.schema_versions_for_server(server) == versions.SchemaVersions(
        default_store, visibility_store
    )


def test_unknown_server_has_no_schema():
    assert versions.schema_versions_for_server("1.32.0") is None
    assert versions.schema_versions_for_server("1.23.0") is None


@pytest.mark.parametrize(
    ("chart", "server"),
    [
        ("0.51.3", "1.25.2"),
        ("0.56.0", "1.27.0"),
        ("0.57.0", "1.27.1"),
        # the 1.29 line, each tag's Chart.yaml appVersion upstream (the chart went back)
        ("0.68.1", "1.29.0"),
        ("0.69.0", "1.29.1"),
        ("0.70.0", "1.29.0"),
        ("0.71.0", "1.29.0"),
        ("0.72.0", "1.29.1"),
        ("0.73.0", "1.29.1"),
        ("0.73.2", "1.29.1"),
        ("1.3.0", "1.31.0"),
        ("1.3.1", None),
        ("0.50.0", None),
    ],
)
def test_chart_lines(chart, server):
    assert versions.server_version_for_chart(chart) == server


def test_broken_release_names_the_next_good_one():
    message = versions.broken_release("1.27.0")
    assert message is not None
    assert "known to be broken" in message and "1.27.1" in message and "0.56.1-0.58.x" in message
    assert versions.broken_release("1.27.1") is None


def test_values_layout():
    assert versions.values_layout("0.74.0") == "persistence"
    assert versions.values_layout("1.0.0") == "datastores"


def chart(version: str) -> ChartSpec:
    return ChartSpec(version=version)


def hops(live: str, live_chart: str | None, target: str) -> list[tuple[str, str]]:
    return [(h.chart, h.server) for h in plan_upgrade(live, live_chart, chart(target))]


def test_six_hops_from_1_25_to_1_31_keep_the_old_layout_until_the_declared_chart():
    assert hops("1.25.2", "0.52.0", "1.6.0") == [
        ("0.55.0", "1.26.2"),
        ("0.63.0", "1.27.2"),
        ("0.67.0", "1.28.1"),
        ("0.73.2", "1.29.1"),
        ("0.74.0", "1.30.3"),
        ("1.6.0", "1.31.2"),
    ]


def test_a_cluster_on_the_new_layout_stays_on_it():
    assert hops("1.29.1", "1.0.0", "1.6.0") == [("1.1.1", "1.30.3"), ("1.6.0", "1.31.2")]


def test_each_hop_carries_its_schema_and_where_it_starts():
    plan = plan_upgrade("1.25.2", "0.52.0", chart("0.63.0"))
    assert [(h.number, h.from_server, h.default_schema, h.visibility_schema) for h in plan] == [
        (1, "1.25.2", "1.14", "1.7"),
        (2, "1.26.2", "1.16", "1.9"),
    ]


def test_the_current_minor_goes_to_its_latest_patch_first():
    assert hops("1.26.0", "0.53.0", "0.63.0") == [("0.55.0", "1.26.2"), ("0.63.0", "1.27.2")]


def test_a_patch_upgrade_within_a_minor_is_one_hop():
    assert hops("1.31.0", "1.2.0", "1.6.0") == [("1.6.0", "1.31.2")]


def test_a_chart_change_without_a_server_change_is_one_hop():
    plan = plan_upgrade("1.30.3", "0.74.0", chart("1.1.1"))
    assert [(h.chart, h.chart_only) for h in plan] == [("1.1.1", True)]


def test_nothing_to_do():
    assert plan_upgrade("1.25.2", "0.52.0", chart("0.52.0")) == ()


def test_downgrade_is_refused_with_what_to_do_instead():
    with pytest.raises(UpgradeRefused) as info:
        plan_upgrade("1.27.2", "0.63.0", chart("0.55.0"))
    assert "cannot be downgraded" in str(info.value)
    assert "snapshot" in str(info.value)


def test_a_cluster_older_than_the_tables_is_refused():
    with pytest.raises(UpgradeRefused) as info:
        plan_upgrade("1.23.1", None, chart("0.52.0"))
    assert "upgrade it to 1.25 by hand first" in str(info.value)


def test_hop_chart_is_the_declared_one_only_for_the_last_hop():
    target = ChartSpec(version="1.6.0", local_path="/charts/temporal-1.6.0", repository="http://r")
    first, *_, last = plan_upgrade("1.29.1", "0.73.2", target)
    assert hop_chart(target, last) == target
    middle = hop_chart(target, first)
    assert (middle.version, middle.local_path, middle.repository) == ("0.74.0", None, "http://r")
    assert middle.target_server_version == "1.30.3"
