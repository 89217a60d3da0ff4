"""Command-line misuse of `starter.py` and `worker.py` (issue #10, item 13): real processes,
each ends with a clear message, the documented exit code 3 ("invalid input": typer's and
argparse's own 2 means "waiting for an operator" here), and no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.processes import free_ports

PROJECT_ROOT = Path(__file__).resolve().parents[3]
EXIT_FAILED, EXIT_INVALID = 1, 3


def run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "NO_COLOR": "1", **env},
    )


def _one_failure_line(stderr: str) -> bool:
    """The failure is one line, the last; before it the worker may only have warned what its
    start check found missing (no Kubernetes or AWS credentials on this machine, #20.3)."""
    *before, _last = stderr.strip().splitlines()
    return all(" WARNING temporal-bootstrap.worker: no " in line for line in before)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status"], "Missing argument 'ENV'"),
        (["provision", "local", "--bogus"], "No such option: --bogus"),
        (["drift", "local", "--policy", "sometimes"], "Invalid value for '--policy'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["provision", "local", "--update-run", "--restart"], "exclude each other"),
    ],
    ids=["missing-argument", "unknown-option", "bad-choice", "unknown-command", "both-ways"],
)
def test_starter_usage_errors_exit_3_without_a_traceback(args, message):
    proc = run("starter.py", *args)
    assert proc.returncode == EXIT_INVALID, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_starter_against_an_address_nobody_serves_ends_with_one_line():
    (port,) = free_ports(1)
    proc = run("starter.py", "status", "local", TEMPORAL_ADDRESS=f"127.0.0.1:{port}")
    assert proc.returncode == EXIT_FAILED
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"cannot connect to the bootstrap Temporal server 127.0.0.1:{port}: connection refused: "
        "nothing listens there; check TEMPORAL_ADDRESS (or TEMPORAL_PROFILE), or start the server"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "must be at least 1, got 0"), ("many", "expected a whole number, got 'many'")],
)
def test_worker_refuses_a_bad_concurrency_with_one_line(value, message):
    proc = run("worker.py", "--max-concurrent-activities", value)
    assert proc.returncode == EXIT_INVALID
    assert proc.stderr.splitlines()[-1] == (
        f"worker.py: error: argument --max-concurrent-activities: {message}"
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--metrics-port", "http"],
            {},
            "worker.py: error: argument --metrics-port: expected PORT or HOST:PORT with a port "
            "from 1 to 65535, got 'http'",
        ),
        (
            [],
            {"TEMPORAL_BOOTSTRAP_METRICS_PORT": "127.0.0.1:70000"},
            "worker.py: error: TEMPORAL_BOOTSTRAP_METRICS_PORT: expected PORT or HOST:PORT with a "
            "port from 1 to 65535, got '127.0.0.1:70000'",
        ),
    ],
    ids=["option", "variable"],
)
def test_worker_refuses_a_bad_metrics_port_with_one_line(args, env, message):
    proc = run("worker.py", *args, **env)
    assert proc.returncode == EXIT_INVALID
    assert proc.stderr.splitlines()[-1] == message
    assert "Traceback" not in proc.stderr


def test_worker_whose_metrics_port_is_taken_ends_with_one_line():
    nobody, busy = free_ports(2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", busy))
        taken.listen()
        proc = run(
            "worker.py",
            "--metrics-port",
            f"127.0.0.1:{busy}",
            TEMPORAL_ADDRESS=f"127.0.0.1:{nobody}",
        )
    assert proc.returncode == EXIT_FAILED
    assert "Traceback" not in proc.stderr
    assert f"cannot serve metrics on 127.0.0.1:{busy}: " in proc.stderr.strip().splitlines()[-1]
    assert "Address already in use" in proc.stderr
    assert _one_failure_line(proc.stderr)


def test_worker_against_an_address_nobody_serves_ends_with_one_line():
    (port,) = free_ports(1)
    proc = run("worker.py", TEMPORAL_ADDRESS=f"127.0.0.1:{port}")
    assert proc.returncode == EXIT_FAILED
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith(
        f"cannot connect to the bootstrap Temporal server 127.0.0.1:{port}: connection refused: "
        "nothing listens there; check TEMPORAL_ADDRESS (or TEMPORAL_PROFILE), or start the server"
    )
    assert _one_failure_line(proc.stderr)


@pytest.mark.parametrize(
    ("folder", "why"),
    [("absent", "does not exist"), (".", "holds no environment files")],
)
def test_worker_refuses_a_trusted_environments_folder_it_cannot_use(tmp_path, folder, why):
    """#23.8: exit 3 with one line naming the setting, before connecting anywhere."""
    where = tmp_path / folder
    proc = run("worker.py", TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS=str(where))
    assert proc.returncode == EXIT_INVALID, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS={where}: {why}" in last
    assert "Traceback" not in proc.stderr
    assert _one_failure_line(proc.stderr)


def test_worker_refuses_a_bad_health_port_with_one_line():
    proc = run("worker.py", TEMPORAL_BOOTSTRAP_HEALTH_PORT="http")
    assert proc.returncode == EXIT_INVALID, proc.stderr
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "TEMPORAL_BOOTSTRAP_HEALTH_PORT='http': expected [HOST:]PORT with a port from 0 to 65535"
        )
    )
    assert _one_failure_line(proc.stderr)


