"""check_database against the real local stack: moto RDS/Secrets Manager/S3 and TLS MariaDB.

The stack fixtures are session-scoped and shared with other test modules, so every test
that changes them restores them afterwards (`restore_aws` / `restore_db`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.check_database import DatabasePreflight
from adapters.clients import AwsClients, KubeClients
from adapters.errors import ErrorType
from contracts.check_database import CheckDatabaseInput, CheckDatabaseResult
from declared_state.models import Environment
from local_stack.aws import CA_BUCKET, CA_KEY, RDS_INSTANCE_ID, SECRET_ID, LocalAws
from local_stack.mariadb import MariaDB
from local_stack.processes import LOOPBACK, free_port
from local_stack.tls import CertificateAuthority

# botocore logs raw request/response bodies (including the Secrets Manager secret) at DEBUG;
# that is the worker's logging configuration to prevent, not something the activity controls.
_THIRD_PARTY_WIRE_LOGGERS = ("botocore", "urllib3")


@pytest.fixture
def preflight(aws_clients: AwsClients, kube_clients: KubeClients) -> DatabasePreflight:
    # Kubernetes only for the release's server version (local.yaml reads the passwords from
    # Secrets Manager); the namespace has no release, so the guard lets every check run.
    return DatabasePreflight(aws_clients, kube_clients, connect_timeout=2, read_timeout=2)


@pytest.fixture(autouse=True)
def no_password_in_logs(
    caplog: pytest.LogCaptureFixture, mariadb: MariaDB
) -> Iterator[pytest.LogCaptureFixture]:
    """Every test in this module: the DB password appears in no log record we emit."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    # In teardown, caplog.records holds only teardown's records: ask for the test's.
    records = caplog.get_records("setup") + caplog.get_records("call")
    ours = [r for r in records if not r.name.startswith(_THIRD_PARTY_WIRE_LOGGERS)]
    for record in ours:
        text = record.getMessage() + (record.exc_text or "")
        assert mariadb.password not in text, f"password logged by {record.name}"


@pytest.fixture
def restore_aws(local_aws: LocalAws) -> Iterator[LocalAws]:
    """Re-seed moto (RDS instance, secret, CA object) after the test, pass or fail."""
    try:
        yield local_aws
    finally:
        local_aws.seed()


def run(preflight: DatabasePreflight, env: Environment) -> CheckDatabaseResult:
    return ActivityEnvironment().run(preflight.check_database, CheckDatabaseInput(environment=env))


def fail(preflight: DatabasePreflight, env: Environment, password: str) -> ApplicationError:
    """Run, expect an ApplicationError, and check the password is nowhere in what leaves."""
    with pytest.raises(ApplicationError) as info:
        run(preflight, env)
    err = info.value
    # What Temporal's failure converter serialises: message, details, and the cause chain
    # (__cause__, or __context__ unless suppressed).
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    assert chain == [err], f"library exception leaks into the failure: {chain[1:]!r}"
    assert password not in str(err)
    assert password not in repr(err.details)
    return err


def with_rds(env: Environment, **update: Any) -> Environment:
    return env.model_copy(update={"rds": env.rds.model_copy(update=update)})


def with_database(env: Environment, **update: Any) -> Environment:
    return env.model_copy(update={"database": env.database.model_copy(update=update)})


def point_rds_port_at(local_aws: LocalAws, port: int) -> None:
    """Recreate the RDS instance (same host) with another port; moto ignores DBPortNumber."""
    # Same in-process moto backend, other target: create_rds_instance points the endpoint.
    other = LocalAws(dataclasses.replace(local_aws.db, port=port), local_aws.endpoint_url)
    other.delete_rds_instance()
    other.create_rds_instance()
    described = local_aws.client("rds").describe_db_instances(DBInstanceIdentifier=RDS_INSTANCE_ID)
    assert described["DBInstances"][0]["Endpoint"]["Port"] == port


# --- success ------------------------------------------------------------------------------
def test_success_and_second_run_is_identical(
    preflight: DatabasePreflight, local_env: Environment, local_aws: LocalAws, mariadb: MariaDB
) -> None:
    first = run(preflight, local_env)
    second = run(preflight, local_env)

    assert first == second
    described = local_aws.client("rds").describe_db_instances(DBInstanceIdentifier=RDS_INSTANCE_ID)[
        "DBInstances"
    ][0]
    assert first.instance_id == RDS_INSTANCE_ID
    assert first.instance_status == "available"
    assert first.engine_version.startswith("8.")
    assert (first.endpoint, first.port) == (mariadb.host, mariadb.port)
    assert first.ca_certificate_identifier == described.get("CACertificateIdentifier")
    assert first.ca_certificate_valid_till == described.get("CertificateDetails", {}).get(
        "ValidTill"
    )
    assert first.ca_bundle_certificates == 1
    assert first.tls_server_name == mariadb.host
    assert (first.default_store.database, first.default_store.found) == ("temporal", "1.14")
    assert first.default_store.required == "1.14"
    assert (first.visibility_store.database, first.visibility_store.found) == (
        "temporal_visibility",
        "1.6",
    )
    assert first.visibility_store.required == "1.6"
    assert "available" in first.summary and "1.14" in first.summary
    assert mariadb.password not in first.model_dump_json()
    assert mariadb.password not in repr(first)


