"""The product against a real Kubernetes cluster (kind on a laptop, or a team's cluster), with
the real AWS the environment file names: `validate`, `provision --dry-run` (the read-only
preflight) and the drift check in report mode; with a second, explicit opt-in, a provision.

Configured by environment variables, never guessed (an ordinary KUBECONFIG must not send the
suite to a cluster):
- `TEMPORAL_BOOTSTRAP_REAL_CLUSTER_ENV`: an environment file (`.../environments/kind.yaml`; its
  folder is the environments folder, so base.yaml layers under it as usual);
- `TEMPORAL_BOOTSTRAP_REAL_CLUSTER_CONTEXT`: the kube context it must name (checked, so a test
  never runs against a cluster the file does not declare);
- `KUBECONFIG` (optional, else ~/.kube/config) and the usual AWS_* variables;
- `TEMPORAL_BOOTSTRAP_REAL_CLUSTER_PROVISION=yes`: also provision (writes to the cluster).
The worker runs as a process here, on a bootstrap dev server of its own. docs/in-cluster.md ("A real
cluster") shows the kind set-up. Skipped with one line naming what is missing otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from local_stack.temporal_servers import bootstrap_server
from tests.e2e.conftest import PROJECT_ROOT, WorkerProcess

ENV_FILE = os.environ.get("TEMPORAL_BOOTSTRAP_REAL_CLUSTER_ENV", "")
CONTEXT = os.environ.get("TEMPORAL_BOOTSTRAP_REAL_CLUSTER_CONTEXT", "")
PROVISION = os.environ.get("TEMPORAL_BOOTSTRAP_REAL_CLUSTER_PROVISION", "") == "yes"
QUEUE = "temporal-bootstrap-real-cluster"

pytestmark = [
    pytest.mark.real_cluster,
    pytest.mark.skipif(
        not (ENV_FILE and CONTEXT),
        reason="no real cluster: set TEMPORAL_BOOTSTRAP_REAL_CLUSTER_ENV and "
        "TEMPORAL_BOOTSTRAP_REAL_CLUSTER_CONTEXT (docs/in-cluster.md, A real cluster)",
    ),
]


@pytest.fixture(scope="module")
def environment() -> tuple[str, Path]:
    """(name, folder) of the configured environment file, after checking its context."""
    path = Path(ENV_FILE).expanduser().resolve()
    assert path.is_file(), f"TEMPORAL_BOOTSTRAP_REAL_CLUSTER_ENV: no such file {path}"
    declared = (yaml.safe_load(path.read_text()) or {}).get("kubernetes", {}).get("context")
    assert declared == CONTEXT, (
        f"{path} declares kubernetes.context {declared!r}, "
        f"TEMPORAL_BOOTSTRAP_REAL_CLUSTER_CONTEXT is {CONTEXT!r}"
    )
    return path.stem, path.parent


@pytest.fixture(scope="module")
def process_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The worker's and starter's environment: a bootstrap dev server of this module's, the
    caller's KUBECONFIG and AWS settings, a state folder of its own."""
    server = bootstrap_server(tmp_path_factory.mktemp("real-cluster-bootstrap")).start()
    keep = ("TEMPORAL_BOOTSTRAP_CHART_REPOSITORY",)  # a chart mirror, when the laptop has one
    env = {
        k: v
        for k, v in os.environ.items()
        if k in keep or not k.startswith(("TEMPORAL_", "LOCAL_STACK_"))
    }
    env.update(
        TEMPORAL_ADDRESS=server.address,
        TEMPORAL_TASK_QUEUE=QUEUE,
        TEMPORAL_BOOTSTRAP_STATE_DIR=str(tmp_path_factory.mktemp("real-cluster-state")),
        HELM_BIN=str(PROJECT_ROOT / ".tools" / "helm" / "v4" / "helm"),
        NO_COLOR="1",
    )
    try:
        yield env
    finally:
        server.stop()


@pytest.fixture(scope="module")
def worker(process_env, tmp_path_factory) -> Iterator[WorkerProcess]:
    log = tmp_path_factory.mktemp("real-cluster-worker") / "worker.log"
    w = WorkerProcess(process_env, log).start()
    try:
        yield w
    finally:
        w.stop()


def starter(env: dict[str, str], environment: tuple[str, Path], *args: str, timeout: float = 1800):
    name, folder = environment
    proc = subprocess.run(
        [sys.executable, "starter.py", args[0], name, "--environments-dir", str(folder), *args[1:]],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(proc.stdout, proc.stderr)
    return proc


def test_validate(process_env, environment) -> None:
    proc = starter(process_env, environment, "validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_provision_dry_run_runs_the_preflight(process_env, environment, worker) -> None:
    proc = starter(process_env, environment, "provision", "--dry-run", "--by", "real-cluster")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_drift_check_reports(process_env, environment, worker) -> None:
    proc = starter(process_env, environment, "drift", "--policy", "report")
    # 0: in sync, 4: drift found (e.g. nothing provisioned yet); anything else is a failure.
    assert proc.returncode in (0, 4), proc.stdout + proc.stderr


@pytest.mark.skipif(
    not PROVISION, reason="set TEMPORAL_BOOTSTRAP_REAL_CLUSTER_PROVISION=yes to provision"
)
def test_provision_then_in_sync(process_env, environment, worker) -> None:
    proc = starter(process_env, environment, "provision", "--by", "real-cluster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    drift = starter(process_env, environment, "drift", "--policy", "report")
    assert drift.returncode == 0, drift.stdout + drift.stderr
