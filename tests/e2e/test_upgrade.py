"""Upgrades end to end through the real `worker.py` and `starter.py` processes: chart 0.52.0
provisioned into the Kubernetes API stand-in (real helm v4, the charts from the local
stack's chart repository), then moved hop by hop; snapshots in moto, schema rows in MariaDB
(written by the stand-in's admin-tools Job), and the stand-in's write log showing that no
Deployment was written before the schema had reached its hop.

Each test takes a Kubernetes namespace of its own and puts the databases back at the end
(the `upgrade_env` fixture). The crash test lives in test_upgrade_crash.py: it must be the
only worker on the task queue.
"""

from __future__ import annotations

from kubernetes import client as k8s

from tests.e2e.upgrades import (
    SIX_HOPS,
    assert_schema_first,
    chart_pin,
    job_posts,
    manifest,
    snapshots,
    upgrade,
    writes_in,
)
from tests.helpers.manifests import cluster_meaning


def test_six_hops_from_0_52_to_1_6(
    operator, worker, upgrade_env, kube_standin, kube_clients, mariadb, local_aws
):
    namespace = "my-app-upgrade"
    declare = upgrade_env(namespace)
    since = len(kube_standin.writes)
    env_dir = declare("1.6.0")

    plan = upgrade(operator, env_dir, "--plan")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "Plan: 6 hops to chart 1.6.0" in plan.stdout
    assert snapshots(local_aws) == [], "a plan changes nothing"

    # The drift check sees the cluster behind its declaration, and leaves it to `upgrade`.
    drift = operator.starter(
        "drift", "local", "--environments-dir", str(env_dir), "--policy", "remediate"
    )
    assert drift.returncode == 4, drift.stdout + drift.stderr
    assert (
        "Temporal server: the frontend reports 1.25.2, the declared chart temporal 1.6.0 "
        "deploys 1.31.2" in drift.stdout
    )
    assert "python starter.py upgrade local (schema first, then the chart)" in drift.stdout
    assert "chart temporal-0.52.0, declared temporal-1.6.0: move it with" in drift.stdout
    assert len(operator.helm_history(namespace)) == 1, "remediate must not move the chart"

    proc = upgrade(operator, env_dir, "--by", "e2e")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)
    assert "upgrade-local done: 6 hop(s), now chart 1.6.0, server 1.31.2" in proc.stdout

    # Six snapshots in moto, one per hop, named after the environment and the hop.
    taken = snapshots(local_aws)
    assert len(taken) == 6 and all(s.startswith("local-before-temporal-") for s in taken)
    for name in taken:
        assert name in proc.stdout, "the summary names every snapshot"
    # The schema rows at the 1.31.2 level.
    assert (mariadb.schema_version("temporal"), mariadb.schema_version("temporal_visibility")) == (
        "1.19",
        "1.14",
    )
    # One helm revision per hop, each the hop's chart.
    history = operator.helm_history(namespace)
    assert [(h["revision"], h["chart"]) for h in history] == [
        (1, "temporal-0.52.0"),
        *((n, f"temporal-{c}") for n, c in enumerate(SIX_HOPS, start=2)),
    ]
    assert history[-1]["status"] == "deployed"
    # No Deployment ran a release before the schema was at its level; one Job per hop, gone.
    writes = writes_in(kube_standin, namespace, since)
    assert assert_schema_first(writes, ("1.14", "1.6")) == [
        "1.26.2",
        "1.27.2",
        "1.28.1",
        "1.29.1",
        "1.30.3",
        "1.31.2",
    ]
    assert len(job_posts(writes)) == 6
    # Each hop's Job runs the admin-tools image its chart's values.yaml pins (read here from
    # the chart files), never a tag built from the server version (every container of it:
    # one per store below the hop, then `done`).
    assert [
        set(w["images"]) for w in writes if w["method"] == "POST" and w["path"].endswith("/jobs")
    ] == [{chart_pin(chart, "admintools")} for chart in SIX_HOPS]
    jobs = k8s.BatchV1Api(kube_clients.api_client("standin")).list_namespaced_job(namespace)
    assert jobs.items == [], "every schema Job is deleted once verified"
    # The values mean the same across the 0.74 -> 1.x layout change.
    old, new = manifest(operator, namespace, 6), manifest(operator, namespace, 7)
    assert cluster_meaning(new) == cluster_meaning(old)

    again = upgrade(operator, env_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do" in again.stdout
    assert len(operator.helm_history(namespace)) == 7 and len(snapshots(local_aws)) == 6


def test_a_failing_schema_job_waits_with_its_log_tail_and_no_deployment_is_touched(
    operator, worker, upgrade_env, kube_standin, mariadb
):
    namespace = "my-app-upgrade-fail"
    declare = upgrade_env(namespace)
    since = len(kube_standin.writes)
    env_dir = declare("0.55.0")
    kube_standin.schema_jobs(
        "fail", "Error: schema update failed: Error 1071 (42000): Specified key was too long"
    )
    try:
        proc = upgrade(operator, env_dir)
    finally:
        kube_standin.schema_jobs("run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "SchemaUpdateFailed" in proc.stdout
    assert "Error 1071 (42000): Specified key was too long" in proc.stdout, "the log tail"
    assert "the Deployments still run 1.25.2" in proc.stdout
    assert "python starter.py retry local --upgrade" in proc.stdout
    progress = operator.progress("upgrade-local")
    assert progress["state"] == "waiting for operator" and progress["hop"] == 1
    writes = writes_in(kube_standin, namespace, since)
    assert not [w for w in writes if "/deployments" in w["path"]], "no Deployment touched"
    assert mariadb.schema_version("temporal_visibility") == "1.6"
    assert [h["chart"] for h in operator.helm_history(namespace)] == ["temporal-0.52.0"]

    aborted = operator.starter("abort", "local", "--upgrade", "--by", "e2e")
    assert aborted.returncode == 1, aborted.stdout + aborted.stderr
    assert "upgrade of local aborted" in aborted.stderr