def test_newer_schema_is_accepted_by_numeric_comparison(
    preflight: DatabasePreflight, local_env: Environment, restore_db: MariaDB
) -> None:
    # "1.10" < "1.6" as strings; numerically it is newer and must pass.
    restore_db.set_schema_version("temporal_visibility", "1.10")
    restore_db.set_schema_version("temporal", "1.14.1")

    result = run(preflight, local_env)

    assert result.visibility_store.found == "1.10"
    assert result.default_store.found == "1.14.1"


# --- RDS states ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("creating", "being created"),
        ("modifying", "modification"),
        ("backing-up", "backup"),
        ("configuring-log-exports", "configuring log exports"),
    ],
)
def test_transitional_rds_state_is_retryable_not_ready(
    preflight: DatabasePreflight,
    local_env: Environment,
    restore_aws: LocalAws,
    mariadb: MariaDB,
    status: str,
    reason: str,
) -> None:
    restore_aws.set_rds_status(status)

    err = fail(preflight, local_env, mariadb.password)

    assert err.type == ErrorType.RDS_INSTANCE_NOT_READY
    assert not err.non_retryable
    assert status in err.message and reason in err.message
    assert "waiting for it to be available" in err.message


@pytest.mark.parametrize(
    ("status", "delay"),
    [
        ("rebooting", timedelta(seconds=30)),
        ("starting", timedelta(minutes=1)),
        ("configuring-enhanced-monitoring", timedelta(minutes=1)),
        ("creating", timedelta(minutes=2)),
        ("modifying", timedelta(minutes=2)),
        ("upgrading", timedelta(minutes=2)),
        ("some-state-rds-added-later", None),
    ],
)
def test_transitional_rds_state_sets_a_retry_delay_suited_to_it(
    preflight: DatabasePreflight,
    local_env: Environment,
    restore_aws: LocalAws,
    mariadb: MariaDB,
    status: str,
    delay: timedelta | None,
) -> None:
    restore_aws.set_rds_status(status)

    err = fail(preflight, local_env, mariadb.password)

    assert err.type == ErrorType.RDS_INSTANCE_NOT_READY
    assert not err.non_retryable
    assert err.next_retry_delay == delay
    if delay is None:  # an unfamiliar state: the retry policy's backoff
        assert "unfamiliar status" in err.message and "next check" not in err.message
    else:
        assert f"(next check in {delay.total_seconds():g} s)" in err.message


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (
            "stopped",
            "aws rds start-db-instance --db-instance-identifier temporal-local --region us-east-1",
        ),
        ("deleting", "restore it from a snapshot"),
        ("failed", "aws rds describe-events"),
        ("storage-full", "--allocated-storage"),
        ("inaccessible-encryption-credentials", "KMS key"),
        ("incompatible-parameters", "incompatible parameters"),
    ],
)
def test_unusable_rds_state_is_non_retryable_with_action(
    preflight: DatabasePreflight,
    local_env: Environment,
    restore_aws: LocalAws,
    mariadb: MariaDB,
    status: str,
    action: str,
) -> None:
    restore_aws.set_rds_status(status)

    err = fail(preflight, local_env, mariadb.password)

    assert err.type == ErrorType.RDS_INSTANCE_UNUSABLE
    assert err.non_retryable
    assert f"is {status}" in err.message
    assert action in err.message


def test_missing_rds_instance_is_unusable(
    preflight: DatabasePreflight, local_env: Environment, restore_aws: LocalAws, mariadb: MariaDB
) -> None:
    restore_aws.delete_rds_instance()

    err = fail(preflight, local_env, mariadb.password)

    assert err.type == ErrorType.RDS_INSTANCE_UNUSABLE
    assert err.non_retryable
    assert "'temporal-local' in us-east-1 does not exist" in err.message
    assert "rds.instance_id" in err.message


