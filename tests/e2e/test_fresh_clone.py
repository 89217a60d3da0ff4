"""The demo path on a fresh clone with nothing beside it (#18.1): no `../shared`.

The repository (this worktree's HEAD) is cloned into an empty folder and the demo's steps run
there as scripts/demo.sh runs them (`python -m local_stack up`, `python worker.py
--local-stack` in the background, `python starter.py --local-stack provision local`), with
the shared venv's interpreter and PYTHONPATH at the clone instead of a new venv (setup.sh is
not the subject here). helm comes from HELM_BIN, as on a machine where it is installed.

- With TEMPORAL_BOOTSTRAP_CHART_MIRROR at a copy of the chart elsewhere, it provisions.
- Without a mirror and without network (HTTPS_PROXY at a closed port, so a machine that has
  network behaves the same), `local_stack up` ends with one line naming the chart, the
  repository and the setting, exit 3, no traceback, and no process of the clone runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import PROJECT_ROOT
from tests.helpers import MIRROR_CHARTS

SHARED_CHART = MIRROR_CHARTS / "temporal-0.52.0"
HELM = PROJECT_ROOT / ".tools" / "helm" / "v4" / "helm"


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """`git clone` of this checkout's HEAD into an empty folder."""
    root = tmp_path_factory.mktemp("fresh") / "temporal-bootstrap"
    head = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        ["git", "clone", "-q", "--no-checkout", str(PROJECT_ROOT), str(root)], check=True
    )
    subprocess.run(["git", "-C", str(root), "checkout", "-q", head], check=True)
    assert not (root.parent / "shared").exists()
    return root


def clone_env(clone: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "LOCAL_STACK_", "KUBECONFIG", "AWS_"))
    }
    env.update(PYTHONPATH=str(clone), HELM_BIN=str(HELM), NO_COLOR="1", **extra)
    return env


def run(clone: Path, env: dict[str, str], *args: str, timeout: float = 180):
    return subprocess.run(
        [sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout
    )


def processes_of(clone: Path) -> list[str]:
    """Command lines of the processes that name the clone (the stack's servers all do)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(clone) in argv or cwd.startswith(str(clone)):
            found.append(f"{entry.name}: {argv[:200]}")
    return found


@pytest.fixture
def stack_down(clone) -> Iterator[None]:
    yield
    subprocess.run(
        [sys.executable, "-m", "local_stack", "down"],
        cwd=clone,
        env=clone_env(clone),
        capture_output=True,
        timeout=120,
    )


def test_without_a_mirror_or_network_the_demo_stops_in_one_line(clone, stack_down):
    env = clone_env(
        clone, HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", NO_PROXY=""
    )
    up = run(clone, env, "-m", "local_stack", "up")
    assert up.returncode == 3, up.stdout + up.stderr
    assert "Traceback" not in up.stdout + up.stderr
    lines = up.stderr.strip().splitlines()
    assert len(lines) == 1, up.stderr
    assert lines[0].startswith("error: chart temporal 0.52.0 could not be fetched from ")
    assert "https://go.temporal.io/helm-charts" in lines[0]
    assert "set TEMPORAL_BOOTSTRAP_CHART_MIRROR" in lines[0]
    assert processes_of(clone) == []
    assert not (clone / ".state" / "local-stack" / "stack.json").exists()


def test_with_a_mirror_elsewhere_the_demo_provisions(clone, tmp_path, stack_down):
    mirror = tmp_path / "charts-mirror"
    shutil.copytree(SHARED_CHART, mirror / "temporal-0.52.0")
    env = clone_env(clone, TEMPORAL_BOOTSTRAP_CHART_MIRROR=str(mirror))
    up = run(clone, env, "-m", "local_stack", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "worker.py", "--local-stack"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "worker ready" not in log.read_text():
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker did not become ready"
            time.sleep(0.3)
        proc = run(clone, env, "starter.py", "--local-stack", "provision", "local", timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "provision-local done (changed)" in proc.stdout
        assert "Traceback" not in proc.stdout + proc.stderr
        # The chart came from the mirror, through the clone's own cache and lock.
        assert list((clone / ".state" / "chart-cache" / "folder").glob("temporal-0.52.0-*"))
        # The copy's content digest is the one the shipped charts.lock records: unchanged.
        status = subprocess.run(
            ["git", "-C", str(clone), "status", "--porcelain", "environments"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert status.stdout == ""
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
