"""The stand-in's job controller with the real kubernetes client: Jobs run pods, a schema Job
reaches MariaDB only with what its pod is given, logs are served, the switch fails it."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from local_stack.kube_api_standin import KubeApiStandIn
from local_stack.mariadb import MariaDB

NS = "jobs"


@pytest.fixture
def db(mariadb: MariaDB):
    try:
        yield mariadb
    finally:
        mariadb.reset()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    api = client.CoreV1Api(api_client)
    api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    return api


@pytest.fixture
def batch(api_client: client.ApiClient, core) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


def publish(core: client.CoreV1Api, db: MariaDB, password: str | None = None) -> None:
    """The CA bundle and the password, as the bootstrap publishes them."""
    core.create_namespaced_config_map(
        NS,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="rds-ca-certs"),
            data={"global-bundle.pem": db.ca_path.read_text()},
        ),
    )
    secret = base64.b64encode((password or db.password).encode()).decode()
    core.create_namespaced_secret(
        NS,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="temporal-db-secret"), data={"password": secret}
        ),
    )


def schema_job(
    db: MariaDB,
    name: str = "schema",
    target: str | None = "1.7",
    image: str = "temporalio/admin-tools:1.26.2",
) -> dict[str, Any]:
    env = [
        {"name": "SQL_PLUGIN", "value": "mysql8"},
        {"name": "SQL_HOST", "value": db.host},
        {"name": "SQL_PORT", "value": str(db.port)},
        {"name": "SQL_DATABASE", "value": "temporal_visibility"},
        {"name": "SQL_USER", "value": db.user},
        {
            "name": "SQL_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "temporal-db-secret", "key": "password"}},
        },
        {"name": "SQL_TLS", "value": "true"},
        {"name": "SQL_TLS_CA_FILE", "value": "/etc/temporal/global-bundle.pem"},
    ]
    update = {
        "name": "update",
        "image": image,
        "command": ["sh", "-c"],
        "args": [
            "temporal-sql-tool update-schema --schema-dir "
            "/etc/temporal/schema/mysql/v8/visibility/versioned"
            + (f" -v {target}" if target is not None else "")
        ],
        "env": env,
        "volumeMounts": [
            {
                "name": "ca",
                "mountPath": "/etc/temporal/global-bundle.pem",
                "subPath": "global-bundle.pem",
            }
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "initContainers": [update],
                    "containers": [{"name": "done", "image": "busybox", "command": ["true"]}],
                    "volumes": [{"name": "ca", "configMap": {"name": "rds-ca-certs"}}],
                }
            }
        },
    }


def finished(batch: client.BatchV1Api, name: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = batch.read_namespaced_job(name, NS)
        for condition in (job.status and job.status.conditions) or []:
            if condition.type in ("Complete", "Failed") and condition.status == "True":
                return condition.type
        time.sleep(0.1)
    return "still running"


def the_pod(core: client.CoreV1Api, job: str) -> client.V1Pod:
    (pod,) = core.list_namespaced_pod(NS, label_selector=f"job-name={job}").items
    return pod


def test_a_schema_job_moves_the_database_and_logs_it(standin: KubeApiStandIn, core, batch, db):
    publish(core, db)
    batch.create_namespaced_job(NS, schema_job(db))
    assert finished(batch, "schema") == "Complete"
    assert db.schema_version("temporal_visibility") == "1.7"
    pod = the_pod(core, "schema")
    assert pod.status.phase == "Succeeded"
    log = core.read_namespaced_pod_log(pod.metadata.name, NS, container="update")
    assert "Schema updated from 1.6 to 1.7" in log
    with pytest.raises(ApiException) as info:  # two containers: the client must say which
        core.read_namespaced_pod_log(pod.metadata.name, NS)
    assert info.value.status == 400
    (sql,) = [w for w in standin.writes if w["method"] == "SQL"]
    assert sql["schema"] == {"database": "temporal_visibility", "from": "1.6", "to": "1.7"}


def history(db: MariaDB, database: str) -> list[tuple[str, str]]:
    with db.admin_connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT old_version, new_version FROM schema_update_history")
        return sorted((str(a), str(b)) for a, b in cur.fetchall())


def tool_log(core: client.CoreV1Api, job: str) -> str:
    pod = the_pod(core, job)
    return core.read_namespaced_pod_log(pod.metadata.name, NS, container="update")


def test_a_database_newer_than_the_target_fails_as_the_real_tool_does(standin, core, batch, db):
    """temporal-sql-tool's sortAndFilterVersions: start > end is an error, exit 1 (v1.25-v1.31)."""
    publish(core, db)
    db.set_schema_version("temporal_visibility", "1.9")
    batch.create_namespaced_job(NS, schema_job(db, target="1.7"))
    assert finished(batch, "schema") == "Failed"
    log = tool_log(core, "schema")
    assert "Unable to update SQL schema." in log
    assert "start version '1.9' must be less than end version '1.7'" in log
    status = the_pod(core, "schema").status.init_container_statuses[0].state.terminated
    assert status.exit_code == 1
    assert db.schema_version("temporal_visibility") == "1.9"