def test_mysql_5_engine_is_a_configuration_mismatch(
    preflight: DatabasePreflight, local_env: Environment, restore_aws: LocalAws, mariadb: MariaDB
) -> None:
    restore_aws.delete_rds_instance()
    restore_aws.client("rds").create_db_instance(
        DBInstanceIdentifier=RDS_INSTANCE_ID,
        DBInstanceClass="db.t4g.micro",
        Engine="mysql",
        EngineVersion="5.7.44",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="irrelevant-here",
        Port=mariadb.port,
    )

    err = fail(preflight, local_env, mariadb.password)

    assert err.type == ErrorType.CONFIGURATION_MISMATCH
    assert err.non_retryable
    assert "mysql 5.7.44" in err.message and "version 8.x" in err.message


# --- endpoint -----------------------------------------------------------------------------
def test_endpoint_host_mismatch_names_both_values_and_the_key(
    preflight: DatabasePreflight, local_env: Environment, mariadb: MariaDB
) -> None:
    env = with_rds(local_env, endpoint="127.0.0.1")

    err = fail(preflight, env, mariadb.password)

    assert err.type == ErrorType.CONFIGURATION_MISMATCH
    assert err.non_retryable
    assert f"endpoint host is {mariadb.host!r}" in err.message
    assert "rds.endpoint is '127.0.0.1'" in err.message
    assert "rds.port" not in err.message


def test_port_mismatch_names_both_values_and_the_key(
    preflight: DatabasePreflight, local_env: Environment, mariadb: MariaDB
) -> None:
    env = with_rds(local_env, port=1)

    err = fail(preflight, env, mariadb.password)

    assert err.type == ErrorType.CONFIGURATION_MISMATCH
    assert f"its port is {mariadb.port} but rds.port is 1" in err.message
    assert "rds.endpoint" not in err.message


# --- schema -------------------------------------------------------------------------------
def test_stale_schema_prints_the_update_command(
    preflight: DatabasePreflight, local_env: Environment, restore_db: MariaDB, mariadb: MariaDB
) -> None:
    restore_db.set_schema_version("temporal", "1.12")

    err = fail(preflight, local_env, mariadb.password)

    assert err.type == ErrorType.SCHEMA_OUTDATED
    assert err.non_retryable
    assert "'temporal' is at schema 1.12, older than the 1.14" in err.message
    assert "aws s3 cp s3://temporal-local-rds-ca/global-bundle.pem ./global-bundle.pem" in (
        err.message
    )
    assert (
        f"temporal-sql-tool --plugin mysql8 --ep {mariadb.host} -p {mariadb.port} "
        "-u temporal_app --db temporal --tls --tls-ca-file ./global-bundle.pem "
        "update-schema -d ./schema/mysql/v8/temporal/versioned"
    ) in err.message
    assert "export SQL_PASSWORD=<default store password: Secrets Manager secret" in err.message
    # The visibility store is current: nothing to run for it.
    assert "temporal_visibility" not in err.message
    assert "setup-schema" not in err.message


def test_missing_schema_table_prints_setup_and_update(
    preflight: DatabasePreflight, local_env: Environment, restore_db: MariaDB, mariadb: MariaDB
) -> None:
    restore_db.drop_schema_tables("temporal_visibility")

    err = fail(preflight, local_env, mariadb.password)

    assert err.type == ErrorType.SCHEMA_OUTDATED
    assert "'temporal_visibility' has no Temporal schema (schema_version table missing)" in (
        err.message
    )
    base = (
        f"temporal-sql-tool --plugin mysql8 --ep {mariadb.host} -p {mariadb.port} "
        "-u temporal_app --db temporal_visibility --tls --tls-ca-file ./global-bundle.pem"
    )
    assert f"{base} setup-schema -v 0.0" in err.message
    assert f"{base} update-schema -d ./schema/mysql/v8/visibility/versioned" in err.message
    assert "create-database" not in err.message


def test_missing_database_prints_create_setup_and_update(
    preflight: DatabasePreflight, local_env: Environment, restore_db: MariaDB, mariadb: MariaDB
) -> None:
    restore_db.drop_database("temporal")

    err = fail(preflight, local_env, mariadb.password)

    assert err.type == ErrorType.SCHEMA_OUTDATED
    assert "database 'temporal' does not exist" in err.message
    base = "-u temporal_app --db temporal --tls --tls-ca-file ./global-bundle.pem"
    for step in (
        "create-database",
        "setup-schema -v 0.0",
        "update-schema -d ./schema/mysql/v8/temporal/versioned",
    ):
        assert f"{base} {step}" in err.message


