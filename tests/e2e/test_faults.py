"""The fault suite (issue #10): faults injected into real processes on the local stack, each
test recording in the fault table (tests/e2e/faults.py) what it measured: the outcome, what
an operator saw, and that nothing was lost or duplicated. The crash tests in
test_crash_recovery.py, test_crash_register_namespaces.py and test_embedded_server.py record
their rows too; docs/reliability.md holds the table.

Every test here starts its own worker (some kill it), in a Kubernetes namespace of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from local_stack.processes import pid_alive
from local_stack.temporal_servers import TemporalDevServer, dev_server
from tests.e2e.conftest import CRASH_STEP_TIMEOUTS
from tests.e2e.faults import FAULTS, helm_revisions, release_history
from tests.e2e.frontend_hold_proxy import DESCRIBE_NAMESPACE, REGISTER_NAMESPACE, FrontendHoldProxy
from tests.e2e.upgrades import snapshots, writes_in
from tests.helpers import pids_running, quiet_for, wait_for

RELEASE_DEPLOYMENT = "temporal-history"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
KUBECTL = str(Path(__file__).resolve().parents[2] / ".tools" / "kubectl" / "kubectl")


def line_with(text: str, pattern: str) -> str:
    """The first line of `text` matching `pattern`, stripped, for the table."""
    found = next((ln.strip() for ln in text.splitlines() if re.search(pattern, ln)), "")
    assert found, f"no line matches {pattern!r} in:\n{text}"
    return found[:220]


@pytest.fixture
def fresh(environments_copy, operator):
    """An environment in a Kubernetes namespace of its own; afterwards any run left behind is
    terminated, so later tests never attach to it."""

    def make(namespace: str, then=None, **changes) -> Path:
        def edit(local: dict) -> None:
            local["kubernetes"]["namespace"] = namespace
            local.update(changes)
            if then is not None:
                then(local)

        return environments_copy(edit)

    yield make
    operator.temporal(
        "workflow", "terminate", "--workflow-id", "provision-local", "--reason", "test cleanup"
    )


@pytest.fixture
def a_worker(start_worker) -> Iterator[list]:
    """Workers started by the test (a list, since tests replace killed ones); all stopped."""
    workers: list = []
    yield workers
    for worker in workers:
        worker.stop()


def test_fault_mariadb_frozen_during_check_database(
    operator, start_worker, a_worker, mariadb, fresh, fault_table, tmp_path
):
    since = time.monotonic()
    env_dir = fresh("my-app-fault-db")
    a_worker.append(start_worker())
    assert mariadb.process is not None and mariadb.process.pid is not None
    os.kill(mariadb.process.pid, signal.SIGSTOP)
    try:
        follower = operator.starter_in_background(
            "provision", "local", "--environments-dir", str(env_dir), log=tmp_path / "f.log"
        )
        wait_for(lambda: "check_database: attempt 2" in follower.output(), 120, "a retry")
    finally:
        os.kill(mariadb.process.pid, signal.SIGCONT)
    assert follower.wait(timeout=240) == 0, follower.output()
    out = follower.output()
    history = operator.helm_history("my-app-fault-db")
    assert [r["status"] for r in history] == ["deployed"]
    fault_table.record(
        "mariadb-frozen",
        outcome="done without an operator (check_database retried)",
        operator_sees=line_with(out, "check_database: attempt"),
        kept=f"helm {helm_revisions(history)}",
        since=since,
    )


def test_fault_kubernetes_503_burst_while_provisioning(
    operator, start_worker, a_worker, kube_standin, fresh, fault_table, tmp_path
):
    since = time.monotonic()
    ns = "my-app-fault-kube"
    env_dir = fresh(ns)
    a_worker.append(start_worker())
    kube_standin.inject_faults(rf"^/api/v1/namespaces/{ns}/(secrets|configmaps)", 503, count=3)
    follower = operator.starter_in_background(
        "provision", "local", "--environments-dir", str(env_dir), log=tmp_path / "f.log"
    )
    assert follower.wait(timeout=240) == 0, follower.output()
    kube_standin.clear_faults()
    out = follower.output()
    history = operator.helm_history(ns)
    assert [r["status"] for r in history] == ["deployed"]
    progress = operator.progress()
    attempts = {s["name"]: s["attempts"] for s in progress["steps"]}
    fault_table.record(
        "kubernetes-503-burst",
        outcome="done without an operator (the steps' own retries)",
        operator_sees=line_with(out, r"attempt \d|503|KubernetesUnavailable")
        if re.search(r"attempt \d", out)
        else "only the steps' progress lines: the retries stayed inside each activity",
        kept=f"helm {helm_revisions(history)}; each step done once "
        f"(workflow attempts: ca {attempts['ensure_ca_bundle']}, secret "
        f"{attempts['ensure_db_secret']})",
        since=since,
    )


BAD_SIGNALS = [
    ("retry", ['{"by": "a"}', '{"by": "b"}']),
    ("approve", ['{"by": 123}']),
    ("approve", ['{"by": "x", "extra": 1}']),
    ("approve", ['"x"']),
    ("approv", ['{"by": "x"}']),
]


def test_fault_malformed_operator_signals(operator, start_worker, a_worker, fresh, fault_table):
    since = time.monotonic()
    env_dir = fresh("my-app-fault-signals", approval_required=True)
    a_worker.append(start_worker())
    waiting = operator.starter("provision", "local", "--environments-dir", str(env_dir))
    assert waiting.returncode == 2, waiting.stdout + waiting.stderr
    for name, inputs in BAD_SIGNALS:
        sent = operator.temporal(
            "workflow",
            "signal",
            "--workflow-id",
            "provision-local",
            "--name",
            name,
            *[a for value in inputs for a in ("--input", value)],
        )
        assert sent.returncode == 0, sent.stderr  # a signal cannot answer: the CLI says ok
    status = wait_for(
        lambda: (
            (s := operator.starter("status", "local")).stdout.count("refused signal") == 5 and s
        ),
        30,
        "the refused signals to show",
    )
    assert status.returncode == 2, status.stdout + status.stderr
    assert "waiting for: approval before install_chart" in status.stdout
    # The same action as an update: the temporal CLI gets the refusal back.
    refused = operator.temporal(
        "workflow", "update", "execute", "--workflow-id", "provision-local", "--name", "retry"
    )
    assert refused.returncode != 0
    assert "retry is not possible now: it waits for: approval before install_chart" in (
        refused.stderr + refused.stdout
    )
    approved = operator.starter("approve", "local", "--by", "cab")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    done = operator.progress()
    assert done["state"] == "done" and done["approved_by"] == "cab"
    history = operator.helm_history("my-app-fault-signals")
    assert [r["status"] for r in history] == ["deployed"]
    fault_table.record(
        "malformed-signals",
        outcome="run unharmed: queries, status and approve kept working; done after approve",
        operator_sees=line_with(status.stdout, "refused signal 'retry'"),
        kept=f"5 refusals listed in progress; approval by the update kept; "
        f"helm {helm_revisions(history)}",
        since=since,
    )


def test_fault_stale_declaration_handed_to_the_waiting_run(
    operator, start_worker, a_worker, fresh, fault_table
):
    since = time.monotonic()
    env_dir = fresh("my-app-fault-stale", then=lambda local: local["rds"].update(port=3307))
    local = env_dir / "local.yaml"
    wrong = yaml.safe_load(local.read_text())
    good = {**wrong, "rds": {**wrong["rds"], "port": "${LOCAL_STACK_DB_PORT}"}}
    a_worker.append(start_worker())
    args = ("provision", "local", "--environments-dir", str(env_dir))
    failed = operator.starter(*args)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "ConfigurationMismatch" in failed.stdout and "3307" in failed.stdout
    local.write_text(yaml.safe_dump(good))  # fixed as the message says
    asked = operator.starter(*args)
    assert asked.returncode == 2, asked.stdout + asked.stderr
    diff = line_with(asked.stdout, r"rds\.port: 3307 ->")
    handed = operator.starter(*args, "--update-run", "--by", "dba")
    assert handed.returncode == 0, handed.stdout + handed.stderr
    done = operator.progress()
    check = next(s for s in done["steps"] if s["name"] == "check_database")
    assert check["operator_actions"] == ["declaration replaced by dba: rds.port", "retry by dba"]
    history = operator.helm_history("my-app-fault-stale")
    assert [r["status"] for r in history] == ["deployed"]
    fault_table.record(
        "stale-declaration",
        outcome="exit 2 with the differing keys and both ways; --update-run: done",
        operator_sees=diff,
        kept=f"check_database ran {check['attempts']}× (old, then new port); the hand-over is "
        f"in the history and the step record; helm {helm_revisions(history)}",
        since=since,
    )


def test_fault_worker_killed_while_its_helm_lives_on(
    operator, start_worker, a_worker, kube_standin, fresh, fault_table
):
    since = time.monotonic()
    ns = "my-app-fault-orphan"
    env_dir = fresh(ns, step_timeouts=CRASH_STEP_TIMEOUTS)
    kube_standin.never_ready(RELEASE_DEPLOYMENT, namespace=ns)
    worker = start_worker()
    a_worker.append(worker)
    started = operator.starter(
        "provision", "local", "--environments-dir", str(env_dir), "--no-wait"
    )
    assert started.returncode == 0, started.stdout + started.stderr
    orphan = wait_for(
        lambda: pids_running(operator.env["HELM_BIN"], "upgrade", ns), 120, "helm to run"
    )
    # Into helm's wait: the release is pending-install and helm v4 is quiet (a helm that
    # still prints dies of SIGPIPE once its worker's end of the pipe is gone).
    wait_for(
        lambda: (
            [r["status"] for r in release_history(kube_standin, ns)][-1:] == ["pending-install"]
        ),
        60,
        "pending-install",
    )
    time.sleep(2)
    worker.kill9()  # the worker's process group only: helm runs in a session of its own
    assert all(pid_alive(pid) for pid in orphan), "helm must outlive its worker"

    def ready_once_the_orphan_is_gone() -> None:
        deadline = time.monotonic() + 180
        while any(pid_alive(pid) for pid in orphan) and time.monotonic() < deadline:
            time.sleep(0.2)
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=ns)

    threading.Thread(target=ready_once_the_orphan_is_gone, daemon=True).start()
    try:
        a_worker.append(start_worker(worker.log))
        done = operator.wait_state("done", timeout=300)
    finally:
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=ns)
        for pid in orphan:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    log = worker.log.read_text()
    stopped = re.search(r"stopping helm pid \d+ left by an earlier attempt", log)
    assert stopped and str(orphan[0]) in stopped.group(0), log[-3000:]
    history = operator.helm_history(ns)
    assert history[-1]["status"] == "deployed"
    install = next(s for s in done["steps"] if s["name"] == "install_chart")
    fault_table.record(
        "worker-killed-helm-survives",
        outcome=f"done without an operator: {install['summary']}",
        operator_sees=f"worker log: {stopped.group(0)}",
        kept=f"the orphan stopped before the release was touched; helm {helm_revisions(history)}",
        since=since,
    )


def test_fault_bootstrap_server_restart_mid_install(
    operator, start_worker, a_worker, kube_standin, bootstrap_temporal, fresh, fault_table
):
    since = time.monotonic()
    ns = "my-app-fault-bootstrap"
    env_dir = fresh(ns)
    kube_standin.never_ready(RELEASE_DEPLOYMENT, namespace=ns)
    a_worker.append(start_worker())
    try:
        started = operator.starter(
            "provision", "local", "--environments-dir", str(env_dir), "--no-wait"
        )
        assert started.returncode == 0, started.stdout + started.stderr
        wait_for(lambda: pids_running(operator.env["HELM_BIN"], "upgrade", ns), 120, "helm to run")
        run_id = json.loads(
            operator.temporal(
                "workflow", "describe", "--workflow-id", "provision-local", "-o", "json"
            ).stdout
        )["workflowExecutionInfo"]["execution"]["runId"]
        bootstrap_temporal.restart()
        down = operator.starter("status", "local")
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=ns)
        done = operator.wait_state("done", timeout=240)
    finally:
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=ns)
    described = json.loads(
        operator.temporal(
            "workflow", "describe", "--workflow-id", "provision-local", "-o", "json"
        ).stdout
    )
    assert described["workflowExecutionInfo"]["execution"]["runId"] == run_id
    history = operator.helm_history(ns)
    assert [r["status"] for r in history] == ["deployed"]
    install = next(s for s in done["steps"] if s["name"] == "install_chart")
    fault_table.record(
        "bootstrap-server-restart",
        outcome=f"the same run went on and finished: {install['summary']}",
        operator_sees="status right after the restart: "
        + line_with(down.stdout + down.stderr, r"provision-local|bootstrap server"),
        kept=f"same run id; install_chart ran {install['attempts']}×; "
        f"helm {helm_revisions(history)}",
        since=since,
    )


def test_fault_kubernetes_500_and_429_burst_during_a_drift_check(
    operator, start_worker, a_worker, kube_standin, fresh, fault_table
):
    ns = "my-app-fault-drift"
    env_dir = fresh(ns)
    a_worker.append(start_worker())
    provisioned = operator.starter("provision", "local", "--environments-dir", str(env_dir))
    assert provisioned.returncode == 0, provisioned.stdout + provisioned.stderr
    before = operator.helm_history(ns)
    since = time.monotonic()
    path = rf"^/api/v1/namespaces/{ns}/(secrets|configmaps)"
    kube_standin.inject_faults(path, 500, count=3, method="GET")
    kube_standin.inject_faults(path, 429, count=3, retry_after=1, method="GET")
    requests_since = _request_log_mark(kube_standin)
    checked = operator.starter("drift", "local", "--environments-dir", str(env_dir))
    kube_standin.clear_faults()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "local: in sync" in checked.stdout
    served = requests_since()
    errors = sorted(r["status"] for r in served if r["status"] in (429, 500))
    assert errors == [429] * 3 + [500] * 3, "every injected error was answered"
    writes = [r for r in served if r["method"] in ("POST", "PUT", "PATCH", "DELETE")]
    assert writes == [], "a drift check in sync writes nothing"
    after = operator.helm_history(ns)
    assert after == before
    fault_table.record(
        "kubernetes-500-429-drift",
        outcome="in sync (exit 0): the check's reads retried, no check failed",
        operator_sees=line_with(checked.stdout, "local: in sync"),
        kept=f"{len(errors)} error answers served, no write to the cluster; "
        f"helm {helm_revisions(after)} (unchanged)",
        since=since,
    )


def _request_log_mark(kube_standin):
    """The stand-in's request log keeps the latest requests only, so positions shift: mark
    the log with a request of its own and return what gives the requests after it."""
    marker = f"/api/v1/namespaces/log-marker-{uuid.uuid4().hex}"
    with contextlib.suppress(urllib.error.HTTPError):  # 403: anonymous may not read namespaces
        urllib.request.urlopen(
            kube_standin.url + marker, timeout=10, context=kube_standin.client_ssl_context()
        )

    def since() -> list[dict]:
        log = kube_standin.requests
        at = max(i for i, r in enumerate(log) if r["path"] == marker)
        return log[at + 1 :]

    return since


@pytest.fixture
def restartable_frontend(tmp_path) -> Iterator[tuple[TemporalDevServer, FrontendHoldProxy]]:
    """A target Temporal server of its own with a SQLite file (a restart keeps its
    namespaces, as a real cluster's database does), behind the hold proxy."""
    server = dev_server("target-restart", headless=True, db_filename=tmp_path / "t.sqlite")
    server.start()
    try:
        with FrontendHoldProxy(server.address) as proxy:
            yield server, proxy
    finally:
        server.stop()


def test_fault_frontend_restart_while_registering_namespaces(
    operator, start_worker, a_worker, restartable_frontend, fresh, fault_table, tmp_path
):
    since = time.monotonic()
    server, proxy = restartable_frontend
    env_dir = fresh(
        "my-app-fault-frontend",
        then=lambda local: local.update(
            frontend={"address": proxy.address}
        ),  # direct, to the proxy
        temporal_namespaces=[
            {"name": "restart-ns-a", "retention": "168h"},
            {"name": "restart-ns-b", "retention": "24h"},
        ],
    )
    proxy.hold(REGISTER_NAMESPACE, namespace="restart-ns-b")
    a_worker.append(start_worker())
    follower = operator.starter_in_background(
        "provision", "local", "--environments-dir", str(env_dir), log=tmp_path / "f.log"
    )
    try:
        held = proxy.wait_held(timeout=180)
        # restart-ns-a is done once its registration has been read back; before that, a
        # failed read would end the attempt and cancel restart-ns-b's held call (dropped).
        proxy.wait_forwarded(REGISTER_NAMESPACE, "restart-ns-a", timeout=30)
        proxy.wait_forwarded(DESCRIBE_NAMESPACE, "restart-ns-a", timeout=30)
        # The frontend crashes with restart-ns-b's call in flight. At once: a graceful stop
        # can outlast the call's 10 s deadline on a busy machine, and then the worker gives
        # up on the call before the frontend is gone (the proxy drops it, nothing is tested).
        server.stop(timeout=0)
        proxy.release()
        assert proxy.wait_done(held.call, timeout=30).outcome == "error"
        server.start(keep_ports=True)
        assert follower.wait(timeout=240) == 0, follower.output()
        done = operator.progress()
    finally:
        proxy.release()
        follower.stop()
    step = next(s for s in done["steps"] if s["name"] == "register_namespaces")
    outcomes = {n["name"]: n["action"] for n in step["result"]["namespaces"]}
    assert outcomes == {"restart-ns-a": "created", "restart-ns-b": "created"}, step
    ok = [c.namespace for c in proxy.forwarded(REGISTER_NAMESPACE) if c.outcome == "ok"]
    assert sorted(ok) == ["restart-ns-a", "restart-ns-b"], "one successful register per name"
    fault_table.record(
        "frontend-restart-registering",
        outcome=f"done without an operator: {step['summary']}",
        operator_sees=line_with(follower.output(), r"register_namespaces: .*attempt 2"),
        kept="one successful RegisterNamespace per name; restart-ns-a, registered before the "
        "restart, reported created (not unchanged)",
        since=since,
    )


def test_the_reliability_doc_lists_every_fault_of_the_suite():
    text = DOCS.read_text()
    missing = [fault for fault in FAULTS if f"`{fault}`" not in text]
    assert missing == [], f"docs/reliability.md lacks rows for {missing}"


def log_message(log: str, pattern: str) -> str:
    """The first worker log line matching `pattern`, without its timestamp and logger."""
    return re.sub(r"^.*? temporalio\.activity: ", "", line_with(log, pattern))


def ready_once_gone(kube_standin, orphan: list[int], namespace: str) -> None:
    """Let the held Deployment become ready once the orphaned helm is gone (stopped by the
    next worker), so the orphan never finishes the upgrade on its own."""

    def wait() -> None:
        deadline = time.monotonic() + 240
        while any(pid_alive(pid) for pid in orphan) and time.monotonic() < deadline:
            time.sleep(0.2)
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=namespace)

    threading.Thread(target=wait, daemon=True).start()


