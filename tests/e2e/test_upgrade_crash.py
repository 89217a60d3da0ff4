"""Crash recovery of an upgrade through real processes: the worker is killed with SIGKILL
while a hop's schema Job runs, and again (helm with it) while the next hop's helm upgrade
waits for readiness; each time a new worker completes the hop, with one snapshot and one
Job per hop. A module of its own: a crash test must be the only worker on the task queue.
"""

from __future__ import annotations

import contextlib
import os
import signal

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
    declare = upgrade_env(namespace)
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
        wait_for(
            lambda: any(
                h["chart"] == "temporal-0.55.0" and h["status"] == "deployed"
                for h in operator.helm_history(namespace)
            ),
            240,
            "hop 1's helm revision",
        )
        kube_standin.never_ready("temporal-history", namespace=namespace)
        # pending-upgrade is recorded before helm applies anything; the kill is meant for its
        # --wait, after every object is applied and the ones 0.63 drops are deleted (killed
        # mid-apply, helm's own rollback fails on them: "original object ... not found").
        # Waiting only reads, so helm waits once the namespace has seen no write for a while.
        settled = quiet_for(lambda: len(writes_in(kube_standin, namespace, since)), seconds=5)
        wait_for(
            lambda: (
                operator.helm_history(namespace)[-1]["status"] == "pending-upgrade" and settled()
            ),
            240,
            "hop 2's helm upgrade to apply everything and wait for readiness",
        )
        helm = pids_running(operator.env["HELM_BIN"], "upgrade", namespace)
        assert helm and len(job_posts(writes_in(kube_standin, namespace, since))) == 2
        worker.kill9()
        for pid in helm:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        kube_standin.allow_ready("temporal-history", namespace=namespace)
        worker = start_worker(worker.log)
        assert follower.wait(timeout=420) == 0, follower.output()
    finally:
        kube_standin.schema_jobs("run")
        kube_standin.allow_ready("temporal-history", namespace=namespace)
        worker.stop()
        if follower is not None:
            follower.stop()

    followed = follower.output()
    assert "upgrade-local done: 2 hop(s), now chart 0.63.0, server 1.27.2" in followed
    assert "hop 2: install_chart   done: upgraded" in followed
    assert "(recovered from pending-upgrade)" in followed, "helm was killed mid-upgrade"
    assert len(snapshots(local_aws)) == 2, "one snapshot per hop, crashes or not"
    writes = writes_in(kube_standin, namespace, since)
    assert len(job_posts(writes)) == 2, "one Job per hop, crashes or not"
    assert assert_schema_first(writes, ("1.14", "1.6"))[-1] == "1.27.2"
    assert operator.helm_history(namespace)[-1]["chart"] == "temporal-0.63.0"
