"""Crash recovery through real processes: the worker is killed with SIGKILL in the middle of
register_namespaces, after one declared namespace was registered and while the other's
RegisterNamespace is on its way; a restarted worker completes the run, and no namespace is
registered twice (the restarted attempt's RegisterNamespace of the first one is answered
ALREADY_EXISTS), and the result says both were created (the first by the killed attempt:
item 4 of issue #10, it used to say `unchanged`).

The environment's frontend is the target Temporal server seen through `FrontendHoldProxy`
(a stand-in for the network hop in front of it), which holds crash-ns-b's RegisterNamespace:
so the kill happens at that exact point, not when a poll happens to catch a 100 ms window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from tests.e2e.conftest import CRASH_STEP_TIMEOUTS
from tests.e2e.frontend_hold_proxy import REGISTER_NAMESPACE, FrontendHoldProxy

# Fresh names: the session's target server already has the other tests' namespaces.
NAMESPACES = {"crash-ns-a": "168h", "crash-ns-b": "24h"}
RETENTION_SECONDS = {"crash-ns-a": 168 * 3600, "crash-ns-b": 24 * 3600}
RETENTION_ISO = {"crash-ns-a": "P7D", "crash-ns-b": "P1D"}  # the step details' JSON form


@pytest.fixture
def frontend_proxy(target_temporal) -> Iterator[FrontendHoldProxy]:
    with FrontendHoldProxy(target_temporal.address) as proxy:
        yield proxy


def test_worker_killed_during_register_namespaces(
    operator, start_worker, environments_copy, target_temporal, frontend_proxy, fault_table
):
    since = time.monotonic()

    def staging(local: dict) -> None:
        local["kubernetes"]["namespace"] = "my-app-crash-ns"
        local["step_timeouts"] = CRASH_STEP_TIMEOUTS
        local["frontend"] = {"address": frontend_proxy.address}  # direct, to the proxy
        local["temporal_namespaces"] = [
            {"name": name, "retention": retention, "description": f"crash test {name}"}
            for name, retention in NAMESPACES.items()
        ]

    env_dir = environments_copy(staging)
    # crash-ns-a goes through; crash-ns-b's RegisterNamespace waits in the proxy.
    frontend_proxy.hold(REGISTER_NAMESPACE, namespace="crash-ns-b")
    worker = start_worker()
    try:
        started = operator.starter(
            "provision", "local", "--environments-dir", str(env_dir), "--no-wait"
        )
        assert started.returncode == 0, started.stdout + started.stderr
        held = frontend_proxy.wait_held(timeout=180)
        assert held.call.namespace == "crash-ns-b"
        frontend_proxy.wait_forwarded(REGISTER_NAMESPACE, "crash-ns-a", timeout=30)
        ns_a_id = operator.describe_namespace("crash-ns-a", target_temporal.address)[
            "namespaceInfo"
        ]["id"]

        worker.kill9()
        # The killed worker's connection is closed: its held call must be dropped on release.
        assert held.wait_client_gone(timeout=30), "the proxy never saw the worker go away"
        frontend_proxy.release()
        assert frontend_proxy.wait_done(held.call, timeout=10).outcome == "dropped"

        worker = start_worker(worker.log)
        done = operator.wait_state("done", timeout=240)
    finally:
        frontend_proxy.release()
        worker.stop()
        # A run left behind by a failure here must not be attached to by later tests.
        operator.temporal(
            "workflow", "terminate", "--workflow-id", "provision-local", "--reason", "test cleanup"
        )

    step = next(s for s in done["steps"] if s["name"] == "register_namespaces")
    assert step["status"] == "done", step
    outcomes = {n["name"]: n for n in step["result"]["namespaces"]}
    assert {name: o["action"] for name, o in outcomes.items()} == {
        "crash-ns-a": "created",  # by the killed attempt: the run created it all the same
        "crash-ns-b": "created",  # its first RegisterNamespace never reached the server
    }, step
    assert step["summary"] == "crash-ns-a created, crash-ns-b created"
    assert outcomes["crash-ns-a"]["retention_before"] is None
    assert {name: o["retention_after"] for name, o in outcomes.items()} == RETENTION_ISO

    # The restarted attempt registers first, so crash-ns-a's second RegisterNamespace reaches
    # the server and is answered ALREADY_EXISTS: one accepted registration per name.
    forwarded = frontend_proxy.forwarded(REGISTER_NAMESPACE)
    registered = [c.namespace for c in forwarded if c.outcome == "ok"]
    assert sorted(registered) == ["crash-ns-a", "crash-ns-b"], "one registration per name"
    refused = {(c.namespace, c.code) for c in forwarded if c.outcome != "ok"}
    assert refused <= {("crash-ns-a", grpc.StatusCode.ALREADY_EXISTS)}, forwarded
    a = operator.describe_namespace("crash-ns-a", target_temporal.address)
    assert a["namespaceInfo"]["id"] == ns_a_id, "crash-ns-a must be the namespace registered first"
    for name, seconds in RETENTION_SECONDS.items():
        config = operator.describe_namespace(name, target_temporal.address)["config"]
        assert config["workflowExecutionRetentionTtl"] == f"{seconds}s", (name, config)
    fault_table.record(
        "worker-killed-mid-register",
        outcome=f"done without an operator: {step['summary']}",
        operator_sees=f'progress after the restart: register_namespaces done, "{step["summary"]}"',
        kept="one RegisterNamespace per name reached the server; crash-ns-a is the one "
        "registered first (same id); retentions as declared",
        since=since,
    )
