"""The product as a user (and the Dockerfile) installs it: `scripts/install-product.sh` into a
fresh virtual environment outside the checkout, WITHOUT extras (the `[local]` extra holds the
stand-ins' packages only), then the console scripts run from an unrelated folder.

A module the product imports but does not declare (click, before #18.2: it came in only with
moto[server] in the `[local]` extra) makes `--help` and the import check below fail.

Paths in the environment files are resolved against the environments folder (not the
checkout, not site-packages); the chart comes from the machine's mirror setting, here a copy
of the chart in a folder of its own, as on a machine without internet access.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import ENVIRONMENTS, MIRROR_CHARTS, PRODUCT_PACKAGES, PROJECT_ROOT, wait_for


def plain_environ(*drop: str) -> dict[str, str]:
    """os.environ without PYTHONPATH (the test runner's points at the checkout, which would
    shadow the installed package) and without the given prefixes."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith(drop)
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv made by the image's own install script, without extras."""
    root = tmp_path_factory.mktemp("venv") / "temporal-bootstrap"
    proc = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "install-product.sh"), str(root)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert not (PROJECT_ROOT / "build").exists(), "the install must not build inside the checkout"
    return root / "bin"


# The addresses `local` interpolates are only read, never dialled, by `validate`/`render`.
LOCAL_VARIABLES = {
    "LOCAL_STACK_DB_HOST": "db.local.test",
    "LOCAL_STACK_DB_PORT": "3306",
    "LOCAL_STACK_TARGET_ADDRESS": "127.0.0.1:7233",
    "LOCAL_STACK_IMAGE_REGISTRY": "http://127.0.0.1:9",
}


@pytest.fixture(scope="module")
def chart_copy(tmp_path_factory) -> Path:
    """A mirror folder holding a copy of the chart the environments declare."""
    mirror = tmp_path_factory.mktemp("chart-mirror")
    shutil.copytree(MIRROR_CHARTS / "temporal-0.52.0", mirror / "temporal-0.52.0")
    return mirror


def _console(
    installed: Path, *args: str, cwd: Path, mirror: Path, state: Path
) -> subprocess.CompletedProcess[str]:
    env = plain_environ("TEMPORAL_", "VIRTUAL_ENV", "LOCAL_STACK_", "HELM_BIN")
    env.update(LOCAL_VARIABLES, COLUMNS="250", NO_COLOR="1")
    env.update(
        TEMPORAL_BOOTSTRAP_CHART_MIRROR=str(mirror),
        TEMPORAL_BOOTSTRAP_STATE_DIR=str(state),
        PATH=f"{installed}:{env.get('PATH', '')}",  # the install's own helm
    )
    return subprocess.run(
        [str(installed / "temporal-bootstrap"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_console_script_runs_from_a_plain_install(installed, tmp_path, chart_copy):
    proc = _console(installed, "--help", cwd=tmp_path, mirror=chart_copy, state=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validate" in proc.stdout and "provision" in proc.stdout
    # Usage lines name the command the user typed, not the checkout's starter.py.
    assert proc.stdout.startswith("Usage: temporal-bootstrap [OPTIONS] COMMAND"), proc.stdout


def test_console_script_validates_and_renders_a_copy_of_the_environments_elsewhere(
    installed, tmp_path, chart_copy
):
    elsewhere = tmp_path / "platform-repo" / "environments"
    elsewhere.mkdir(parents=True)
    for source in ENVIRONMENTS.glob("*.yaml"):  # as they are
        (elsewhere / source.name).write_text(source.read_text())
    work = tmp_path / "somewhere-else"
    work.mkdir()
    where = ("--environments-dir", str(elsewhere))

    proc = _console(
        installed, "validate", "local", *where, cwd=work, mirror=chart_copy, state=work / ".s"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "environment local: valid" in proc.stdout
    assert f"temporal 0.52.0 (https://go.temporal.io/helm-charts, via {chart_copy})" in proc.stdout
    assert "6 Deployment" in proc.stdout
    assert (elsewhere / "charts.lock").is_file()  # beside the environments, not the checkout

    rendered = _console(
        installed, "render", "staging", *where, cwd=work, mirror=chart_copy, state=work / ".s"
    )
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    names = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(rendered.stdout) if d}
    assert ("Deployment", "temporal-frontend") in names


def _venv_python(installed: Path, script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`script` run by the plain install's own python, away from the checkout."""
    return subprocess.run(
        [str(installed / "python"), "-c", script],
        cwd="/",
        env=plain_environ(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_every_product_module_imports_in_the_plain_install(installed):
    """Each module of the product, imported in the venv without extras: an undeclared
    dependency (a module only a test tool or an extra brings) fails here."""
    script = (
        "import importlib, pkgutil, sys\n"
        f"packages = {PRODUCT_PACKAGES!r}\n"
        "names = ['starter', 'worker']\n"
        "for package in packages:\n"
        "    module = importlib.import_module(package)\n"
        "    names += [m.name for m in pkgutil.walk_packages(module.__path__, package + '.')]\n"
        "failed = []\n"
        "for name in names:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "outside = [n for n in names if n in sys.modules and not (sys.modules[n].__file__ or '').startswith(sys.prefix)]\n"
        "print(len(names))\n"
        "print('\\n'.join(f'{n}: not from the venv' for n in outside))\n"
        "print('\\n'.join(failed))\n"
    )
    proc = _venv_python(installed, script, timeout=120)
    assert proc.returncode == 0, proc.stderr
    count, *failed = proc.stdout.strip().splitlines()
    assert failed == []
    assert int(count) > 60  # every module was found, not just the packages


def test_the_product_core_needs_nothing_from_the_local_extra(installed):
    """The stand-ins' packages are an extra, and the entry points never import them."""
    script = (
        "import importlib.metadata as m, sys\n"
        "import starter, worker, operations.runs\n"
        "loaded = sorted({n.split('.')[0] for n in sys.modules} & {'aiohttp', 'moto', 'local_stack'})\n"
        "core = [r for r in m.requires('temporal-bootstrap') if 'extra ==' not in r]\n"
        "print(loaded, [r for r in core if r.startswith(('aiohttp', 'moto'))])\n"
    )
    proc = _venv_python(installed, script, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] []"


def test_the_installed_worker_starts_and_stops_cleanly(installed, target_temporal, tmp_path):
    """The Dockerfile's entry point, from the script's venv, against a Temporal server."""
    env = plain_environ("TEMPORAL_", "VIRTUAL_ENV")
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
