"""Command-line misuse of `starter.py` and `worker.py` (issue #10, item 13): real processes,
each ends with a clear message, the documented exit code 3 ("invalid input": typer's and
argparse's own 2 means "waiting for an operator" here), and no traceback."""

from __future__ import annotations

import os
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


def test_worker_against_an_address_nobody_serves_ends_with_one_line():
    (port,) = free_ports(1)
    proc = run("worker.py", TEMPORAL_ADDRESS=f"127.0.0.1:{port}")
    assert proc.returncode == EXIT_FAILED
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith(
        f"cannot connect to the bootstrap Temporal server 127.0.0.1:{port}: connection refused: "
        "nothing listens there; check TEMPORAL_ADDRESS (or TEMPORAL_PROFILE), or start the server"
    )
    assert len(proc.stderr.strip().splitlines()) == 1


def test_an_embedded_server_that_cannot_start_ends_with_one_line(tmp_path, chart_repository):
    """No address configured and the embedded server fails (here: its SQLite file is a
    folder) used to end in an EmbeddedServerError traceback."""
    (tmp_path / "embedded-server" / "temporal.sqlite").mkdir(parents=True)
    state = {
        "TEMPORAL_BOOTSTRAP_STATE_DIR": str(tmp_path),
        # staging's chart comes from the real repository: the local stack's mirror serves it
        "TEMPORAL_BOOTSTRAP_CHART_REPOSITORY": chart_repository.url,
    }
    for script, args in (
        ("starter.py", ("provision", "staging", "--dry-run", "--no-wait")),
        ("worker.py", ()),
    ):
        proc = run(script, *args, **state)
        assert proc.returncode == EXIT_FAILED, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "the embedded Temporal server did not start" in lines[0]
        assert f"(log {tmp_path}/embedded-server/temporal.log)" in lines[0]