def test_an_embedded_server_that_cannot_start_ends_with_one_line(tmp_path, chart_mirror):
    """No address configured and the embedded server fails (here: its SQLite file is a
    folder) used to end in an EmbeddedServerError traceback."""
    (tmp_path / "embedded-server" / "temporal.sqlite").mkdir(parents=True)
    state = {
        "TEMPORAL_BOOTSTRAP_STATE_DIR": str(tmp_path),
        # staging's chart comes from the real repository: the machine's mirror serves it
        **chart_mirror,
    }
    for script, args in (
        ("starter.py", ("provision", "staging", "--dry-run", "--no-wait")),
        ("worker.py", ()),
    ):
        proc = run(script, *args, **state)
        assert proc.returncode == EXIT_FAILED, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        assert _one_failure_line(proc.stderr), proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert "the embedded Temporal server did not start" in last
        assert f"(log {tmp_path}/embedded-server/temporal.log)" in last


# --- issue #20 items 10, 11 and 12: settings and arguments that could not be used ---------


@pytest.fixture
def frozen_server():
    """An address whose server is frozen (SIGSTOPped): the kernel completes the TCP handshake
    (the socket listens) but nothing ever answers."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_a_frozen_bootstrap_server_is_named_in_one_line(frozen_server):
    # It cost 30.5 s and ended with the raw `get_system_info ... Timeout expired` (#20.12).
    proc = run("starter.py", "status", "local", TEMPORAL_ADDRESS=frozen_server)
    assert proc.returncode == EXIT_FAILED, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"cannot connect to the bootstrap Temporal server {frozen_server}: it did not answer "
        "within 10 s; check TEMPORAL_ADDRESS (or TEMPORAL_PROFILE), or start the server"
    ]


@pytest.mark.parametrize(
    "address", ["host:port", "bad address", ":7233", "host:99999", "a\x01b:7233", "[::1"]
)
def test_a_malformed_temporal_address_is_refused_with_one_line(address):
    # `ValueError: invalid target URL` ended in a traceback (#20.11).
    proc = run("starter.py", "status", "local", TEMPORAL_ADDRESS=address)
    assert proc.returncode == EXIT_INVALID, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("TEMPORAL_ADDRESS: ") and "HOST:PORT" in line, line


@pytest.mark.parametrize(
    ("option", "allowed"), [("--by", 200), ("--reason", 2000)], ids=["by", "reason"]
)
@pytest.mark.parametrize("action", ["approve", "retry", "skip", "abort", "pause", "resume"])
def test_an_operator_argument_over_its_limit_is_refused_with_one_line(action, option, allowed):
    # A pydantic ValidationError from building OperatorRequest ended in a traceback (#20.11).
    (port,) = free_ports(1)
    proc = run(
        "starter.py",
        action,
        "local",
        option,
        "x" * (allowed + 1),
        TEMPORAL_ADDRESS=f"127.0.0.1:{port}",
    )
    assert proc.returncode == EXIT_INVALID, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"{option}: at most {allowed} characters (got {allowed + 1})"
    ]


def test_a_temporal_config_file_that_does_not_exist_is_an_error(tmp_path):
    # It was ignored, and the default server used instead (#20.10).
    missing = tmp_path / "nowhere" / "temporal.toml"
    proc = run("starter.py", "status", "local", TEMPORAL_CONFIG_FILE=str(missing))
    assert proc.returncode == EXIT_INVALID, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"TEMPORAL_CONFIG_FILE: {missing}"), line


@pytest.mark.parametrize("kind", ["missing", "not-executable", "directory", "false"])
def test_a_helm_bin_that_cannot_be_used_is_an_error_naming_it(tmp_path, kind):
    # A HELM_BIN that is not an executable was ignored silently (another helm used), and
    # /bin/false gave "helm could not render" with no reason (#20.10).
    helm = {
        "missing": tmp_path / "helm",
        "not-executable": tmp_path / "helm.txt",
        "directory": tmp_path,
        "false": Path("/bin/false"),
    }[kind]
    if kind == "not-executable":
        helm.write_text("#!/bin/sh\n")
    proc = run("starter.py", "render", "staging", HELM_BIN=str(helm))
    assert proc.returncode == EXIT_INVALID, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "HELM_BIN" in proc.stderr and str(helm) in proc.stderr, proc.stderr


def test_import_helmfile_of_an_alias_bomb_ends_with_one_line(tmp_path):
    # The bomb was caught, then os.path.relpath("") raised while the error was shown (#20.11).
    lines, previous = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]'], "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
        previous = name
    helmfile = tmp_path / "helmfile.yaml"
    helmfile.write_text("\n".join(lines) + "\n")
    proc = run("starter.py", "import-helmfile", str(helmfile), "--env", "staging")
    assert proc.returncode == EXIT_INVALID, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"cannot import {helmfile}:"), proc.stderr
    assert f"{helmfile}: f: expands to more than" in proc.stderr, proc.stderr
    assert "alias" in proc.stderr, proc.stderr
