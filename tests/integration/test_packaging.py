"""The product as a user (and the Dockerfile) installs it: `scripts/install-product.sh` into a
fresh virtual environment outside the checkout, then the console scripts run from an
unrelated folder.

Paths in the environment files are resolved against the environments folder (not the
checkout, not site-packages): the copy below lives elsewhere, and its `../../shared/...`
chart path only resolves because a `shared` folder sits at that distance from the copy.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ENVIRONMENTS, PROJECT_ROOT, wait_for

SHARED = PROJECT_ROOT.parent / "shared"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv made by the image's own install script (with the [local] extra)."""
    root = tmp_path_factory.mktemp("venv") / "temporal-bootstrap"
    proc = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "install-product.sh"), str(root), "local"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert not (PROJECT_ROOT / "build").exists(), "the install must not build inside the checkout"
    return root / "bin"


# The `local` environment keeps its chart as an offline copy (`../../shared/...`); the
# addresses it interpolates are only read, never dialled, by `validate`.
LOCAL_VARIABLES = {
    "LOCAL_STACK_DB_HOST": "db.local.test",
    "LOCAL_STACK_DB_PORT": "3306",
    "LOCAL_STACK_TARGET_ADDRESS": "127.0.0.1:7233",
    "LOCAL_STACK_CHART_REPOSITORY": "http://127.0.0.1:9",
}


def _validate(installed: Path, env_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "VIRTUAL_ENV", "LOCAL_STACK_"))
    }
    env.update(LOCAL_VARIABLES, COLUMNS="250")
    env["HELM_BIN"] = str(PROJECT_ROOT / ".tools" / "helm" / "v4" / "helm")
    return subprocess.run(
        [
            str(installed / "temporal-bootstrap"),
            "validate",
            "local",
            "--environments-dir",
            str(env_dir),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_console_script_validates_a_copy_of_the_environments_elsewhere(installed, tmp_path):
    elsewhere = tmp_path / "platform-repo" / "environments"
    elsewhere.mkdir(parents=True)
    for source in ENVIRONMENTS.glob("*.yaml"):  # as they are: relative paths included
        (elsewhere / source.name).write_text(source.read_text())
    (tmp_path / "shared").symlink_to(SHARED)  # what ../../shared means from the copy
    work = tmp_path / "somewhere-else"
    work.mkdir()

    proc = _validate(installed, elsewhere, work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "environment local: valid" in proc.stdout
    assert f"temporal 0.52.0 ({(SHARED / 'charts' / 'temporal-0.52.0').resolve()})" in proc.stdout
    assert "6 Deployment" in proc.stdout

    # Without `shared` beside the copy the same relative path no longer resolves: the path
    # hangs on the environments folder, not on the checkout or the installed package.
    (tmp_path / "shared").unlink()
    moved = _validate(installed, elsewhere, work)
    assert moved.returncode == 3, moved.stdout + moved.stderr
    missing = tmp_path / "shared" / "charts" / "temporal-0.52.0"
    assert f"chart.local_path: {missing} does not exist" in moved.stderr


def test_the_product_core_needs_nothing_from_the_local_extra(installed):
    """The stand-ins' packages are an extra, and the entry points never import them."""
    script = (
        "import importlib.metadata as m, sys\n"
        "import starter, worker, operations.runs\n"
        "loaded = sorted({n.split('.')[0] for n in sys.modules} & {'aiohttp', 'moto', 'local_stack'})\n"
        "core = [r for r in m.requires('temporal-bootstrap') if 'extra ==' not in r]\n"
        "print(loaded, [r for r in core if r.startswith(('aiohttp', 'moto'))])\n"
    )
    proc = subprocess.run(
        [str(installed / "python"), "-c", script],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] []"


def test_the_installed_worker_starts_and_stops_cleanly(installed, target_temporal, tmp_path):
    """The Dockerfile's entry point, from the script's venv, against a Temporal server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "VIRTUAL_ENV"))}
    env.update(
        TEMPORAL_ADDRESS=target_temporal.address,
        TEMPORAL_TASK_QUEUE=f"packaging-{os.getpid()}",
        TEMPORAL_BOOTSTRAP_STATE_DIR=str(tmp_path / "state"),
        HELM_BIN=str(installed / "helm"),
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [str(installed / "temporal-bootstrap-worker")],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "worker ready" in log.read_text(), 60, "the worker to be ready")
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    assert code == 0, log.read_text()[-2000:]