def pending_attempt(operator, workflow_id: str, activity: str) -> int:
    """The attempt of `activity` pending in `workflow_id` (0 when none is pending)."""
    described = operator.temporal(
        "workflow", "describe", "--workflow-id", workflow_id, "-o", "json"
    )
    if described.returncode != 0:
        return 0
    for pending in json.loads(described.stdout).get("pendingActivities") or []:
        if (pending.get("activityType") or {}).get("name") == activity:
            return int(pending.get("attempt") or 1)
    return 0


def test_fault_worker_killed_in_the_snapshot_waiter_and_in_an_upgrade_helm_wait(
    operator, start_worker, a_worker, upgrade_env, kube_standin, local_aws, fault_table, tmp_path
):
    """One upgrade hop (0.52.0 -> 0.55.0), the worker killed twice: while snapshot_database
    waits for a snapshot RDS has not finished, and while the hop's helm upgrade waits for
    readiness (helm itself lives on: the next worker stops it and recovers the release).
    Each time a new worker completes the hop: one snapshot, the hop's revision deployed."""
    namespace = "my-app-fault-upgrade"
    a_worker.append(start_worker())
    declare = upgrade_env(namespace, worker_killed=True)
    history_before = operator.helm_history(namespace)
    env_dir = declare("0.55.0")
    since_writes = len(kube_standin.writes)
    follower = None
    since = time.monotonic()
    try:
        local_aws.snapshots_stay_creating(True)
        follower = operator.starter_in_background(
            "upgrade", "local", "--environments-dir", str(env_dir), log=tmp_path / "follow.log"
        )
        wait_for(lambda: snapshots(local_aws), 180, "hop 1's snapshot to be created")
        wait_for(
            lambda: pending_attempt(operator, "upgrade-local", "snapshot_database") == 1,
            60,
            "snapshot_database to wait for the snapshot",
        )
        a_worker[-1].kill9()
        a_worker.append(start_worker(a_worker[-1].log))
        wait_for(
            lambda: pending_attempt(operator, "upgrade-local", "snapshot_database") >= 2,
            120,
            "a new attempt of snapshot_database to wait for the same snapshot",
        )
        kube_standin.never_ready(RELEASE_DEPLOYMENT, namespace=namespace)
        local_aws.snapshots_stay_creating(False)

        # The hop's helm upgrade: once it has applied everything and waits (only reads).
        since_helm = time.monotonic()
        settled = quiet_for(lambda: len(writes_in(kube_standin, namespace, since_writes)), 5)
        wait_for(
            lambda: (
                release_history(kube_standin, namespace)[-1]["status"] == "pending-upgrade"
                and settled()
            ),
            240,
            "the hop's helm upgrade to apply everything and wait for readiness",
        )
        helm = pids_running(operator.env["HELM_BIN"], "upgrade", namespace)
        assert helm, "helm upgrade is running"
        a_worker[-1].kill9()
        assert all(pid_alive(pid) for pid in helm), "the worker's helm outlives it"
        ready_once_gone(kube_standin, helm, namespace)
        a_worker.append(start_worker(a_worker[-1].log))
        assert follower.wait(timeout=420) == 0, follower.output()
    finally:
        local_aws.snapshots_stay_creating(False)
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=namespace)
        if follower is not None:
            follower.stop()

    followed = follower.output()
    assert "upgrade-local done: 1 hop(s), now chart 0.55.0" in followed, followed
    taken = snapshots(local_aws)
    assert len(taken) == 1, f"one snapshot for the hop, crashes or not: {taken}"
    history = operator.helm_history(namespace)
    added = history[len(history_before) :]
    assert history[-1]["status"] == "deployed" and history[-1]["chart"] == "temporal-0.55.0"
    # One deployed revision for the hop; the killed helm's is marked failed (#21.5).
    assert [r["status"] for r in added] == ["failed", "deployed"], added
    assert not any(pid_alive(pid) for pid in helm), "the orphaned helm was stopped"
    worker_log = a_worker[-1].log.read_text()
    fault_table.record(
        "worker-killed-snapshot-waiter",
        outcome="done without an operator: the next attempt found the snapshot it had "
        "created and waited for it; the hop completed",
        operator_sees=line_with(followed, r"hop 1: snapshot_database\s+done"),
        kept=f"one snapshot for the hop: {taken[0]}",
        since=since,
    )
    fault_table.record(
        "worker-killed-upgrade-helm-wait",
        outcome="done without an operator: " + line_with(followed, r"hop 1: install_chart\s+done"),
        operator_sees="worker log: "
        + log_message(worker_log, r"stopping helm pid|roll back abandoned"),
        kept=f"one snapshot; the hop's revisions: helm {helm_revisions(added)}",
        since=since_helm,
    )


