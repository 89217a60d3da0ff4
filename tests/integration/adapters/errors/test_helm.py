"""The helm error table, row by row, with helm's own messages.

Pending releases, timeouts and bad values are also produced by real helm against the
Kubernetes API stand-in in tests/integration/activities/test_install_chart.py; here each row is checked
with messages as helm v3 and v4 print them, and one real failure (cluster unreachable)
comes from both helm binaries. The expectations are written out, not read from the table.
"""

from __future__ import annotations

import subprocess

import pytest
from temporalio.exceptions import ApplicationError

from adapters.errors import ErrorType
from adapters.errors.helm import HELM_ERRORS, helm_error
from adapters.helm_cli import error_message
from local_stack.processes import LOOPBACK, free_port

PENDING, TIMEOUT, BAD_VALUES, FAILED = (
    ErrorType.HELM_RELEASE_PENDING,
    ErrorType.HELM_TIMEOUT,
    ErrorType.HELM_BAD_VALUES,
    ErrorType.HELM_FAILED,
)
RETRYABLE = {PENDING: False, TIMEOUT: True, BAD_VALUES: False, FAILED: True}

# helm's stderr -> the type it means
SAMPLES = [
    ("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress", PENDING),
    (
        "Error: UPGRADE FAILED: release temporal failed, and has been rolled back due to atomic "
        "being set: context deadline exceeded",
        TIMEOUT,
    ),
    ("Error: INSTALLATION FAILED: timed out waiting for the condition", TIMEOUT),
    (
        "Error: UPGRADE FAILED: release temporal failed, and has been rolled back due to "
        "rollback-on-failure being set: resource not ready, name: temporal-admintools, kind: "
        "Deployment, status: InProgress",
        TIMEOUT,
    ),
    ("Error: resource Deployment/ns/temporal-web not ready. status: InProgress", TIMEOUT),
    (
        "Error: INSTALLATION FAILED: execution error at (temporal/templates/server-secret.yaml:"
        "12:3): Please specify sql host for default store",
        BAD_VALUES,
    ),
    (
        "Error: values don't meet the specifications of the schema(s) in the following chart(s):\n"
        "temporal:\n- server.replicaCount: Invalid type. Expected: integer, given: string",
        BAD_VALUES,
    ),
    (
        "Error: YAML parse error on temporal/templates/web.yaml: error converting YAML to JSON",
        BAD_VALUES,
    ),
    (
        "Error: INSTALLATION FAILED: unable to build kubernetes objects from release manifest: "
        'error validating "": error validating data: unknown field "replica"',
        BAD_VALUES,
    ),
    ("Error: template: temporal/templates/_helpers.tpl:4:3: executing ...", BAD_VALUES),
    (
        'Error: Kubernetes cluster unreachable: Get "https://10.0.0.1/version": dial tcp '
        "10.0.0.1:443: connect: connection refused",
        FAILED,
    ),
    ("Error: INSTALLATION FAILED: failed pre-install: job failed: BackoffLimitExceeded", FAILED),
    ("panic: runtime error\ngoroutine 1 [running]:", FAILED),
    ("", FAILED),
    # The first matching row decides: a lock message that also names a deadline is pending.
    (
        "Error: another operation (install/upgrade/rollback) is in progress; context deadline "
        "exceeded",
        PENDING,
    ),
    (
        "Error: UPGRADE FAILED: context deadline exceeded while rendering template: temporal",
        TIMEOUT,
    ),
]


def _error(
    output: str, aftermath=lambda message: "It is now at revision 3 (deployed)."
) -> ApplicationError:
    return helm_error(
        "helm upgrade --install of release 'temporal'",
        output,
        release="temporal",
        namespace="temporal-ns",
        environment="local",
        timeout_s=300,
        aftermath=aftermath,
    )


def test_every_row_is_expected_here() -> None:
    assert [row.error_type for row in HELM_ERRORS] == [PENDING, TIMEOUT, BAD_VALUES]


@pytest.mark.parametrize(("output", "error_type"), SAMPLES)
def test_message_maps_to_its_type(output: str, error_type: ErrorType) -> None:
    error = _error(output)

    assert (error.type, error.non_retryable) == (error_type, not RETRYABLE[error_type])
    assert error.message.startswith("helm upgrade --install of release 'temporal'")
    assert error_message(output.splitlines()) in error.message


def test_messages_say_what_to_do() -> None:
    pending = _error(SAMPLES[0][0]).message
    timeout = _error(SAMPLES[1][0]).message
    bad = _error(SAMPLES[5][0]).message

    assert (
        "kubectl delete secret sh.helm.release.v1.temporal.v<pending revision> "
        "--namespace temporal-ns" in pending
    )
    assert "timed out after 300s waiting for readiness" in timeout
    assert timeout.endswith(". It is now at revision 3 (deployed).")
    assert "the chart rejected the values built from environment 'local'" in bad


def test_aftermath_is_read_back_only_for_a_timeout() -> None:
    asked: list[str] = []

    def aftermath(message: str) -> str:
        asked.append(message)
        return ""

    for output, _ in SAMPLES:
        _error(output, aftermath)

    timeouts = [error_message(o.splitlines()) for o, t in SAMPLES if t is TIMEOUT]
    assert asked == timeouts


def test_error_message_drops_v3_debug_stack_and_v4_hint() -> None:
    v3 = [
        "upgrade.go:123: [debug] preparing upgrade",
        "Error: UPGRADE FAILED: execution error at (t.yaml:1:1): bad",
        "  second line of the message",
        "helm.go:86: [debug] execution error",
        "main.main()",
    ]
    v4 = ["Error: UPGRADE FAILED: bad", "Use --debug flag to see more output"]

    assert error_message(v3) == (
        "Error: UPGRADE FAILED: execution error at (t.yaml:1:1): bad\n  second line of the message"
    )
    assert error_message(v4) == "Error: UPGRADE FAILED: bad"


@pytest.mark.parametrize("version", ["v3", "v4"])
def test_real_unreachable_cluster_is_retryable(helm_binaries, tmp_path, version: str) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://{LOOPBACK}:{free_port()}'}}}}]\n"
        "users: [{name: c, user: {token: x}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: c}}]\n"
    )
    proc = subprocess.run(
        [helm_binaries[version], "history", "temporal", "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    error = _error(proc.stderr)

    assert proc.returncode != 0
    assert (error.type, error.non_retryable) == (FAILED, False), proc.stderr
    assert "kubernetes cluster unreachable" in error.message.lower()  # v4 lowercases it
