"""Crash recovery of an upgrade through real processes: the worker is killed with SIGKILL
while a hop's schema Job runs, and again (helm with it) while the next hop's helm upgrade
waits for readiness; each time a new worker completes the hop, with one snapshot and one
Job per hop. Then helm is killed mid-apply of the hop that drops objects (0.55 -> 0.63),
where helm's own rollback fails: the new worker completes the hop without an operator.
A module of its own: a crash test must be the only worker on the task queue.
"""

from __future__ import annotations

import contextlib
import os
import signal

from tests.e2e.faults import release_history
from tests.e2e.upgrades import assert_schema_first, job_posts, snapshots, writes_in
from tests.helpers import pids_running, quiet_for, wait_for


def test_kill_9_during_a_schema_job_and_during_a_helm_upgrade(
    operator, start_worker, upgrade_env, kube_standin, local_aws, tmp_path
):
    """The worker dies while hop 1's schema Job runs, and again (helm with it) while hop 2's
    helm upgrade waits; each time a new worker completes the hop: one snapshot and one Job
    per hop."""
    namespace = "my-app-upgrade-crash"
    worker = start_worker()
    declare = upgrade_env(namespace, worker_killed=True)
    since = len(kube_standin.writes)
    env_dir = declare("0.63.0")
    follower = None
    try:
        kube_standin.schema_jobs("hang")
        follower = operator.starter_in_background(
            "upgrade", "local", "--environments-dir", str(env_dir), log=tmp_path / "follow.log"
        )
        wait_for(lambda: job_posts(writes_in(kube_standin, namespace, since)), 120, "hop 1's Job")
        worker.kill9()
        worker = start_worker(worker.log)
        kube_standin.schema_jobs("run")

        # Hop 2: once hop 1's release is deployed, hold helm's --wait on a Deployment, then
        # kill the worker and helm while hop 2's helm upgrade waits.
        wait_for_hop_1(kube_standin, namespace)
        kube_standin.never_ready("temporal-history", namespace=namespace)
        # pending-upgrade is recorded before helm applies anything; the kill is meant for its
        # --wait, after every object is applied and the ones 0.63 drops are deleted (killed
        # mid-apply, helm's own rollback fails on them: "original object ... not found").
        # Waiting only reads, so helm waits once the namespace has seen no write for a while.
        settled = quiet_for(lambda: len(writes_in(kube_standin, namespace, since)), seconds=5)
        wait_for(
            lambda: (
                release_history(kube_standin, namespace)[-1]["status"] == "pending-upgrade"
                and settled()
            ),
            240,
            "hop 2's helm upgrade to apply everything and wait for readiness",
        )
        helm = pids_running(operator.env["HELM_BIN"], "upgrade", namespace)
        assert helm and len(job_posts(writes_in(kube_standin, namespace, since))) == 2
        kill_9(worker, helm)
        kube_standin.allow_ready("temporal-history", namespace=namespace)
        worker = start_worker(worker.log)
        assert follower.wait(timeout=420) == 0, follower.output()
    finally:
        kube_standin.schema_jobs("run")
        kube_standin.allow_ready("temporal-history", namespace=namespace)
        stop_all(worker, follower)

    followed = follower.output()
    assert "upgrade-local done: 2 hop(s), now chart 0.63.0, server 1.27.2" in followed
    assert "hop 2: install_chart   done: upgraded" in followed
    assert "(recovered from pending-upgrade)" in followed, "helm was killed mid-upgrade"
    assert len(snapshots(local_aws)) == 2, "one snapshot per hop, crashes or not"
    writes = writes_in(kube_standin, namespace, since)
    assert len(job_posts(writes)) == 2, "one Job per hop, crashes or not"
    assert assert_schema_first(writes, ("1.14", "1.6"))[-1] == "1.27.2"
    history = operator.helm_history(namespace)
    assert history[-1]["chart"] == "temporal-0.63.0"
    # The waits above read helm's records in-process: they say what helm says.
    assert release_history(kube_standin, namespace) == [
        {"revision": r["revision"], "status": r["status"], "chart": r["chart"]} for r in history
    ]


def test_helm_killed_mid_apply_on_a_hop_that_drops_objects(
    operator, start_worker, upgrade_env, kube_standin, kube_clients, tmp_path
):
    """helm dies (with the worker) after recording hop 2's pending-upgrade and applying part
    of chart 0.63, before it deletes `temporal-admintools`, which 0.63 drops. helm's rollback
    of that revision fails on it (`original object Service ... not found`); the new worker
    recovers by upgrading from the last deployed revision's state, without an operator."""
    namespace = "my-app-upgrade-mid-apply"
    worker = start_worker()
    declare = upgrade_env(namespace, worker_killed=True)
    since = len(kube_standin.writes)
    env_dir = declare("0.63.0")
    follower = None
    history_path = f"/namespaces/{namespace}/deployments/temporal-history"
    try:
        follower = operator.starter_in_background(
            "upgrade", "local", "--environments-dir", str(env_dir), log=tmp_path / "follow.log"
        )
        wait_for_hop_1(kube_standin, namespace)
        # Hop 2's helm applies in kind order (Services before Deployments) and deletes what
        # 0.63 drops last: holding its apply of the history Deployment (a 429 whose
        # Retry-After client-go honours) is a kill mid-apply.
        kube_standin.inject_faults(history_path + "$", 429, retry_after=600, method="PATCH")
        wait_for(
            lambda: any(
                w["status"] == 429 and w["path"].split("?")[0].endswith(history_path)
                for w in writes_in(kube_standin, namespace, since)
            ),
            300,
            "hop 2's helm upgrade to reach the history Deployment",
        )
        assert operator.helm_history(namespace)[-1]["status"] == "pending-upgrade"
        helm = pids_running(operator.env["HELM_BIN"], "upgrade", namespace)
        assert helm, "helm is still applying"
        kill_9(worker, helm)
        kube_standin.clear_faults()
        assert services(kube_clients, namespace) >= {"temporal-admintools"}, "not deleted yet"
        worker = start_worker(worker.log)
        assert follower.wait(timeout=420) == 0, follower.output()
    finally:
        kube_standin.clear_faults()
        stop_all(worker, follower)

    followed = follower.output()
    assert "upgrade-local done: 2 hop(s), now chart 0.63.0, server 1.27.2" in followed
    assert "(recovered from pending-upgrade)" in followed
    history = operator.helm_history(namespace)
    assert (history[-1]["chart"], history[-1]["status"]) == ("temporal-0.63.0", "deployed")
    assert "temporal-admintools" not in services(kube_clients, namespace), "0.63 dropped it"
    writes = writes_in(kube_standin, namespace, since)
    assert len(job_posts(writes)) == 2, "one Job per hop"
    assert assert_schema_first(writes, ("1.14", "1.6"))[-1] == "1.27.2"


def services(kube_clients, namespace: str) -> set[str]:
    found = kube_clients.core_v1("standin").list_namespaced_service(namespace).items
    return {s.metadata.name for s in found}


def wait_for_hop_1(kube_standin, namespace: str) -> None:
    wait_for(
        lambda: any(
            h["chart"] == "temporal-0.55.0" and h["status"] == "deployed"
            for h in release_history(kube_standin, namespace)
        ),
        240,
        "hop 1's helm revision",
    )


def kill_9(worker, helm: list[int]) -> None:
    """SIGKILL the worker and the helm processes it started (they live in a session of
    their own)."""
    worker.kill9()
    for pid in helm:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_all(worker, follower) -> None:
    worker.stop()
    if follower is not None:
        follower.stop()
