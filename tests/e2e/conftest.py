"""Fixtures for the end-to-end tests: a bootstrap Temporal server, the environment the real
worker and starter processes run with, and helpers that drive them like an operator.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_stack.processes import LOOPBACK, free_port
from local_stack.temporal_servers import TemporalDevServer, bootstrap_server
from tests.e2e.faults import FaultTable
from tests.helpers import copy_environments

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPORAL = str(Path(sys.executable).parent / "temporal")
WORKFLOW_ID = "provision-local"
# What the tests that kill a worker declare (`step_timeouts`): the step it was running is
# retried elsewhere once this long has passed without a heartbeat, instead of the default
# 30 s. The same for every kill; above the 10 s floor, with room for a worker slowed down
# by the rest of the suite (install_chart runs a few short helm commands between two of
# its heartbeats).
CRASH_STEP_TIMEOUTS = {"heartbeat": "15s"}


_FAULT_TABLE = FaultTable()
_FAULT_TABLE_FILE: list[Path] = []


@pytest.fixture(scope="session")
def fault_table(tmp_path_factory) -> Iterator[FaultTable]:
    """Where the fault tests record what they measured (tests/e2e/faults.py); written at the
    end of the session and shown in pytest's summary."""
    yield _FAULT_TABLE
    written = _FAULT_TABLE.write(tmp_path_factory.getbasetemp())
    if written is not None:
        _FAULT_TABLE_FILE.append(written)


def pytest_terminal_summary(terminalreporter) -> None:
    if _FAULT_TABLE_FILE:
        terminalreporter.section("fault table (tests/e2e/faults.py)")
        terminalreporter.write(_FAULT_TABLE.markdown())
        terminalreporter.write_line(f"written to {_FAULT_TABLE_FILE[0]}")


@pytest.fixture(scope="session")
def bootstrap_temporal(tmp_path_factory) -> Iterator[TemporalDevServer]:
    """The bootstrap server the worker and starter use (SQLite, so it survives restarts)."""
    server = bootstrap_server(tmp_path_factory.mktemp("bootstrap-temporal")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def process_env(
    stack_variables,
    local_aws,
    kube_standin,
    bootstrap_temporal,
    helm_binaries,
    tmp_path_factory,
    chart_mirror,
):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "LOCAL_STACK_", "KUBECONFIG"))
    }
    env.update(stack_variables)
    env.update(local_aws.env)
    env.update(chart_mirror)
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

    def metrics(self) -> str:
        """The worker's Prometheus page (TEMPORAL_BOOTSTRAP_METRICS_PORT must be set)."""
        address = self.env["TEMPORAL_BOOTSTRAP_METRICS_PORT"]
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
            return response.read().decode()

    def gauge(self, name: str, **labels: str) -> float | None:
        """The value of the series `name` whose labels include `labels`; None if absent."""
        for line in self.metrics().splitlines():
            series, _, value = line.rpartition(" ")
            if not series.startswith(name + "{"):
                continue
            if all(f'{key}="{want}"' in series for key, want in labels.items()):
                return float(value)
        return None

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

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM, and SIGKILL if it has not exited after `timeout` seconds."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture(scope="module")  # a crash test must be the only worker on the queue
def worker(process_env, tmp_path_factory) -> Iterator[WorkerProcess]:
    # Each module's worker serves metrics (docs/observability.md) on a port of its own.
    env = {**process_env, "TEMPORAL_BOOTSTRAP_METRICS_PORT": f"{LOOPBACK}:{free_port()}"}
    w = WorkerProcess(env, tmp_path_factory.mktemp("worker") / "worker.log").start()
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