def test_fault_worker_killed_in_a_drift_remediate_helm_wait(
    operator, start_worker, a_worker, kube_standin, fresh, fault_table, tmp_path
):
    """A drift check with policy remediate re-applies the chart (install_chart `reapply`) for
    a hand edit; the worker dies while that helm upgrade waits for readiness. A new worker
    stops the orphaned helm, recovers the release and repairs: the check ends repaired."""
    ns = "my-app-fault-remediate"
    env_dir = fresh(ns, step_timeouts=CRASH_STEP_TIMEOUTS)
    a_worker.append(start_worker())
    provisioned = operator.starter("provision", "local", "--environments-dir", str(env_dir))
    assert provisioned.returncode == 0, provisioned.stdout + provisioned.stderr
    history_before = operator.helm_history(ns)
    edit = operator.run(
        [
            KUBECTL,
            "--kubeconfig",
            operator.env["KUBECONFIG"],
            "-n",
            ns,
            "scale",
            "deployment/temporal-frontend",
            "--replicas=3",
        ]
    )
    assert edit.returncode == 0, edit.stderr
    since = time.monotonic()
    kube_standin.never_ready(RELEASE_DEPLOYMENT, namespace=ns)
    follower = operator.starter_in_background(
        "drift",
        "local",
        "--environments-dir",
        str(env_dir),
        "--policy",
        "remediate",
        log=tmp_path / "drift.log",
    )
    try:
        since_writes = len(kube_standin.writes)
        settled = quiet_for(lambda: len(writes_in(kube_standin, ns, since_writes)), 5)
        wait_for(
            lambda: (
                release_history(kube_standin, ns)[-1]["status"] == "pending-upgrade" and settled()
            ),
            240,
            "remediate's helm upgrade to apply everything and wait for readiness",
        )
        helm = pids_running(operator.env["HELM_BIN"], "upgrade", ns)
        assert helm, "helm upgrade is running"
        a_worker[-1].kill9()
        assert all(pid_alive(pid) for pid in helm), "the worker's helm outlives it"
        ready_once_gone(kube_standin, helm, ns)
        a_worker.append(start_worker(a_worker[-1].log))
        code = follower.wait(timeout=420)
    finally:
        kube_standin.allow_ready(RELEASE_DEPLOYMENT, namespace=ns)
        follower.stop()
    followed = follower.output()
    assert code == 0, followed
    assert "local: repaired" in followed, followed
    history = operator.helm_history(ns)
    assert history[-1]["status"] == "deployed"
    added = history[len(history_before) :]
    assert [r["status"] for r in added] == ["failed", "deployed"], added
    replicas = operator.run(
        [
            KUBECTL,
            "--kubeconfig",
            operator.env["KUBECONFIG"],
            "-n",
            ns,
            "get",
            "deployment/temporal-frontend",
            "-o",
            "jsonpath={.spec.replicas}",
        ]
    )
    assert replicas.stdout.strip() == "1", replicas.stdout
    worker_log = a_worker[-1].log.read_text()
    fault_table.record(
        "worker-killed-remediate-helm-wait",
        outcome="done without an operator: " + line_with(followed, r"local: repaired"),
        operator_sees="worker log: "
        + log_message(worker_log, r"stopping helm pid|roll back abandoned"),
        kept=f"the hand edit repaired (replicas 1); the repair's revisions: helm "
        f"{helm_revisions(added)}",
        since=since,
    )
