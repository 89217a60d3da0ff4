"""Crash recovery through real processes: the worker is killed with SIGKILL during
install_chart and restarted; the run completes without an operator.

- helm killed with the worker (a pod's container dying): the release is left
  `pending-install`, and the next attempt recovers it, then installs the declared values;
- the worker killed after helm finished but before the activity reported: the next attempt
  finds the release deployed with the declared values and adds no revision;
- the worker killed while a run waits for approval: the webhook was told once, and the
  worker that replays the run tells it nothing again (#22.5).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from declared_state.chart_values import build_chart_values
from declared_state.loader import load_environment
from local_stack.processes import pid_alive
from tests.e2e.conftest import CRASH_STEP_TIMEOUTS
from tests.e2e.faults import helm_revisions, release_history
from tests.helpers import pids_running, wait_for
from tests.helpers.webhook_receiver import webhook_receiver

RELEASE_DEPLOYMENT = "temporal-history"


def history_or_empty(operator, namespace):
    try:
        return operator.helm_history(namespace)
    except AssertionError:  # no release yet
        return []


@pytest.fixture
def crash_run(operator, environments_copy):
    """Start `provision local` into a fresh Kubernetes namespace (with the crash tests' short
    heartbeat timeout, so a killed worker's step is retried sooner); afterwards terminate any
    run a failure left behind, so later tests do not attach to it."""

    def start(namespace: str) -> Path:
        def local(data: dict) -> None:
            data["kubernetes"]["namespace"] = namespace
            data["step_timeouts"] = CRASH_STEP_TIMEOUTS

        env_dir = environments_copy(local)
        proc = operator.starter(
            "provision", "local", "--environments-dir", str(env_dir), "--no-wait"
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return env_dir

    yield start
    operator.temporal(
        "workflow", "terminate", "--workflow-id", "provision-local", "--reason", "test cleanup"
    )


def assert_completed_as_declared(operator, done, env_dir, namespace, stack_variables) -> dict:
    """The release is deployed with exactly the declared values, namespaces registered;
    returns the install_chart step."""
    history = operator.helm_history(namespace)
    assert history[-1]["status"] == "deployed", history
    declared = load_environment("local", env_dir, variables=stack_variables)
    assert operator.helm_values(namespace) == json.loads(json.dumps(build_chart_values(declared)))
    steps = {s["name"]: s for s in done["steps"]}
    assert steps["register_namespaces"]["status"] == "done"
    return steps["install_chart"]


def test_worker_and_helm_killed_mid_install_leaves_pending_release_that_is_recovered(
    operator, start_worker, kube_standin, stack_variables, crash_run, tmp_path, fault_table
):
    since = time.monotonic()
    namespace = "my-app-crash-a"
    kube_standin.never_ready(RELEASE_DEPLOYMENT, namespace=namespace)
    worker = start_worker()
    follower = None
    try:
        env_dir = crash_run(namespace)
        # An operator following the run: `provision` again attaches to it.
        follower = operator.starter_in_background(
            "provision", "local", "--environments-dir", str(env_dir), log=tmp_path / "follow.log"
        )
        # helm is running and waiting for the never-ready Deployment
        wait_for(
            lambda: any(
                r["status"] == "pending-install" for r in release_history(kube_standin, namespace)
            ),
            120,
            "helm to start installing",
        )
        helm = wait_for(
            lambda: pids_running(operator.env["HELM_BIN"], "upgrade", namespace),
            30,
            "the helm process",
        )
        wait_for(
            lambda: "install_chart: upgrading" in follower.output(), 60, "helm's progress shown"
        )
        worker.kill9()
        for pid in helm:
            os.kill(pid, signal.SIGKILL)
        assert history_or_empty(operator, namespace)[-1]["status"] == "pending-install"
        wait_for(
            lambda: "no worker answers on task queue" in follower.output(),
            60,
            "the follower to notice the worker is gone",
        )
        assert follower.proc.poll() is None, "the follower must keep following"
        status = operator.starter("status", "local")
        assert status.returncode == 1 and "no worker answers" in status.stderr, status.stderr
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=namespace)
        worker = start_worker(worker.log)
        done = operator.wait_state("done", timeout=240)
        assert follower.wait(timeout=60) == 0, follower.output()
    finally:
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=namespace)
        worker.stop()
        if follower is not None:
            follower.stop()

    followed = follower.output()
    assert "attached to the running provision-local" in followed, followed
    assert "a worker answers again" in followed and "provision-local done (changed)." in followed

    install = assert_completed_as_declared(operator, done, env_dir, namespace, stack_variables)
    assert install["result"]["recovered_from"] == "pending-install", install
    assert install["result"]["action"] == "installed"
    fault_table.record(
        "worker-and-helm-killed",
        outcome=f"done without an operator: {install['summary']}",
        operator_sees="the following `provision`: "
        + next(ln.strip() for ln in followed.splitlines() if "no worker answers" in ln)[:160],
        kept=f"declared values deployed; helm {helm_revisions(operator.helm_history(namespace))}",
        since=since,
    )


# Test stand-in around the real helm: an `upgrade` that succeeded is reported to the worker
# only after a long pause, which holds the window "helm finished, activity not yet completed"
# open long enough to kill the worker in it.
SLOW_REPORTING_HELM = """#!/bin/bash
"{real}" "$@"
code=$?
if [ "$code" -eq 0 ] && [ "$1" = upgrade ]; then
  echo $$ > "{marker}.tmp" && mv "{marker}.tmp" "{marker}"
  sleep 600
fi
exit $code
"""


def test_worker_killed_after_helm_finished_adds_no_revision(
    operator, start_worker, stack_variables, crash_run, tmp_path, fault_table
):
    since = time.monotonic()
    namespace = "my-app-crash-b"
    marker = tmp_path / "helm-finished.pid"
    wrapper = tmp_path / "helm"
    wrapper.write_text(SLOW_REPORTING_HELM.format(real=operator.env["HELM_BIN"], marker=marker))
    wrapper.chmod(0o755)
    worker = start_worker(HELM_BIN=str(wrapper))
    wrapper_pid = None
    try:
        env_dir = crash_run(namespace)
        wait_for(marker.exists, 180, "helm upgrade to finish")
        wrapper_pid = int(marker.read_text())
        assert [(r["revision"], r["status"]) for r in operator.helm_history(namespace)] == [
            (1, "deployed")
        ]
        running = operator.progress()
        install = next(s for s in running["steps"] if s["name"] == "install_chart")
        assert install["status"] == "running", "the activity must not have reported yet"
        worker.kill9()
        os.killpg(wrapper_pid, signal.SIGKILL)  # the wrapper runs in its own session
        worker = start_worker(worker.log)  # the real helm from now on
        done = operator.wait_state("done", timeout=240)
    finally:
        worker.stop()
        if wrapper_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(wrapper_pid, signal.SIGKILL)

    install = assert_completed_as_declared(operator, done, env_dir, namespace, stack_variables)
    assert len(operator.helm_history(namespace)) == 1, "helm had finished: no revision may be added"
    assert install["result"]["action"] == "unchanged", install
    fault_table.record(
        "worker-killed-after-helm",
        outcome=f"done without an operator: install_chart {install['summary']} on its retry",
        operator_sees=f"progress: install_chart {install['status']}: {install['summary']}",
        kept=f"no revision added: helm {helm_revisions(operator.helm_history(namespace))}",
        since=since,
    )


def test_sigterm_mid_install_stops_helm_exits_cleanly_and_a_new_worker_completes(
    operator, start_worker, kube_standin, stack_variables, crash_run, fault_table
):
    since = time.monotonic()
    namespace = "my-app-sigterm"
    kube_standin.never_ready(RELEASE_DEPLOYMENT, namespace=namespace)
    worker = start_worker()
    try:
        env_dir = crash_run(namespace)
        helm = wait_for(
            lambda: pids_running(operator.env["HELM_BIN"], "upgrade", namespace),
            120,
            "helm to start installing",
        )
        # SIGTERM, as a pod eviction or Ctrl-C sends it; the worker's graceful shutdown (10 s)
        # and helm's own (10 s) fit well within the 45 s before stop() resorts to SIGKILL.
        stopping = time.monotonic()
        worker.stop(timeout=45)
        stopped_after = time.monotonic() - stopping
        print(f"worker stopped after {stopped_after:.1f}s")
        assert worker.proc is not None and worker.proc.returncode == 0, worker.log.read_text()
        assert "shutting down: finishing running activities" in worker.log.read_text()
        assert not any(pid_alive(pid) for pid in helm), "helm outlived the worker"
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=namespace)
        worker = start_worker(worker.log)
        done = operator.wait_state("done", timeout=240)
    finally:
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=namespace)
        worker.stop()

    install = assert_completed_as_declared(operator, done, env_dir, namespace, stack_variables)
    fault_table.record(
        "worker-sigterm-mid-install",
        outcome=f"worker exited 0 in {stopped_after:.0f} s, helm stopped with it; a new worker "
        f"completed: {install['summary']}",
        operator_sees="worker log: shutting down: finishing running activities",
        kept=f"declared values deployed; helm {helm_revisions(operator.helm_history(namespace))}",
        since=since,
    )


def test_a_wait_for_approval_is_told_once_across_a_killed_worker(
    operator, start_worker, crash_run, environments_copy
):
    """#22.5 through real processes: a run with approval_required tells the webhook it
    waits (with the commands); the worker is killed with SIGKILL and another one replays
    the run: the webhook is not told again; the abort that ends it is told once."""
    with webhook_receiver() as receiver:
        worker = start_worker(E2E_OPS_WEBHOOK=receiver.url)
        try:
            env_dir = environments_copy(
                lambda local: local.update(
                    kubernetes={**local["kubernetes"], "namespace": "my-app-crash-notify"},
                    approval_required=True,
                    notifications={
                        "webhooks": [{"name": "ops", "url_from_env": "E2E_OPS_WEBHOOK"}]
                    },
                )
            )
            started = operator.starter(
                "provision", "local", "--environments-dir", str(env_dir), "--no-wait"
            )
            assert started.returncode == 0, started.stdout + started.stderr
            operator.wait_state("waiting for operator", timeout=180)
            wait_for(lambda: receiver.accepted("waiting"), 60, "the waiting notification")
            worker.kill9()
            worker = start_worker(worker.log, E2E_OPS_WEBHOOK=receiver.url)
            aborted = operator.starter("abort", "local", "--by", "e2e")
            assert aborted.returncode == 1, aborted.stdout + aborted.stderr
            wait_for(lambda: receiver.accepted("failed"), 60, "the failed notification")
        finally:
            worker.stop()
    [waiting] = receiver.accepted("waiting")
    assert [p.body["event"] for p in receiver.accepted()] == ["waiting", "failed"]
    assert waiting.body["state"] == "approval"
    assert waiting.headers["Idempotency-Key"].startswith("provision-local/")
    assert "python starter.py approve local" in waiting.body["commands"]
