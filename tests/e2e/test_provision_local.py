"""End to end on the local stack, through the real `worker.py` and `starter.py` processes:
the real chart installed by helm into the Kubernetes API stand-in, namespaces registered on
the target Temporal server, operator actions sent with the real `temporal` CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from local_stack.temporal_servers import TemporalDevServer, bootstrap_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPORAL = str(Path(sys.executable).parent / "temporal")
WORKFLOW_ID = "provision-local"


@pytest.fixture(scope="module")
def bootstrap_temporal(tmp_path_factory) -> Iterator[TemporalDevServer]:
    """The bootstrap server the worker and starter use (SQLite, so it survives restarts)."""
    server = bootstrap_server(tmp_path_factory.mktemp("bootstrap-temporal")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def process_env(
    stack_variables, local_aws, kube_standin, bootstrap_temporal, helm_binaries, tmp_path_factory
):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "LOCAL_STACK_", "KUBECONFIG"))
    }
    env.update(stack_variables)
    env.update(local_aws.env)
    env.update(
        KUBECONFIG=str(kube_standin.kubeconfig_path),
        TEMPORAL_ADDRESS=bootstrap_temporal.address,
        TEMPORAL_TASK_QUEUE="temporal-bootstrap-e2e",
        HELM_BIN=helm_binaries["v4"],
        TEMPORAL_BOOTSTRAP_STATE_DIR=str(tmp_path_factory.mktemp("state")),
        NO_COLOR="1",
    )
    return env


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while "worker ready" not in self.log.read_text():
            assert self.proc.poll() is None, f"worker died:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "worker never became ready"
            time.sleep(0.2)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture(scope="module")
def worker(process_env, tmp_path_factory) -> Iterator[WorkerProcess]:
    w = WorkerProcess(process_env, tmp_path_factory.mktemp("worker") / "worker.log").start()
    try:
        yield w
    finally:
        w.stop()


def run(
    argv: list[str], env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def starter(
    env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "starter.py", *args], env, timeout)


def temporal_cli(
    env: dict[str, str], *args: str, address: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run([TEMPORAL, *args, "--address", address or env["TEMPORAL_ADDRESS"]], env, 60)


def helm_history(env: dict[str, str], namespace: str = "my-app-local") -> list[dict]:
    proc = run(
        [
            env["HELM_BIN"],
            "history",
            "temporal",
            "-n",
            namespace,
            "-o",
            "json",
            "--kubeconfig",
            env["KUBECONFIG"],
        ],
        env,
        60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def query_progress(env: dict[str, str], workflow_id: str = WORKFLOW_ID) -> dict:
    proc = temporal_cli(
        env, "workflow", "query", "--workflow-id", workflow_id, "--type", "progress", "-o", "json"
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["queryResult"][0]


def wait_state(env: dict[str, str], state: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        progress = query_progress(env)
        if progress["state"] == state:
            return progress
        assert time.monotonic() < deadline, f"never reached {state}: {progress}"
        time.sleep(0.5)


def test_provision_local_installs_chart_and_registers_namespaces(
    process_env, worker, target_temporal
):
    proc = starter(process_env, "provision", "local", "--by", "e2e")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "provision-local done (changed)" in proc.stdout
    for step in (
        "check_database",
        "ensure_ca_bundle",
        "ensure_db_secret",
        "install_chart",
        "wait_frontend_healthy",
        "register_namespaces",
    ):
        assert f"✓ {step}" in proc.stdout, proc.stdout

    history = helm_history(process_env)
    assert [(r["revision"], r["status"], r["chart"]) for r in history] == [
        (1, "deployed", "temporal-0.52.0")
    ]
    for name, retention in (("my-ns", "168h0m0s"), ("my-ns-short", "24h0m0s")):
        described = temporal_cli(
            process_env,
            "operator",
            "namespace",
            "describe",
            "--namespace",
            name,
            "-o",
            "json",
            address=target_temporal.address,
        )
        assert described.returncode == 0, described.stderr
        config = json.loads(described.stdout)["config"]
        assert config["workflowExecutionRetentionTtl"] in (retention, f"{_seconds(retention)}s")

    again = starter(process_env, "provision", "local", "--by", "e2e")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "provision-local done (nothing changed)" in again.stdout
    assert len(helm_history(process_env)) == 1, "a second run must not add a helm revision"


def test_stale_schema_waits_then_retry_signal_from_temporal_cli_completes(
    process_env, worker, mariadb
):
    mariadb.set_schema_version("temporal", "1.12")
    try:
        proc = starter(process_env, "provision", "local")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "SchemaOutdated" in proc.stdout
        assert "update-schema" in proc.stdout
        assert "temporal workflow signal --workflow-id provision-local --name retry" in proc.stdout
        progress = query_progress(process_env)
        assert progress["state"] == "waiting for operator"
        check = next(s for s in progress["steps"] if s["name"] == "check_database")
        assert check["status"] == "waiting for operator"
    finally:
        mariadb.set_schema_version("temporal", "1.14")
    signalled = temporal_cli(
        process_env,
        "workflow",
        "signal",
        "--workflow-id",
        WORKFLOW_ID,
        "--name",
        "retry",
        "--input",
        '{"by": "dba"}',
    )
    assert signalled.returncode == 0, signalled.stderr
    done = wait_state(process_env, "done")
    check = next(s for s in done["steps"] if s["name"] == "check_database")
    assert check["attempts"] == 2
    assert check["operator_actions"] == ["retry by dba"]
    status = starter(process_env, "status", "local")
    assert status.returncode == 0, status.stdout


@pytest.fixture
def approval_env_dir(tmp_path) -> Path:
    for f in (PROJECT_ROOT / "environments").glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    local = tmp_path / "local.yaml"
    data = yaml.safe_load(local.read_text())
    data["approval_required"] = True
    local.write_text(yaml.safe_dump(data))
    return tmp_path


def test_approval_gate_then_abort_lists_what_was_done(process_env, worker, approval_env_dir):
    args = ["--environments-dir", str(approval_env_dir)]
    proc = starter(process_env, "provision", "local", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "approval" in proc.stdout
    assert "temporal workflow signal --workflow-id provision-local --name approve" in proc.stdout

    aborted = starter(
        process_env, "abort", "local", "--by", "e2e", "--reason", "change window closed"
    )
    assert aborted.returncode == 1, aborted.stdout + aborted.stderr
    assert "aborted" in aborted.stderr
    assert "check_database done" in aborted.stderr and "install_chart pending" in aborted.stderr


def test_approve_with_temporal_cli_opens_the_gate(process_env, worker, approval_env_dir):
    proc = starter(process_env, "provision", "local", "--environments-dir", str(approval_env_dir))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    signalled = temporal_cli(
        process_env,
        "workflow",
        "signal",
        "--workflow-id",
        WORKFLOW_ID,
        "--name",
        "approve",
        "--input",
        '{"by": "cab"}',
    )
    assert signalled.returncode == 0, signalled.stderr
    done = wait_state(process_env, "done")
    assert done["approved_by"] == "cab"
    assert len(helm_history(process_env)) == 1, "nothing changed since the first install"


def test_bad_environment_file_exits_3_before_anything_starts(process_env, worker, tmp_path):
    for f in (PROJECT_ROOT / "environments").glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "local.yaml").write_text((tmp_path / "local.yaml").read_text() + "\nsurprise: 1\n")
    proc = starter(process_env, "provision", "local", "--environments-dir", str(tmp_path))
    assert proc.returncode == 3
    assert "local.yaml: surprise: unknown key" in proc.stderr


def _seconds(go_duration: str) -> int:
    hours = int(go_duration.split("h")[0])
    return hours * 3600
