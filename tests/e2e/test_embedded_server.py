"""The embedded bootstrap server (no TEMPORAL_ADDRESS): `worker.py` starts a detached dev
server with a SQLite file under the state folder, the starter finds it, and a run survives
that server being stopped and started again while install_chart is in progress.
"""

from __future__ import annotations

import json
import time

import pytest

from local_stack.processes import pid_alive, stop_pid, tcp_open
from tests.e2e.conftest import Operator
from tests.e2e.faults import helm_revisions
from tests.helpers import wait_for

RELEASE_DEPLOYMENT = "temporal-history"


def step(progress: dict, name: str) -> dict:
    return next(s for s in progress["steps"] if s["name"] == name)


@pytest.fixture
def embedded(process_env, tmp_path):
    """The process environment with no bootstrap server configured and a fresh state folder;
    stops the detached server the test leaves behind."""
    state_dir = tmp_path / "state"
    env = {**process_env, "TEMPORAL_ADDRESS": "", "TEMPORAL_BOOTSTRAP_STATE_DIR": str(state_dir)}
    record = state_dir / "embedded-server" / "server.json"
    yield env, record
    if record.exists():
        info = json.loads(record.read_text())
        stop_pid(info["pid"], info.get("start_time"))


def test_worker_starts_embedded_server_and_a_run_survives_its_restart(
    embedded, start_worker, environments_copy, kube_standin, stack_variables, fault_table
):
    since = time.monotonic()
    env, record = embedded
    namespace = "my-app-embedded"
    env_dir = environments_copy(lambda local: local["kubernetes"].update(namespace=namespace))
    kube_standin.never_ready(RELEASE_DEPLOYMENT, namespace=namespace)
    worker = start_worker(
        **{k: env[k] for k in ("TEMPORAL_ADDRESS", "TEMPORAL_BOOTSTRAP_STATE_DIR")}
    )
    try:
        server = json.loads(record.read_text())
        assert server["db_filename"].startswith(env["TEMPORAL_BOOTSTRAP_STATE_DIR"])
        assert pid_alive(server["pid"], server.get("start_time"))
        assert f"Temporal Web UI: {server['ui_url']}" in worker.log.read_text()

        starter = Operator(env)  # finds the embedded server through the state folder
        started = starter.starter(
            "provision", "local", "--environments-dir", str(env_dir), "--no-wait"
        )
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"{server['ui_url']}/namespaces/default/workflows/provision-local" in started.stdout
        cli = Operator({**env, "TEMPORAL_ADDRESS": server["address"]})
        wait_for(
            lambda: step(cli.progress(), "install_chart")["status"] == "running",
            120,
            "install_chart to run",
        )
        run_id = _run_id(cli)

        assert stop_pid(server["pid"], server.get("start_time"))
        host, _, port = server["address"].rpartition(":")
        assert not tcp_open(host, int(port)), "the embedded server is still serving"

        # The operator's next command brings the server back, on the same address, with
        # the same SQLite file; the worker, left running, reconnects by itself.
        again = starter.starter(
            "provision", "local", "--environments-dir", str(env_dir), "--no-wait"
        )
        assert again.returncode == 0, again.stdout + again.stderr
        restarted = json.loads(record.read_text())
        assert restarted["pid"] != server["pid"]
        assert restarted["address"] == server["address"]
        assert restarted["ui_url"] == server["ui_url"]

        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=namespace)
        done = cli.wait_state("done", timeout=240)
        assert worker.proc is not None and worker.proc.poll() is None, "the worker must live on"
    finally:
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=namespace)
        worker.stop()

    assert _run_id(cli) == run_id, "the run from before the restart must be the one that finished"
    statuses = {s["name"]: s["status"] for s in done["steps"]}
    assert statuses.pop("approval") == "skipped"  # local declares no approval gate
    assert set(statuses.values()) == {"done"}, statuses
    fault_table.record(
        "embedded-server-restart",
        outcome="the next `provision` restarted the server on the same address; the same run "
        "finished",
        operator_sees=f"the same Web UI link before and after: {server['ui_url']}",
        kept=f"same run id; helm {helm_revisions(cli.helm_history(namespace))}",
        since=since,
    )


def _run_id(cli: Operator) -> str:
    described = cli.temporal(
        "workflow", "describe", "--workflow-id", "provision-local", "-o", "json"
    )
    assert described.returncode == 0, described.stderr
    return json.loads(described.stdout)["workflowExecutionInfo"]["execution"]["runId"]
