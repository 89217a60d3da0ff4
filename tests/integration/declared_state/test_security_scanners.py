"""Every shipped chart (both values layouts), rendered with the staging environment (plus an
OIDC sign-in for the Web UI and a dynamic config) together with the NetworkPolicies the
bootstrap keeps for it, and the deploy/ example overlay as kubectl's kustomize builds it
(#23.7), scanned by tools nobody here wrote (#23.3): checkov (`--framework kubernetes`) finds
nothing outside the skip list in tests/fixtures/checkov-skips.yaml (checkov-skips-deploy.yaml
for deploy/; each entry with its reason), and
kubernetes-validate `--strict` accepts every object for Kubernetes 1.33.

Both scanners live in their own venv (.tools/checkov, installed by scripts/setup.sh) so that
their dependencies stay out of the product's. One checkov run scans all charts at once (its
start-up is most of its time); a skip entry that no finding uses fails the test too, so the
list only shrinks.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.helm_cli import HelmCli, chart_reference
from declared_state.chart_values import build_chart_values
from declared_state.network_policies import network_policies

from .test_chart_values_render import SHIPPED, environment, with_sign_in

ROOT = Path(__file__).resolve().parents[3]
SCANNERS = ROOT / ".tools" / "checkov" / "bin"
SKIPS = ROOT / "tests" / "fixtures" / "checkov-skips.yaml"
DEPLOY_SKIPS = ROOT / "tests" / "fixtures" / "checkov-skips-deploy.yaml"
KUBECTL = str(ROOT / ".tools" / "kubectl" / "kubectl")
DEPLOY_FILE = "deploy"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, helm_binaries) -> Path:
    if not (SCANNERS / "checkov").is_file():
        pytest.fail(f"checkov missing in {SCANNERS}: run scripts/setup.sh")
    folder = tmp_path_factory.mktemp("rendered")
    for version in SHIPPED:
        # with the Web UI's OIDC sign-in and dynamic config (#22), so both are scanned too
        env = with_sign_in(environment(version))
        text = HelmCli(binary=helm_binaries["v3"]).template(
            env.kubernetes.release,
            env.kubernetes.namespace,
            chart_reference(env.chart),
            build_chart_values(env),
        )
        # ... beside the NetworkPolicies the bootstrap keeps for that release (#23.3).
        policies = yaml.safe_dump_all(network_policies(env), sort_keys=False)
        (folder / f"{version}.yaml").write_text(f"{text}\n---\n{policies}")
    # deploy/ as an operator applies it, scanned in the same runs (#23.7).
    built = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / "deploy" / "overlays" / "example")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (folder / f"{DEPLOY_FILE}.yaml").write_text(built.stdout)
    return folder


def skipped(entry: dict[str, Any], check_id: str, where: str) -> bool:
    return fnmatch.fnmatchcase(check_id, entry["check"]) and any(
        fnmatch.fnmatchcase(where, p) for p in entry.get("only", ["*"])
    )


@pytest.fixture(scope="module")
def checkov_failures(rendered: Path) -> list[dict[str, Any]]:
    """One checkov run over the charts and the deploy example (start-up is most of its
    time): its failed checks."""
    run = subprocess.run(
        [
            str(SCANNERS / "checkov"),
            "-d",
            str(rendered),
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = json.loads(run.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["resource_count"] > 0 and report["summary"]["parsing_errors"] == 0
    failed: list[dict[str, Any]] = report["results"]["failed_checks"]
    return failed


def outside(findings: list[dict[str, Any]], skips_file: Path) -> list[str]:
    """The findings no entry of `skips_file` covers. Fails when an entry has no reason or
    covers no finding (the list only shrinks)."""
    skips = yaml.safe_load(skips_file.read_text())
    assert all(e.get("reason") for e in skips), "every skip needs its reason"
    failures, used = [], set()
    for finding in findings:
        where = f"{Path(finding['file_path']).stem}/{finding['resource']}"
        matching = [i for i, e in enumerate(skips) if skipped(e, finding["check_id"], where)]
        if matching:
            used.add(matching[0])
        else:
            failures.append(f"{where}: {finding['check_id']} {finding['check_name']}")
    assert [skips[i]["check"] for i in range(len(skips)) if i not in used] == []
    return failures


def _is_deploy(finding: dict[str, Any]) -> bool:
    return Path(finding["file_path"]).stem == DEPLOY_FILE


def test_checkov_finds_nothing_outside_the_skip_list(checkov_failures) -> None:
    charts = [f for f in checkov_failures if not _is_deploy(f)]
    assert outside(charts, SKIPS) == []


def test_checkov_finds_nothing_in_the_deploy_example_outside_its_skip_list(
    checkov_failures,
) -> None:
    """deploy/ as an operator applies it (#23.7): `kubectl kustomize deploy/overlays/example`
    (built into the scanned folder), with its own skip list."""
    deploy = [f for f in checkov_failures if _is_deploy(f)]
    assert outside(deploy, DEPLOY_SKIPS) == []


def test_kubernetes_validate_strict_accepts_every_object_for_1_33(rendered: Path) -> None:
    run = subprocess.run(
        [
            str(SCANNERS / "kubernetes-validate"),
            "--strict",
            "--quiet",
            "-k",
            "1.33.0",
            *map(str, sorted(rendered.glob("*.yaml"))),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
