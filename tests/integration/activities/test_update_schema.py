"""update_schema against the Kubernetes API stand-in, its admin-tools Job behaviour and the
TLS MariaDB: the Job reaches the database only with what the cluster gives it (the DB
Secret's keys, the CA bundle ConfigMap, published here by the real steps), and the step
trusts the database, not the Job.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from kubernetes import client as k8s
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.check_database import DatabasePreflight
from activities.ensure_ca_bundle import CaBundlePublisher
from activities.ensure_db_secret import DbSecretPublisher
from activities.update_schema import UpdateSchema, build_job, job_name
from adapters.clients import AwsClients, KubeClients
from adapters.errors import ErrorType
from contracts.ensure_ca_bundle import EnsureCaBundleInput
from contracts.ensure_db_secret import EnsureDbSecretInput
from contracts.update_schema import UpdateSchemaInput, UpdateSchemaResult
from declared_state.models import Environment, Image
from declared_state.upgrade_path import Hop
from local_stack.mariadb import MariaDB
from tests.helpers import attempt, in_namespace

HOP = Hop(
    number=1,
    from_server="1.25.2",
    from_chart="0.52.0",
    chart="0.55.0",
    server="1.26.2",
    default_schema="1.14",
    visibility_schema="1.7",
)
HOP_2 = HOP.model_copy(
    update={
        "number": 2,
        "from_server": "1.26.2",
        "chart": "0.63.0",
        "server": "1.27.2",
        "default_schema": "1.16",
        "visibility_schema": "1.9",
    }
)


@pytest.fixture
def switch(kube_standin) -> Iterator:
    try:
        yield kube_standin.schema_jobs
    finally:
        kube_standin.schema_jobs("run")


@pytest.fixture
def env(local_env: Environment, aws_clients: AwsClients, kube_clients: KubeClients) -> Environment:
    """A namespace of its own with the CA bundle ConfigMap and the DB Secret, published by
    the real steps (the Job gets nothing else)."""
    env = in_namespace(local_env, f"schema-{uuid.uuid4().hex[:10]}")
    ActivityEnvironment().run(
        CaBundlePublisher(aws_clients, kube_clients).ensure_ca_bundle,
        EnsureCaBundleInput(environment=env),
    )
    ActivityEnvironment().run(
        DbSecretPublisher(aws_clients, kube_clients).ensure_db_secret,
        EnsureDbSecretInput(environment=env),
    )
    return env


@pytest.fixture
def step(aws_clients: AwsClients, kube_clients: KubeClients) -> UpdateSchema:
    return UpdateSchema(aws_clients, kube_clients, DatabasePreflight(aws_clients, kube_clients))


def execution(activity_id: str = "1", **timeouts: timedelta) -> ActivityEnvironment:
    """An activity execution of a workflow run: `activity_id` tells executions apart (an
    operator's retry is a new one, a retry after a crash the same)."""
    return attempt(
        timeouts.get("start_to_close_timeout", timedelta(seconds=60)),
        workflow_id="upgrade-local",
        workflow_run_id="run-1",
        activity_id=activity_id,
    )


def run(step: UpdateSchema, env: Environment, hop: Hop = HOP, **kw) -> UpdateSchemaResult:
    activity_env = execution(**kw)
    return activity_env.run(step.update_schema, UpdateSchemaInput(environment=env, hop=hop))


def job_posts(kube_standin, env: Environment) -> list[dict]:
    path = f"/apis/batch/v1/namespaces/{env.kubernetes.namespace}/jobs"
    return [w for w in kube_standin.writes if w["method"] == "POST" and w["path"].startswith(path)]


def batch(kube_clients: KubeClients, env: Environment) -> k8s.BatchV1Api:
    return k8s.BatchV1Api(kube_clients.api_client(env.kubernetes.context))


def history(mariadb: MariaDB, database: str) -> list[tuple[str, str]]:
    with mariadb.admin_connect(database) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT old_version, new_version FROM schema_update_history ORDER BY update_time"
        )
        return [(str(a), str(b)) for a, b in cur.fetchall()]


