"""`python -m local_stack up|status|down` as real subprocesses."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml

from local_stack.mariadb import MariaDB
from local_stack.processes import pid_alive, tcp_open
from local_stack.stack import load_state
from local_stack.temporal_servers import wait_serving

REPO = Path(__file__).resolve().parents[3]


def cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_stack", "--state-dir", str(state_dir), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_up_status_down(tmp_path: Path) -> None:
    state_dir = tmp_path / "cli-stack"
    up = cli(state_dir, "up")
    state = load_state(state_dir)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        print(up.stdout.splitlines()[0])
        assert up.stdout.startswith("local stack up in ")
        assert state is not None and state["mode"] == "detached"
        # No frontend runs before a release is installed (local_stack/frontend_pods.py).
        names = {
            "chart-repository",
            "image-registry",
            "kube-api-standin",
            "mariadb",
            "moto",
            "temporal-bootstrap",
        }
        assert set(state["processes"]) == names
        pids = [int(p["pid"]) for p in state["processes"].values()]
        # Left running after `up` exited.
        assert all(pid_alive(pid) for pid in pids)
        for key in ("KUBECONFIG", "AWS_ENDPOINT_URL", "TEMPORAL_ADDRESS", "LOCAL_STACK_DB_PORT"):
            assert f"export {key}=" in up.stdout
        assert f"Web UI {state['temporal']['bootstrap']['ui_url']}" in up.stdout

        again = cli(state_dir, "up")
        assert again.returncode == 0 and "already up" in again.stdout
        assert load_state(state_dir) == state

        status = cli(state_dir, "status")
        assert status.returncode == 0, status.stdout
        assert "local stack is up" in status.stdout

        # The recorded addresses work.
        MariaDB.from_state(state["mariadb"]).connect().close()
        rds = boto3.client(
            "rds",
            endpoint_url=state["aws"]["endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        endpoint = rds.describe_db_instances()["DBInstances"][0]["Endpoint"]
        assert endpoint == {"Address": "localhost", "Port": state["mariadb"]["port"]}
        for server in state["temporal"].values():
            wait_serving(server["address"], timeout=5)
        kube_port = int(state["kubernetes"]["url"].rsplit(":", 1)[1])
        assert tcp_open("127.0.0.1", kube_port)
        # The chart repository serves an index of every shared chart.
        assert state["env"]["LOCAL_STACK_CHART_REPOSITORY"] == state["chart_repository"]["url"]
        assert state["env"]["LOCAL_STACK_IMAGE_REGISTRY"] == state["image_registry"]["url"]
        # The registry stand-in answers as Docker Hub does: a 401 with the token challenge.
        with pytest.raises(urllib.error.HTTPError) as challenged:
            urllib.request.urlopen(state["image_registry"]["url"] + "/v2/")
        assert challenged.value.code == 401
        assert "Bearer realm=" in challenged.value.headers["WWW-Authenticate"]
        with urllib.request.urlopen(state["chart_repository"]["url"] + "/index.yaml") as r:
            index = yaml.safe_load(r.read())
        assert "1.6.0" in {entry["version"] for entry in index["entries"]["temporal"]}
    finally:
        down = cli(state_dir, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(pid_alive(pid) for pid in pids)
    gone = cli(state_dir, "status")
    assert gone.returncode == 3 and "not up" in gone.stdout


def test_status_reports_a_dead_process(tmp_path: Path) -> None:
    state_dir = tmp_path / "cli-stack"
    up = cli(state_dir, "up", "--without-kubernetes")
    assert up.returncode == 0, up.stdout + up.stderr
    state = load_state(state_dir)
    assert state is not None
    try:
        victim = state["processes"]["temporal-bootstrap"]
        subprocess.run(["kill", "-KILL", str(victim["pid"])], check=True)
        status = cli(state_dir, "status")
        assert status.returncode == 1
        assert "temporal-bootstrap" in status.stdout and "NOT RUNNING" in status.stdout
    finally:
        down = cli(state_dir, "down")
    assert down.returncode == 0
    assert not any(pid_alive(int(p["pid"])) for p in state["processes"].values())
