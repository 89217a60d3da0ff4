from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml

from local_stack import stack as stack_mod
from local_stack.aws import RDS_INSTANCE_ID, DatabaseTarget, LocalAws, MotoAlreadyRunning
from local_stack.mariadb import MariaDB
from local_stack.processes import ManagedProcess, pid_alive
from local_stack.stack import LocalStack, StackAlreadyRunning, load_state, processes_alive
from local_stack.temporal_servers import wait_serving
from local_stack.tls import write_ca

REPO = Path(__file__).resolve().parents[3]

STATE_KEYS = {
    "version",
    "chart_repository",
    "image_registry",
    "mode",
    "owner_pid",
    "state_dir",
    "startup_seconds",
    "processes",
    "kubernetes",
    "mariadb",
    "aws",
    "temporal",
    "env",
}


def _wait_for_state(state_dir: Path, proc: subprocess.Popen[str]) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = load_state(state_dir)
        if state is not None:
            return state
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.1)
    raise AssertionError("stack.json never appeared")


def test_in_process_stack_up_and_down(tmp_path: Path) -> None:
    # In its own Python process: moto's backends are process-global and this pytest
    # process already runs the suite's moto (see conftest.py).
    state_dir = tmp_path / "stack"
    proc = subprocess.Popen(
        [sys.executable, "-m", "local_stack", "--state-dir", str(state_dir), "run"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        state = _wait_for_state(state_dir, proc)
        print(f"in-process local stack up in {state['startup_seconds']:.2f}s")
        assert set(state) == STATE_KEYS
        assert state["mode"] == "in-process" and state["owner_pid"] == proc.pid
        # No frontend runs before a release is installed (frontend_pods.py).
        assert set(state["processes"]) == {"mariadb", "temporal-bootstrap"}
        assert all(processes_alive(state).values())

        # Kubernetes stand-in answers at the kubeconfig's server.
        kubeconfig = yaml.safe_load(Path(state["kubernetes"]["kubeconfig"]).read_text())
        cluster = kubeconfig["clusters"][0]["cluster"]
        assert cluster["server"] == state["kubernetes"]["url"]
        trust = ssl.create_default_context(cafile=cluster["certificate-authority"])
        # /version is public (system:public-info-viewer), so no credentials are needed.
        with urllib.request.urlopen(cluster["server"] + "/version", timeout=5, context=trust) as r:
            assert r.status == 200

        # The chart repository serves every shared chart, indexed.
        with urllib.request.urlopen(state["chart_repository"]["url"] + "/index.yaml") as r:
            index = yaml.safe_load(r.read())
        assert len(index["entries"]["temporal"]) == 8

        # moto's RDS endpoint is the MariaDB, which takes the secret's password over TLS.
        env = state["env"]
        rds = boto3.client(
            "rds",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        inst = rds.describe_db_instances(DBInstanceIdentifier=RDS_INSTANCE_ID)["DBInstances"][0]
        assert inst["Endpoint"] == {"Address": "localhost", "Port": state["mariadb"]["port"]}
        MariaDB.from_state(state["mariadb"]).connect().close()

        for server in state["temporal"].values():
            wait_serving(server["address"], timeout=5)
        assert env["LOCAL_STACK_DB_PORT"] == str(state["mariadb"]["port"])
        assert "LOCAL_STACK_TARGET_ADDRESS" not in env
        assert env["KUBECONFIG"] == state["kubernetes"]["kubeconfig"]
        assert env["AWS_ENDPOINT_URL"] == state["aws"]["endpoint_url"]
        # Nothing listens beyond loopback.
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert state["kubernetes"]["url"].startswith("https://127.0.0.1:")

        with pytest.raises(StackAlreadyRunning):
            LocalStack(state_dir).start()
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert "local stack stopped" in out
    assert not any(processes_alive(state).values())
    assert load_state(state_dir) is None


def test_second_moto_in_one_process_is_refused(local_aws: LocalAws, tmp_path: Path) -> None:
    other = LocalAws(DatabaseTarget("localhost", 1, "x", write_ca(tmp_path / "ca.pem")))
    with pytest.raises(MotoAlreadyRunning, match="process-global"):
        other.start()
    # The running one is untouched.
    assert local_aws.rds_status() == "available"


def test_failed_start_stops_what_did_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[ManagedProcess] = []
    real_start = ManagedProcess.start

    def recording_start(self: ManagedProcess) -> ManagedProcess:
        started.append(self)
        return real_start(self)

    def broken_aws(self: LocalStack, db: object) -> None:
        raise RuntimeError("moto exploded")

    monkeypatch.setattr(ManagedProcess, "start", recording_start)
    monkeypatch.setattr(stack_mod.LocalStack, "_start_aws", broken_aws)
    with pytest.raises(RuntimeError, match="moto exploded"):
        LocalStack(tmp_path / "stack", with_kubernetes=False).start()
    assert {p.name for p in started} == {"mariadb", "temporal-bootstrap"}
    for proc in started:
        assert proc.pid is not None and not pid_alive(proc.pid)
    assert load_state(tmp_path / "stack") is None
    assert json.dumps([p.info() for p in started])  # recorded info stays serialisable