def test_the_job_moves_both_databases_and_is_deleted(
    step, env, restore_db, kube_standin, kube_clients
):
    result = run(step, env)
    assert result.action == "updated" and result.changed
    assert (result.visibility_store.before, result.visibility_store.after) == ("1.6", "1.7")
    assert restore_db.schema_version("temporal_visibility") == "1.7"
    assert restore_db.schema_version("temporal") == "1.14"
    # The tool recorded the update where Temporal keeps its history; the main store was at
    # the target already: no container ran for it.
    assert history(restore_db, "temporal_visibility") == [("1.6", "1.7")]
    assert history(restore_db, "temporal") == []
    (post,) = job_posts(kube_standin, env)
    assert post["images"] == ["temporalio/admin-tools:1.26.2"] * 2
    jobs = batch(kube_clients, env).list_namespaced_job(env.kubernetes.namespace).items
    assert jobs == [], "the Job is deleted once the databases are verified"
    pods = k8s.CoreV1Api(kube_clients.api_client("standin")).list_namespaced_pod(
        env.kubernetes.namespace
    )
    assert pods.items == [], "its pods go with it"

    again = run(step, env, activity_id="2")
    assert (again.action, again.changed) == ("unchanged", False)
    assert len(job_posts(kube_standin, env)) == 1, "at the target already: no second Job"


def test_a_failing_job_waits_with_its_log_tail_and_an_operator_retry_replaces_it(
    step, env, restore_db, kube_standin, kube_clients, switch
):
    switch("fail", "Error: schema update failed: Error 1061 (42000): Duplicate key name 'x'")
    with pytest.raises(ApplicationError) as info:
        run(step, env)
    err = info.value
    assert (err.type, err.non_retryable) == ("SchemaUpdateFailed", True)
    assert "in container update-visibility-store (exit 1)" in err.message
    assert "Duplicate key name 'x'" in err.message
    assert "the Deployments still run 1.25.2" in err.message
    assert restore_db.schema_version("temporal_visibility") == "1.6", "nothing was written"
    assert restore_db.password not in err.message
    failed = batch(kube_clients, env).read_namespaced_job(
        job_name(env, HOP), env.kubernetes.namespace
    )
    assert failed.status.failed == 1, "the failed Job stays for inspection"

    # The operator retries: a new execution replaces the failed Job with a new one.
    result = run(step, env, activity_id="2")
    assert result.action == "updated"
    assert restore_db.schema_version("temporal_visibility") == "1.7"
    assert len(job_posts(kube_standin, env)) == 2


def test_a_retry_after_a_crash_waits_for_the_same_job(step, env, restore_db, kube_standin, switch):
    """The first attempt's time runs out while the Job runs (as when the worker dies): the
    next attempt of the same execution finds the Job and waits for it; no second Job."""
    switch("hang")
    with pytest.raises(ApplicationError) as info:
        run(step, env, start_to_close_timeout=timedelta(seconds=3))
    assert (info.value.type, info.value.non_retryable) == ("SchemaJobRunning", False)
    assert restore_db.schema_version("temporal_visibility") == "1.6"
    switch("run")
    result = run(step, env, start_to_close_timeout=timedelta(seconds=30))
    assert result.action == "updated"
    assert len(job_posts(kube_standin, env)) == 1


def test_the_database_is_the_truth_not_the_job(step, env, restore_db, kube_clients):
    """A Job of this execution that completes without moving the databases (here one that
    only echoes) fails the step: the databases decide."""
    job = build_job(env, HOP, "upgrade-local/run-1/1")
    job.spec.template.spec.init_containers = []
    batch(kube_clients, env).create_namespaced_job(env.kubernetes.namespace, job)
    with pytest.raises(ApplicationError) as info:
        run(step, env)
    assert info.value.type == "SchemaUpdateFailed"
    assert "completed, but the databases say otherwise" in info.value.message
    assert "temporal_visibility 1.6" in info.value.message


