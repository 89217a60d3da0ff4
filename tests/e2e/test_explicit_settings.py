"""The demo stack running changes nothing an operator configured explicitly (issue #10,
item 14): with a real `python -m local_stack run` in the state folder, a starter, a worker
and their Web UI links point where TEMPORAL_ADDRESS / a TOML profile / TEMPORAL_UI_URL say,
whether or not `--local-stack` is given; `--local-stack` fills only what is not set (the
control case shows the stack is really there and read).

The explicit server is the e2e bootstrap server; the stack brings its own two dev servers.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.processes import stop_pid
from tests.e2e.conftest import PROJECT_ROOT, WorkerProcess, starter, temporal_cli

UI = "http://ui.example.test:8233"


@pytest.fixture(scope="module")
def demo_stack(process_env, tmp_path_factory) -> Iterator[tuple[dict[str, str], dict]]:
    """A running demo stack in the processes' state folder; the processes' environment."""
    state_dir = Path(process_env["TEMPORAL_BOOTSTRAP_STATE_DIR"])
    log = tmp_path_factory.mktemp("demo-stack") / "stack.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "local_stack", "--state-dir", str(state_dir / "local-stack"), "run"],
        cwd=PROJECT_ROOT,
        env=process_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    state_file = state_dir / "local-stack" / "stack.json"
    deadline = time.monotonic() + 90
    while not state_file.exists():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the demo stack never came up"
        time.sleep(0.2)
    try:
        yield process_env, json.loads(state_file.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        # A case that fell through to the embedded server must not leave it running.
        embedded = state_dir / "embedded-server" / "server.json"
        if embedded.exists():
            info = json.loads(embedded.read_text())
            stop_pid(info["pid"], info.get("start_time"))


def provision_dry_run(env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    # The staging declaration loads offline (its chart from the session's mirror folder, as
    # on a machine without internet access); a dry run with --no-wait only starts a run.
    return starter(env, *flags, "provision", "staging", "--dry-run", "--no-wait", timeout=60)


def where(proc: subprocess.CompletedProcess[str]) -> tuple[str, str | None]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    started = next(line for line in proc.stdout.splitlines() if " (run " in line)
    links = [line for line in proc.stdout.splitlines() if line.startswith("Web UI: ")]
    return started.rsplit(" on ", 1)[1], links[0].removeprefix("Web UI: ") if links else None


def exists_on(env: dict[str, str], address: str) -> bool:
    proc = temporal_cli(
        env, "workflow", "describe", "--workflow-id", "provision-staging-dry-run", address=address
    )
    return proc.returncode == 0


@pytest.fixture
def cleanup(process_env, demo_stack):
    yield
    _, stack = demo_stack
    for address in (process_env["TEMPORAL_ADDRESS"], stack["temporal"]["bootstrap"]["address"]):
        temporal_cli(
            process_env,
            "workflow",
            "terminate",
            "--workflow-id",
            "provision-staging-dry-run",
            address=address,
        )


def test_explicit_address_wins_over_the_running_demo_stack(demo_stack, cleanup, tmp_path):
    env, stack = demo_stack
    explicit = env["TEMPORAL_ADDRESS"]
    stack_server, stack_ui = (stack["temporal"]["bootstrap"][k] for k in ("address", "ui_url"))
    assert explicit != stack_server

    # Control: with only the flag, everything comes from the stack (so it is really read).
    unset = {k: v for k, v in env.items() if k != "TEMPORAL_ADDRESS"}
    assert where(provision_dry_run(unset, "--local-stack")) == (
        stack_server,
        f"{stack_ui}/namespaces/default/workflows/provision-staging-dry-run",
    )

    # No flag: the stack is never consulted.
    assert where(provision_dry_run(env)) == (explicit, None)
    # The flag fills only what is unset: the address stays, the stack's UI is not borrowed.
    assert where(provision_dry_run(env, "--local-stack")) == (explicit, None)
    # An explicit UI link stays as given.
    with_ui = {**env, "TEMPORAL_UI_URL": UI}
    assert where(provision_dry_run(with_ui, "--local-stack")) == (
        explicit,
        f"{UI}/namespaces/default/workflows/provision-staging-dry-run",
    )
    # A TOML profile's address is as explicit as the variable.
    profile = tmp_path / "temporal.toml"
    profile.write_text(f'[profile.default]\naddress = "{explicit}"\n')
    from_profile = {**unset, "TEMPORAL_CONFIG_FILE": str(profile)}
    assert where(provision_dry_run(from_profile, "--local-stack")) == (explicit, None)
    assert exists_on(env, explicit)


def test_worker_keeps_its_explicit_address_and_link_with_the_demo_stack_running(
    demo_stack, tmp_path
):
    env, stack = demo_stack
    worker = WorkerProcess(
        {**env, "TEMPORAL_TASK_QUEUE": "explicit-settings-check"}, tmp_path / "worker.log"
    )
    worker.proc = subprocess.Popen(
        [sys.executable, "worker.py", "--local-stack"],
        cwd=PROJECT_ROOT,
        env=worker.env,
        stdout=worker.log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "worker ready" not in worker.log.read_text():
            assert worker.proc.poll() is None, worker.log.read_text()
            assert time.monotonic() < deadline, "the worker never became ready"
            time.sleep(0.2)
    finally:
        worker.stop()
    log = worker.log.read_text()
    assert f"worker ready on {env['TEMPORAL_ADDRESS']}, task queue explicit-settings-check" in log
    assert stack["temporal"]["bootstrap"]["ui_url"] not in log
    assert stack["temporal"]["bootstrap"]["address"] not in log