def test_a_database_at_the_target_is_a_no_op(standin, core, batch, db):
    publish(core, db)
    db.set_schema_version("temporal_visibility", "1.7")
    batch.create_namespaced_job(NS, schema_job(db, target="v1.7"))  # the tool drops the v
    assert finished(batch, "schema") == "Complete"
    assert "Start version '1.7' is equal to end version '1.7'" in tool_log(core, "schema")
    assert db.schema_version("temporal_visibility") == "1.7"
    assert history(db, "temporal_visibility") == []
    assert [w for w in standin.writes if w["method"] == "SQL"] == []


def test_without_v_the_target_is_the_newest_directory_of_the_image(standin, core, batch, db):
    """The 1.27.2 image's visibility/versioned ends at v1.9 (temporalio/temporal at v1.27.2);
    every step is one history row, as the tool writes them."""
    publish(core, db)
    job = schema_job(db, target=None, image="temporalio/admin-tools:1.27.2-tctl-1.18.2-cli-1.3.0")
    batch.create_namespaced_job(NS, job)
    assert finished(batch, "schema") == "Complete"
    assert db.schema_version("temporal_visibility") == "1.9"
    assert history(db, "temporal_visibility") == [("1.6", "1.7"), ("1.7", "1.8"), ("1.8", "1.9")]
    # A database newer than the image's newest directory, without -v: nothing to apply.
    db.set_schema_version("temporal_visibility", "1.13")
    batch.create_namespaced_job(NS, schema_job(db, name="again", target=None))
    assert finished(batch, "again") == "Complete"
    assert db.schema_version("temporal_visibility") == "1.13"


def test_a_target_the_image_does_not_have_fails(standin, core, batch, db):
    publish(core, db)
    batch.create_namespaced_job(NS, schema_job(db, target="1.9"))  # 1.26.2 ends at v1.7
    assert finished(batch, "schema") == "Failed"
    assert "end version '1.9' specified but not found" in tool_log(core, "schema")
    assert db.schema_version("temporal_visibility") == "1.6"


def test_a_missing_secret_keeps_the_pod_waiting_like_a_kubelet(standin, core, batch, db):
    batch.create_namespaced_job(NS, schema_job(db))
    assert finished(batch, "schema", timeout=1.5) == "still running"
    waiting = the_pod(core, "schema").status.init_container_statuses[0].state.waiting
    assert waiting.reason == "CreateContainerConfigError"
    assert 'secret "temporal-db-secret" not found' in waiting.message
    assert db.schema_version("temporal_visibility") == "1.6"


def test_a_wrong_password_fails_the_job_with_the_error_in_its_log(standin, core, batch, db):
    publish(core, db, password="not-the-password")
    batch.create_namespaced_job(NS, schema_job(db))
    assert finished(batch, "schema") == "Failed"
    pod = the_pod(core, "schema")
    log = core.read_namespaced_pod_log(pod.metadata.name, NS, container="update", tail_lines=1)
    assert "Access denied" in log and "not-the-password" not in log
    assert db.schema_version("temporal_visibility") == "1.6"


def test_the_switch_fails_or_holds_the_next_schema_job(standin, core, batch, db):
    publish(core, db)
    standin.schema_jobs("fail", "Error: boom")
    batch.create_namespaced_job(NS, schema_job(db, name="first"))
    assert finished(batch, "first") == "Failed"
    pod = the_pod(core, "first")
    assert pod.status.phase == "Failed"
    assert core.read_namespaced_pod_log(pod.metadata.name, NS, container="update").endswith(
        "Error: boom\n"
    )
    standin.schema_jobs("hang")
    batch.create_namespaced_job(NS, schema_job(db, name="second"))
    assert finished(batch, "second", timeout=1.5) == "still running"
    standin.schema_jobs("run")
    assert finished(batch, "second") == "Complete"
    assert db.schema_version("temporal_visibility") == "1.7"


def test_deleting_a_job_orphans_its_pods_unless_told_otherwise(standin, core, batch, db):
    publish(core, db)
    for name in ("orphaning", "background"):
        batch.create_namespaced_job(NS, schema_job(db, name=name))
        assert finished(batch, name) == "Complete"
    batch.delete_namespaced_job("orphaning", NS)  # batch/v1's default: orphan
    batch.delete_namespaced_job("background", NS, propagation_policy="Background")
    assert len(core.list_namespaced_pod(NS, label_selector="job-name=orphaning").items) == 1
    assert core.list_namespaced_pod(NS, label_selector="job-name=background").items == []
