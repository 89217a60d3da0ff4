"""The prepared copy of a local chart (activities/helm_cli.py) with the real helm binary.

The offline chart lists subcharts it does not vendor, so helm gets a prepared copy without
them, kept in the state folder. An edit anywhere in the chart must reach the next render.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from activities.helm_cli import HelmCli, render_environment
from declared_state.loader import load_environment
from declared_state.paths import STATE_VARIABLE
from tests.helpers import PROJECT_ROOT, copy_environments

CHART = PROJECT_ROOT.parent / "shared" / "charts" / "temporal-0.52.0"


@pytest.fixture
def chart_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A chart of our own (so it can be edited) and a state folder of our own."""
    monkeypatch.setenv(STATE_VARIABLE, str(tmp_path / "state"))
    return Path(shutil.copytree(CHART, tmp_path / "chart"))


def _render_kinds(chart: Path, tmp_path: Path, helm: HelmCli) -> dict[tuple[str, str], dict]:
    env_dir = copy_environments(tmp_path / "environments")
    staging = env_dir / "staging.yaml"
    staging.write_text(staging.read_text() + f"\nchart:\n  local_path: {chart}\n")
    env = load_environment("staging", env_dir)
    docs = yaml.safe_load_all(render_environment(env, helm))
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if isinstance(d, dict)}


def test_an_edited_template_reaches_the_next_render(chart_copy, tmp_path, helm_binaries):
    helm = HelmCli(binary=helm_binaries["v4"])
    assert ("ConfigMap", "edited-after-first-render") not in _render_kinds(
        chart_copy, tmp_path, helm
    )

    (chart_copy / "templates" / "edited.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edited-after-first-render\n"
    )
    web = chart_copy / "templates" / "web-deployment.yaml"
    web.write_text(
        web.read_text().replace(
            "app.kubernetes.io/component: web", "app.kubernetes.io/component: web-edited", 1
        )
    )

    rendered = _render_kinds(chart_copy, tmp_path, helm)
    assert ("ConfigMap", "edited-after-first-render") in rendered
    selector = rendered[("Deployment", "temporal-web")]["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "web-edited"
