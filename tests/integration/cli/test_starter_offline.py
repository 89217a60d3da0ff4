"""`starter.py validate` and `render` as an operator runs them: real process, real helm.

Staging pulls its chart from the real repository, like a user's would; here the machine's
setting TEMPORAL_BOOTSTRAP_CHART_MIRROR points at the local stack's repository (the chart
cache, packaged and indexed), so the repository path is the one tested. The commands run on
copies of the environments: the first fetch from a repository records its digest in
charts.lock beside them, and this repository's address changes every session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import copy_environments

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def mirror(chart_repository) -> dict[str, str]:
    return {"TEMPORAL_BOOTSTRAP_CHART_MIRROR": chart_repository.url}


def starter(
    *args: str, env: dict[str, str] | None = None, columns: int = 250
) -> subprocess.CompletedProcess[str]:
    """`starter.py ARGS`; `columns` wide enough that a table row stays on one line."""
    return subprocess.run(
        [sys.executable, "starter.py", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": str(columns), **(env or {})},
    )


def test_validate_prints_a_summary(mirror, chart_repository, tmp_path):
    copy_environments(tmp_path)
    proc = starter("validate", "staging", "--environments-dir", str(tmp_path), env=mirror)
    assert proc.returncode == 0, proc.stderr
    assert (
        f"temporal 0.52.0 (https://go.temporal.io/helm-charts, via {chart_repository.url})"
        in proc.stdout
    )
    assert "1.25.2" in proc.stdout
    assert "6 Deployment" in proc.stdout
    assert "1 Ingress" in proc.stdout
    assert "Secret" not in proc.stdout


def test_validate_states_who_is_told_and_refuses_a_webhook_url(mirror, tmp_path):
    copy_environments(tmp_path)
    staging = tmp_path / "staging.yaml"
    declared = staging.read_text()
    staging.write_text(
        declared + "\nnotifications:\n  webhooks:\n    - name: ops\n"
        "      url_from_env: OPS_SLACK_WEBHOOK\n      events: [waiting, drift_found]\n"
    )
    proc = starter("validate", "staging", "--environments-dir", str(tmp_path), env=mirror)
    assert proc.returncode == 0, proc.stderr
    assert (
        "ops: waiting, drift_found (URL from the worker's environment variable OPS_SLACK_WEBHOOK)"
        in proc.stdout
    )
    token = "https://hooks.slack.com/services/T0/B0/s3cr3tT0ken"
    staging.write_text(
        declared + f"\nnotifications:\n  webhooks:\n    - name: ops\n      url: {token}\n"
    )
    refused = starter("validate", "staging", "--environments-dir", str(tmp_path), env=mirror)
    assert refused.returncode == 3
    assert "notifications.webhooks[0].url: a webhook URL is a secret" in refused.stderr
    assert "s3cr3tT0ken" not in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_chart_version_only_the_repository_has(mirror, tmp_path):
    copy_environments(tmp_path)
    staging = tmp_path / "staging.yaml"
    staging.write_text(staging.read_text() + "\nchart:\n  version: 1.6.0\n")
    proc = starter("validate", "staging", "--environments-dir", str(tmp_path), env=mirror)
    assert proc.returncode == 0, proc.stderr
    assert "temporal 1.6.0" in proc.stdout and "1.31.2" in proc.stdout
    assert "temporal 1.19, temporal_visibility 1.14" in proc.stdout


def test_render_prints_the_manifests(mirror, tmp_path):
    copy_environments(tmp_path)
    proc = starter("render", "staging", "--environments-dir", str(tmp_path), env=mirror)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "temporal-history") in names
    assert ("Ingress", "temporal-web") in names


def test_broken_environment_file_exits_3_naming_file_and_key(tmp_path):
    copy_environments(tmp_path)
    staging = tmp_path / "staging.yaml"
    staging.write_text(
        staging.read_text().replace("region: eu-west-1", "region: eu-west-1\n  prot: 3306")
    )
    proc = starter("validate", "staging", "--environments-dir", str(tmp_path))
    assert proc.returncode == 3
    assert f"{staging}: rds.prot: unknown key" in proc.stderr
    assert proc.stdout == ""


def test_unknown_environment_exits_3_and_lists_the_known_ones():
    proc = starter("render", "prod")
    assert proc.returncode == 3
    assert "unknown environment 'prod'" in proc.stderr
    assert "production" in proc.stderr and "staging" in proc.stderr


def test_validate_shows_who_can_reach_the_web_ui(tmp_path, mirror):
    copy_environments(tmp_path)
    proc = starter(
        "validate", "staging", "--environments-dir", str(tmp_path), env=mirror, columns=300
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "Web UI exposure  │ https://temporal.staging.example.com, allowed from 10.20.0.0/16, "
        "192.168.10.0/24"
    ) in proc.stdout


def test_validate_says_when_the_web_ui_is_public_over_plain_http(tmp_path, mirror):
    copy_environments(tmp_path)
    staging = tmp_path / "staging.yaml"
    data = yaml.safe_load(staging.read_text())
    data["web_ingress"] = {"host": "temporal.staging.example.com", "public": True}
    staging.write_text(yaml.safe_dump(data))
    proc = starter(
        "validate", "staging", "--environments-dir", str(tmp_path), env=mirror, columns=300
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "http://temporal.staging.example.com (PLAIN HTTP: no web_ingress.tls_secret), "
        "PUBLIC: no access control (web_ingress.public: true)"
    ) in proc.stdout