def test_a_running_job_of_another_execution_is_waited_for_never_replaced(
    step, env, restore_db, kube_standin, kube_clients, switch
):
    """A schema update is never killed half-way: a Job some earlier execution left running
    is waited for, and its result verified, instead of being replaced."""
    switch("hang")
    batch(kube_clients, env).create_namespaced_job(
        env.kubernetes.namespace, build_job(env, HOP, "upgrade-local/run-0/7")
    )
    done: list[UpdateSchemaResult] = []
    waiting = threading.Thread(target=lambda: done.append(run(step, env)))
    waiting.start()
    time.sleep(2)
    assert not done, "it waits while the Job runs"
    switch("run")
    waiting.join(timeout=60)
    assert done and done[0].action == "updated"
    assert done[0].visibility_store.before is None, "the Job was not this execution's"
    assert len(job_posts(kube_standin, env)) == 1, "no second Job"
    assert restore_db.schema_version("temporal_visibility") == "1.7"


def test_later_hops_move_the_main_store_too(step, env, restore_db, kube_standin):
    run(step, env)
    result = run(step, env, hop=HOP_2, activity_id="2")
    # Chart 0.63.0 pins admin-tools 1.27.2-tctl-1.18.2-cli-1.3.0 (its values.yaml); a tag
    # built from the server version (1.27.2) is not what the chart runs.
    assert (
        job_posts(kube_standin, env)[-1]["images"]
        == ["temporalio/admin-tools:1.27.2-tctl-1.18.2-cli-1.3.0"] * 3
    )
    assert (result.default_store.before, result.default_store.after) == ("1.14", "1.16")
    assert (
        restore_db.schema_version("temporal"),
        restore_db.schema_version("temporal_visibility"),
    ) == (
        "1.16",
        "1.9",
    )


def test_a_job_image_the_registry_lacks_is_reported_as_image_pull_back_off_at_once(
    step, env, restore_db
):
    """The attempt may run a day (start_to_close): it ends because the pod is in
    ImagePullBackOff, not because time ran out."""
    nope = "temporalio/admin-tools:1.26.2-nope"
    images = env.images.resolve(env.chart).model_copy(
        update={"admin_tools": Image(repository="temporalio/admin-tools", tag="1.26.2-nope")}
    )
    hop = HOP.model_copy(update={"images": images})
    with pytest.raises(ApplicationError) as info:
        run(step, env, hop=hop, start_to_close_timeout=timedelta(days=1))
    assert info.value.type == ErrorType.IMAGE_PULL_BACKOFF and info.value.non_retryable
    assert f"cannot pull {nope}: ImagePullBackOff" in info.value.message
    assert f'Back-off pulling image "{nope}"' in info.value.message
    assert restore_db.schema_version("temporal_visibility") == "1.6", "the schema is untouched"


def test_only_a_store_below_the_hop_is_updated(step, env, restore_db, kube_standin, kube_clients):
    """Visibility ahead of the hop (1.13 > 1.9), the main store behind (1.14 < 1.16): the real
    tool fails `-v 1.9` on a 1.13 database (start version must be less than end version), so
    the Job runs update-schema for the main store alone."""
    restore_db.set_schema_version("temporal_visibility", "1.13")
    result = run(step, env, hop=HOP_2)
    assert result.action == "updated"
    assert (result.default_store.before, result.default_store.after) == ("1.14", "1.16")
    assert (result.visibility_store.before, result.visibility_store.after) == ("1.13", "1.13")
    assert restore_db.schema_version("temporal") == "1.16"
    assert restore_db.schema_version("temporal_visibility") == "1.13"
    assert history(restore_db, "temporal") == [("1.14", "1.15"), ("1.15", "1.16")]
    assert history(restore_db, "temporal_visibility") == []
    (post,) = job_posts(kube_standin, env)
    # chart 0.63.0 pins admin-tools 1.27.2-tctl-1.18.2-cli-1.3.0
    assert post["images"] == ["temporalio/admin-tools:1.27.2-tctl-1.18.2-cli-1.3.0"] * 2, (
        "one update container"
    )
