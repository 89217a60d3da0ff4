from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from local_stack import stack as stack_mod
from local_stack.aws import RDS_INSTANCE_ID
from local_stack.processes import ManagedProcess, pid_alive
from local_stack.stack import LocalStack, StackAlreadyRunning, load_state, processes_alive
from local_stack.temporal_servers import wait_serving

STATE_KEYS = {
    "version",
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


def test_in_process_stack_up_and_down(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    stack = LocalStack(state_dir).start()
    try:
        print(f"in-process local stack up in {stack.startup_seconds:.2f}s")
        state = load_state(state_dir)
        assert state is not None and set(state) == STATE_KEYS
        assert state["mode"] == "in-process"
        assert set(state["processes"]) == {"mariadb", "temporal-bootstrap", "temporal-target"}
        assert all(processes_alive(state).values())

        # Kubernetes stand-in answers at the kubeconfig's server.
        kubeconfig = yaml.safe_load(Path(state["kubernetes"]["kubeconfig"]).read_text())
        assert kubeconfig["clusters"][0]["cluster"]["server"] == state["kubernetes"]["url"]
        with urllib.request.urlopen(state["kubernetes"]["url"] + "/version", timeout=5) as r:
            assert r.status == 200

        # moto's RDS endpoint is the MariaDB, which takes the secret's password over TLS.
        assert stack.aws is not None and stack.mariadb is not None
        inst = stack.aws.client("rds").describe_db_instances(DBInstanceIdentifier=RDS_INSTANCE_ID)[
            "DBInstances"
        ][0]
        assert inst["Endpoint"] == {"Address": "localhost", "Port": state["mariadb"]["port"]}
        stack.mariadb.connect().close()

        for server in state["temporal"].values():
            wait_serving(server["address"], timeout=5)
        env = state["env"]
        assert env["LOCAL_STACK_DB_PORT"] == str(state["mariadb"]["port"])
        assert env["LOCAL_STACK_TARGET_ADDRESS"] == state["temporal"]["target"]["address"]
        assert env["KUBECONFIG"] == state["kubernetes"]["kubeconfig"]
        assert env["AWS_ENDPOINT_URL"] == state["aws"]["endpoint_url"]
        # Nothing listens beyond loopback.
        for url in (env["AWS_ENDPOINT_URL"], state["kubernetes"]["url"]):
            assert url.startswith("http://127.0.0.1:")

        with pytest.raises(StackAlreadyRunning):
            LocalStack(state_dir).start()
    finally:
        stack.stop()
    assert not any(processes_alive(state).values())
    assert load_state(state_dir) is None


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
    assert {p.name for p in started} == {"mariadb", "temporal-bootstrap", "temporal-target"}
    for proc in started:
        assert proc.pid is not None and not pid_alive(proc.pid)
    assert load_state(tmp_path / "stack") is None
    assert json.dumps([p.info() for p in started])  # recorded info stays serialisable