# --- authentication and TLS -----------------------------------------------------------------
def test_wrong_password_is_auth_failed(
    preflight: DatabasePreflight, local_env: Environment, restore_aws: LocalAws, mariadb: MariaDB
) -> None:
    wrong = "not-the-password-" + mariadb.password[:4]
    restore_aws.client("secretsmanager").put_secret_value(
        SecretId=SECRET_ID,
        SecretString=json.dumps({"password": wrong, "visibility_password": wrong}),
    )

    err = fail(preflight, local_env, mariadb.password)

    assert err.type == ErrorType.DATABASE_AUTH_FAILED
    assert err.non_retryable
    assert "error 1045" in err.message
    assert "Secrets Manager secret 'temporal/local/db', key 'password'" in err.message
    assert wrong not in err.message


def test_wrong_ca_is_tls_failed_certificate_verify(
    preflight: DatabasePreflight, local_env: Environment, restore_aws: LocalAws, mariadb: MariaDB
) -> None:
    restore_aws.client("s3").put_object(
        Bucket=CA_BUCKET, Key=CA_KEY, Body=CertificateAuthority.generate("unrelated CA").cert_pem
    )

    err = fail(preflight, local_env, mariadb.password)

    assert err.type == ErrorType.DATABASE_TLS_FAILED
    assert err.non_retryable
    assert "certificate verify failed" in err.message
    assert "not signed by a CA in the bundle s3://temporal-local-rds-ca/global-bundle.pem" in (
        err.message
    )
    assert "host name mismatch" not in err.message


@pytest.mark.parametrize("wrong_name", ["wrong.example.test", "127.0.0.1"])
def test_wrong_tls_server_name_is_tls_failed_host_name_mismatch(
    preflight: DatabasePreflight, local_env: Environment, mariadb: MariaDB, wrong_name: str
) -> None:
    # The endpoint matches RDS and the CA is right: only the name verified differs, so this
    # fails in the host-name check, not in the chain check or the endpoint comparison.
    env = with_database(local_env, tls_server_name=wrong_name)

    err = fail(preflight, env, mariadb.password)

    assert err.type == ErrorType.DATABASE_TLS_FAILED
    assert err.non_retryable
    assert f"host name mismatch: the server certificate is not valid for {wrong_name!r}" in (
        err.message
    )
    assert "database.tls_server_name" in err.message
    assert "not signed by a CA" not in err.message


def test_matching_tls_server_name_passes(
    preflight: DatabasePreflight, local_env: Environment, mariadb: MariaDB
) -> None:
    env = with_database(local_env, tls_server_name=mariadb.host)

    assert run(preflight, env).tls_server_name == mariadb.host


# --- unreachable ----------------------------------------------------------------------------
def test_refused_port_is_retryable_unreachable(
    preflight: DatabasePreflight, local_env: Environment, restore_aws: LocalAws, mariadb: MariaDB
) -> None:
    port = free_port()
    point_rds_port_at(restore_aws, port)
    env = with_rds(local_env, port=port)

    err = fail(preflight, env, mariadb.password)

    assert err.type == ErrorType.DATABASE_UNREACHABLE
    assert not err.non_retryable
    assert f"{mariadb.host}:{port} refused the connection" in err.message


def test_silent_server_times_out_as_retryable_unreachable(
    preflight: DatabasePreflight, local_env: Environment, restore_aws: LocalAws, mariadb: MariaDB
) -> None:
    # Accepts TCP (kernel backlog) but never sends the MySQL greeting.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        point_rds_port_at(restore_aws, port)
        env = with_rds(local_env, port=port)

        err = fail(preflight, env, mariadb.password)

    assert err.type == ErrorType.DATABASE_UNREACHABLE
    assert not err.non_retryable
    assert "did not answer within" in err.message


# --- secrets --------------------------------------------------------------------------------
def test_password_never_leaves_in_results_logs_or_failures(
    preflight: DatabasePreflight,
    local_env: Environment,
    local_aws: LocalAws,
    mariadb: MariaDB,
    no_password_in_logs: pytest.LogCaptureFixture,
) -> None:
    """One pass over success and every failure class with logs captured at DEBUG."""
    result = run(preflight, local_env)
    assert mariadb.password not in result.model_dump_json()

    failing_envs = [
        with_rds(local_env, port=1),
        with_database(local_env, tls_server_name="wrong.example.test"),
    ]
    for env in failing_envs:
        fail(preflight, env, mariadb.password)
    try:
        mariadb.set_schema_version("temporal", "1.12")
        fail(preflight, local_env, mariadb.password)
    finally:
        mariadb.reset()
    try:
        local_aws.client("secretsmanager").put_secret_value(
            SecretId=SECRET_ID,
            SecretString=json.dumps({"password": "wrong", "visibility_password": "wrong"}),
        )
        fail(preflight, local_env, mariadb.password)
    finally:
        local_aws.seed()

    # The activity did log (so the autouse check has something to look at).
    assert any(r.name == "temporalio.activity" for r in no_password_in_logs.records)
