"""The prepared copy of a local chart (adapters/helm_cli.py) with the real helm binary.

The offline chart lists subcharts it does not vendor, so helm gets a prepared copy without
them, kept in the state folder. An edit anywhere in the chart must reach the next render.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from adapters.helm_cli import HelmCli, render_environment
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


def _logging_helm(path: Path, real: str, log: Path) -> str:
    """A helm that logs its arguments, then runs the real binary."""
    path.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    path.chmod(0o755)
    return str(path)


def test_helm_version_is_asked_once_per_binary(tmp_path, helm_binaries):
    # Every install_chart run binds a new HelmCli to its environment's context; `helm
    # version` (a process start) is asked once for the binary, not once per run.
    log = tmp_path / "calls.log"
    helm = _logging_helm(tmp_path / "helm", helm_binaries["v4"], log)

    majors = [HelmCli(binary=helm).with_context(ctx).major_version for ctx in ("a", "b", "a")]

    assert majors == [4, 4, 4]
    assert log.read_text().splitlines() == ["version --short"]

    # The binary replaced in place (another mtime) is asked again.
    _logging_helm(tmp_path / "helm", helm_binaries["v3"], log)
    os.utime(tmp_path / "helm", ns=(0, 10**18))
    assert HelmCli(binary=helm).with_context("a").major_version == 3
    assert log.read_text().splitlines() == ["version --short"] * 2
