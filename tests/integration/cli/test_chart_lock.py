"""charts.lock (#18.1): a chart whose bytes differ from the digest recorded for its name,
version and source is refused before anything renders, installs or starts.

A repository on 127.0.0.1 serves the real 0.52.0 chart, packaged here; then the same
version with other bytes (one line added to its values.yaml), as a re-tagged or tampered
chart would be. Each starter run that should fetch anew gets an empty state folder, i.e. an
empty chart cache: another machine, or a CI job, fetching the chart the lock was written
with. The expected digests are computed here from the served bytes (and, for a mirror
folder, from the chart's files), never read from the code under test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from local_stack.chart_repository import ChartRepository
from tests.helpers import MIRROR_CHARTS, PROJECT_ROOT, copy_environments

SHARED_CHART = MIRROR_CHARTS / "temporal-0.52.0"


def _package(source: Path, served: Path, helm: str, extra_values: str = "") -> str:
    """`helm package` a copy of `source` (its absent subcharts dropped, as the local stack
    does) into `served`, index it; returns the archive's sha256."""
    for old in served.glob("*.tgz"):
        old.unlink()
    copy = served.parent / "build" / "temporal"
    shutil.rmtree(copy.parent, ignore_errors=True)
    shutil.copytree(source, copy)
    meta = yaml.safe_load((copy / "Chart.yaml").read_text())
    meta.pop("dependencies", None)
    (copy / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (copy / "Chart.lock").unlink(missing_ok=True)
    if extra_values:
        (copy / "values.yaml").write_text((copy / "values.yaml").read_text() + extra_values)
    subprocess.run([helm, "package", str(copy), "-d", str(served)], check=True, timeout=60)
    subprocess.run([helm, "repo", "index", str(served)], check=True, timeout=60)
    return hashlib.sha256((served / "temporal-0.52.0.tgz").read_bytes()).hexdigest()


def _content_digest(chart: Path) -> str:
    """The documented folder digest (docs/charts.md): sha256 over the sorted relative file
    paths, each followed by a NUL and the sha256 of the file's bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in chart.rglob("*") if p.is_file()):
        digest.update(path.relative_to(chart).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def starter(*args: str, mirror: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env.update(
        TEMPORAL_BOOTSTRAP_CHART_MIRROR=mirror,
        TEMPORAL_BOOTSTRAP_STATE_DIR=str(state),
        # provision would connect here: nothing listens, so getting that far shows in stderr
        TEMPORAL_ADDRESS="127.0.0.1:9",
        COLUMNS="300",
        NO_COLOR="1",
    )
    return subprocess.run(
        [sys.executable, "starter.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _refusal(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def environments(tmp_path) -> Path:
    return copy_environments(tmp_path / "environments")


def test_a_served_chart_with_other_bytes_is_refused_naming_both_digests(
    tmp_path, environments, helm_binaries
):
    served = tmp_path / "repository"
    served.mkdir()
    first = _package(SHARED_CHART, served, helm_binaries["v4"])
    with ChartRepository.serve(served) as repository:
        url = repository.url
        recorded = starter(
            "validate", "staging", *where(environments), mirror=url, state=tmp_path / "a"
        )
        assert recorded.returncode == 0, recorded.stdout + recorded.stderr
        assert f"recorded in {environments / 'charts.lock'}: sha256:{first} (archive, {url})" in (
            recorded.stdout
        )
        lock = yaml.safe_load((environments / "charts.lock").read_text())
        assert {"name": "temporal", "version": "0.52.0", "source": url, "kind": "archive",
                "digest": f"sha256:{first}"} in lock["charts"]  # fmt: skip
        # A second look from another empty cache gets the same bytes: it matches.
        same = starter(
            "validate", "staging", *where(environments), mirror=url, state=tmp_path / "b"
        )
        assert same.returncode == 0, same.stderr
        assert f"matches charts.lock: sha256:{first}" in same.stdout

        second = _package(SHARED_CHART, served, helm_binaries["v4"], "\n# re-tagged\n")
        assert second != first
        locked = (environments / "charts.lock").read_bytes()
        for command in (("validate", "staging"), ("render", "staging"), ("provision", "staging")):
            proc = starter(*command, *where(environments), mirror=url, state=tmp_path / "c")
            line = _refusal(proc)
            assert f"chart temporal 0.52.0 from {url} ({'TEMPORAL_BOOTSTRAP_CHART_MIRROR'})" in line
            assert f"has digest sha256:{second} (archive)" in line
            assert f"records sha256:{first} (archive)" in line
            assert "lock-charts staging --update" in line
            assert proc.stdout == ""  # provision printed no plan: it never got to connect
            assert (environments / "charts.lock").read_bytes() == locked

        # The operator accepts the new chart explicitly; then it is the locked one.
        update = starter(
            "lock-charts",
            "staging",
            "--update",
            *where(environments),
            mirror=url,
            state=tmp_path / "d",
        )
        assert update.returncode == 0, update.stderr
        assert f"sha256:{first} -> sha256:{second}" in update.stdout
        again = starter(
            "validate", "staging", *where(environments), mirror=url, state=tmp_path / "e"
        )
        assert again.returncode == 0, again.stderr


def test_a_mirror_folder_chart_is_locked_by_its_content(tmp_path, environments):
    mirror = tmp_path / "mirror"
    shutil.copytree(SHARED_CHART, mirror / "temporal-0.52.0")
    expected = _content_digest(SHARED_CHART)
    proc = starter(
        "validate", "staging", *where(environments), mirror=str(mirror), state=tmp_path / "a"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"sha256:{expected} (content, mirror folder)" in proc.stdout

    # Another copy of the folder (other file times) is the same chart: it matches.
    other = tmp_path / "other-mirror"
    shutil.copytree(SHARED_CHART, other / "temporal-0.52.0", copy_function=shutil.copyfile)
    proc = starter(
        "validate", "staging", *where(environments), mirror=str(other), state=tmp_path / "b"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"matches charts.lock: sha256:{expected}" in proc.stdout

    # One changed template: another chart under the same version.
    template = other / "temporal-0.52.0" / "templates" / "server-service.yaml"
    template.write_text(template.read_text() + "\n# edited\n")
    changed = _content_digest(other / "temporal-0.52.0")
    line = _refusal(
        starter(
            "provision", "staging", *where(environments), mirror=str(other), state=tmp_path / "c"
        )
    )
    assert f"has digest sha256:{changed} (content)" in line
    assert f"records sha256:{expected} (content)" in line
    assert f"from {other} (TEMPORAL_BOOTSTRAP_CHART_MIRROR)" in line


def where(environments: Path) -> tuple[str, str]:
    return "--environments-dir", str(environments)