def helm_json(env: dict[str, str], *args: str, namespace: str = "my-app-local"):
    """`helm <args> temporal -n <namespace> -o json` with the worker's helm and kubeconfig."""
    proc = run(
        [
            env["HELM_BIN"],
            *args,
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


# The server's back-pressure on queries to a run whose workflow task is not being processed
# (its worker was just killed): asking again a moment later is what an operator does too.
QUERY_BUFFER_FULL = "consistent query buffer is full"


def query_progress(env: dict[str, str], workflow_id: str = WORKFLOW_ID) -> dict:
    deadline = time.monotonic() + 60
    while True:
        proc = temporal_cli(
            env,
            "workflow",
            "query",
            "--workflow-id",
            workflow_id,
            "--type",
            "progress",
            "-o",
            "json",
        )
        if QUERY_BUFFER_FULL not in proc.stderr or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["queryResult"][0]


# The state a provision run is in once it has returned (workflows/bootstrap.py).
RUN_ENDED_DONE = "done"


def temporal_run_result(env: dict[str, str], timeout: float) -> None:
    """Until the run ends (whatever its outcome) or `timeout`: `temporal workflow result`."""
    run(
        [TEMPORAL, "workflow", "result", "--workflow-id", WORKFLOW_ID]
        + ["--address", env["TEMPORAL_ADDRESS"]],
        env,
        timeout,
    )


def wait_state(env: dict[str, str], state: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    if state == RUN_ENDED_DONE:
        # A run is done when it ends: wait for its end in one long poll (`workflow result`)
        # instead of a CLI process and a query every half second; its progress is read then.
        with contextlib.suppress(subprocess.TimeoutExpired):
            temporal_run_result(env, timeout)
    while True:
        progress = query_progress(env)
        if progress["state"] == state:
            return progress
        assert time.monotonic() < deadline, f"never reached {state}: {progress}"
        time.sleep(0.5)


class BackgroundStarter:
    """A `starter.py` command left running (e.g. `provision` following a run), its output
    collected in a file."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...], log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "starter.py", *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Operator:
    """What an operator does from a shell, bound to the processes' environment."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def run(self, argv, timeout=240):
        return run(argv, self.env, timeout)

    def starter(self, *args, timeout=240):
        return starter(self.env, *args, timeout=timeout)

    def starter_in_background(self, *args: str, log: Path) -> BackgroundStarter:
        return BackgroundStarter(self.env, args, log)

    def temporal(self, *args, address=None):
        return temporal_cli(self.env, *args, address=address)

    def describe_namespace(self, name: str, address: str) -> dict:
        """`temporal operator namespace describe` of a Temporal namespace on `address`."""
        proc = self.temporal(
            "operator", "namespace", "describe", "--namespace", name, "-o", "json", address=address
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def set_retention(self, name: str, retention: str, address: str) -> None:
        """Change a namespace by hand, as an operator with the temporal CLI would."""
        proc = self.temporal(
            "operator",
            "namespace",
            "update",
            "--namespace",
            name,
            "--retention",
            retention,
            address=address,
        )
        assert proc.returncode == 0, proc.stderr

    def retention_seconds(self, name: str, address: str) -> int:
        """The namespace's retention; the CLI prints it as `604800s` (or Go's `168h0m0s`)."""
        text = self.describe_namespace(name, address)["config"]["workflowExecutionRetentionTtl"]
        if text.endswith("s") and text[:-1].isdigit():
            return int(text[:-1])
        hours, _, rest = text.partition("h")
        minutes, _, seconds = rest.partition("m")
        return int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds.rstrip("s") or 0)

    def helm_history(self, namespace="my-app-local"):
        return helm_json(self.env, "history", namespace=namespace)

    def helm_values(self, namespace="my-app-local"):
        return helm_json(self.env, "get", "values", namespace=namespace)

    def signal(self, name: str, by: str, workflow_id=WORKFLOW_ID):
        """`temporal workflow signal` with an OperatorSignal payload, as the README shows."""
        proc = self.temporal(
            "workflow",
            "signal",
            "--workflow-id",
            workflow_id,
            "--name",
            name,
            "--input",
            json.dumps({"by": by}),
        )
        assert proc.returncode == 0, proc.stderr

    def progress(self, workflow_id=WORKFLOW_ID):
        return query_progress(self.env, workflow_id)

    def wait_state(self, state, timeout=120):
        return wait_state(self.env, state, timeout)


@pytest.fixture(scope="session")
def operator(process_env) -> Operator:
    return Operator(process_env)


@pytest.fixture(scope="session")
def start_worker(process_env, tmp_path_factory):
    """Start another worker process (crash tests kill and restart them); keyword arguments
    override its environment variables, e.g. `HELM_BIN=...`."""

    def start(log: Path | None = None, **env_overrides: str) -> WorkerProcess:
        log = log or tmp_path_factory.mktemp("worker") / "worker.log"
        return WorkerProcess({**process_env, **env_overrides}, log).start()

    return start


@pytest.fixture
def environments_copy(tmp_path):
    """A copy of environments/ whose local.yaml is changed by `edit(data)`; returns its folder."""

    def copy(edit) -> Path:
        copy_environments(tmp_path)
        local = tmp_path / "local.yaml"
        data = yaml.safe_load(local.read_text())
        edit(data)
        local.write_text(yaml.safe_dump(data))
        return tmp_path

    return copy


@pytest.fixture
def upgrade_env(environments_copy, mariadb, local_aws, operator) -> Iterator[Any]:
    """`setup(namespace)`: provision chart 0.52.0 into `namespace` from a copy of the
    environments with a short soak (and the short heartbeat timeout of the crash tests with
    `worker_killed=True`); returns `declare(version)`, which edits the copy's
    chart.version (its chart comes through the chart cache, like every hop's)."""
    made: list[str] = []

    def setup(namespace: str, *, worker_killed: bool = False):
        def local(data: dict[str, Any]) -> None:
            data["kubernetes"]["namespace"] = namespace
            data["upgrade"] = {"soak": "1s"}
            if worker_killed:
                data["step_timeouts"] = CRASH_STEP_TIMEOUTS

        env_dir = environments_copy(local)
        made.append(namespace)
        proc = operator.starter("provision", "local", "--environments-dir", str(env_dir))
        assert proc.returncode == 0, proc.stdout + proc.stderr

        def declare(version: str) -> Path:
            path = env_dir / "local.yaml"
            data = yaml.safe_load(path.read_text())
            data["chart"]["version"] = version
            path.write_text(yaml.safe_dump(data))
            return env_dir

        return declare

    try:
        yield setup
    finally:
        mariadb.reset()
        rds = local_aws.client("rds")
        for snapshot in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]:
            rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"])
        for workflow_id in ("upgrade-local", "provision-local"):
            operator.temporal(
                "workflow", "terminate", "--workflow-id", workflow_id, "--reason", "test cleanup"
            )
