"""check_database: the read-only preflight of the RDS instance and both Temporal databases.

In order, stopping at the first problem an operator (or time) has to fix:
0. The release: a cluster that runs a server more than one minor behind the declared chart
   (or a newer minor) is refused with what to run instead (`upgrade`), before anything is
   written: servers move one minor at a time, schema first.
1. RDS: the instance exists, is `available`, runs MySQL 8, and its endpoint host and port
   are the ones the environment file declares.
2. TLS: a connection to the endpoint verifies the server certificate against exactly the CA
   bundle the cluster will mount, with host-name verification on (name: `db_tls_server_name`).
3. The databases: the DB user logs into each with that store's password and reads Temporal's
   `schema_version`; a schema older than the target server needs (or missing) is reported
   with the `temporal-sql-tool` commands that bring it up to date.

An instance in a transitional state (creating, rebooting, ...) fails the attempt with the
retryable RdsInstanceNotReady and a `next_retry_delay` suited to that state (`_WAITING`);
states RDS does not leave by itself fail for good with what the operator must do.

Nothing is written anywhere. Passwords live only in local variables and in the
`MySqlTarget` a failure is described with: errors/mysql.py builds every message about a
MySQL failure from its own templates, never from a PyMySQL exception's text unredacted,
and library exceptions are not chained.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple

import pymysql
from pymysql.constants import ER
from temporalio import activity

from activities.read_live_versions import read_live_server, refuse_more_than_one_minor
from adapters.clients import AwsClients, KubeClients
from adapters.errors import ErrorType, activity_error
from adapters.errors.aws import AWS_ERRORS, aws_error, aws_error_type
from adapters.errors.mysql import MySqlTarget, mysql_code, mysql_error
from adapters.sources import (
    describe_source,
    fetch_ca_bundle,
    parse_certificates,
    read_db_passwords,
)
from contracts.check_database import CheckDatabaseInput, CheckDatabaseResult, StoreSchema
from declared_state.models import (
    AwsSecretsManagerPasswords,
    CaBundleFromFile,
    CaBundleFromS3,
    Environment,
)
from declared_state.versions import parse_version, schema_versions_for_server


# --- RDS instance states ------------------------------------------------------------------
class _Waiting(NamedTuple):
    """A transitional state: RDS leaves it by itself, so the step is retried."""

    reason: str
    retry_in: timedelta | None
    """How long the next attempt waits instead of the retry policy's backoff (5 s doubling
    to 1 min), so a state that takes minutes is not asked about every minute and a reboot
    is noticed soon after it ends; None: the policy's backoff."""


_SHORT = timedelta(seconds=30)  # seconds to a couple of minutes
_MINUTE = timedelta(minutes=1)
_LONG = timedelta(minutes=2)  # typically 5 to 30 minutes, sometimes far longer

_WAITING: dict[str, _Waiting] = {
    "creating": _Waiting("the instance is being created", _LONG),
    "modifying": _Waiting("a modification is being applied", _LONG),
    "backing-up": _Waiting("a backup is running", _LONG),
    "rebooting": _Waiting("the instance is rebooting", _SHORT),
    "upgrading": _Waiting("the engine version is being upgraded", _LONG),
    "maintenance": _Waiting("maintenance is being applied", _LONG),
    "renaming": _Waiting("the instance is being renamed", _SHORT),
    "resetting-master-credentials": _Waiting("the master credentials are being reset", _SHORT),
    "starting": _Waiting("the instance is starting", _MINUTE),
    "storage-optimization": _Waiting("storage is being optimised", _LONG),
    "storage-initialization": _Waiting("storage is being initialised", _LONG),
    "storage-config-upgrade": _Waiting("the storage configuration is being upgraded", _LONG),
    "converting-to-vpc": _Waiting("the instance is being moved into a VPC", _LONG),
    "moving-to-vpc": _Waiting("the instance is being moved into a VPC", _LONG),
}
# configuring-enhanced-monitoring, -log-exports, ...: short reconfigurations
_WAITING_PREFIXES: dict[str, timedelta] = {"configuring-": _MINUTE}


def _waiting(status: str) -> _Waiting:
    """Why `status` is worth waiting for and how long; unfamiliar ones get the backoff."""
    if status in _WAITING:
        return _WAITING[status]
    for prefix, retry_in in _WAITING_PREFIXES.items():
        if status.startswith(prefix):
            return _Waiting(f"RDS is {status.replace('-', ' ')}", retry_in)
    return _Waiting(f"RDS reports the unfamiliar status {status!r}", None)


def _unusable_action(status: str, instance_id: str, region: str) -> str | None:
    """What an operator must do about a state RDS does not leave by itself (None: not one)."""
    ref = f"--db-instance-identifier {instance_id} --region {region}"
    events = f"aws rds describe-events --source-type db-instance --source-identifier {instance_id} --region {region}"
    if status == "stopped":
        return f"start it with `aws rds start-db-instance {ref}`"
    if status == "stopping":
        return f"it is being stopped; once stopped, start it with `aws rds start-db-instance {ref}`"
    if status in ("deleting", "delete-precheck"):
        return (
            "it is being deleted; restore it from a snapshot or point rds.instance_id at "
            "another instance"
        )
    if status == "failed":
        return f"RDS cannot recover it; see `{events}` and restore it from a backup"
    if status == "restore-error":
        return f"its restore failed; see `{events}` and restore it again"
    if status.startswith("inaccessible-encryption-credentials"):
        return (
            "RDS cannot use the instance's KMS key; re-enable the key or grant RDS access to it "
            f"(see `{events}`), then start the instance"
        )
    if status.startswith("incompatible-"):
        what = status.removeprefix("incompatible-").replace("-", " ")
        return f"RDS reports an incompatible {what}; fix it as `{events}` describes"
    if status == "storage-full":
        return (
            "it ran out of storage; increase it with "
            f"`aws rds modify-db-instance {ref} --allocated-storage <GiB> --apply-immediately`"
        )
    if status == "insufficient-capacity":
        return (
            "RDS has no capacity for its instance class; start it again later or change the class "
            f"with `aws rds modify-db-instance {ref} --db-instance-class <class> --apply-immediately`"
        )
    return None


# --- TLS ------------------------------------------------------------------------------------
class _ServerNameContext(ssl.SSLContext):
    """Verifies the server certificate against one fixed name, whichever host was dialled.

    PyMySQL passes the host it connected to as `server_hostname`; the cluster verifies
    `database.tls_server_name` (default: the endpoint), so this preflight must as well.
    """

    server_name: str

    def wrap_socket(  # type: ignore[override]
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=self.server_name,
            session=session,
        )


def _tls_context(bundle: bytes, server_name: str, origin: str) -> ssl.SSLContext:
    """Trust only `bundle`; require a valid chain and `server_name` on the certificate."""
    ctx = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname on
    ctx.server_name = server_name
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cadata=bundle.decode("ascii", errors="replace"))
    except ssl.SSLError as exc:
        raise activity_error(
            f"CA bundle {origin} cannot be loaded as trust anchors ({exc.reason or exc})",
            ErrorType.CA_BUNDLE_INVALID,
        ) from None
    return ctx


# --- MySQL ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Store:
    """One of the two Temporal stores as the preflight sees it."""

    label: str  # "default store" / "visibility store"
    database: str
    required: str
    schema_dir: str
    password_ref: str  # where the password lives, for messages (never the value)
    password: str = field(repr=False)


@dataclass(frozen=True)
class _Reading:
    """curr_version, or why there is none: database/table/row missing."""

    version: str | None = None
    missing: str | None = None  # "database" | "table" | "row"


def _version_tuple(text: str, width: int = 3) -> tuple[int, ...]:
    parts = parse_version(text)
    return parts + (0,) * (width - len(parts))


class DatabasePreflight:
    """Read-only checks of the RDS instance and the Temporal databases."""

    def __init__(
        self,
        aws: AwsClients,
        kube: KubeClients,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
    ):
        self._aws = aws
        self._kube = kube
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout

    @activity.defn(name="check_database")
    def check_database(self, input: CheckDatabaseInput) -> CheckDatabaseResult:
        env = input.environment
        log = activity.logger
        refuse_more_than_one_minor(read_live_server(self._kube, env), env)
        instance = self._describe_instance(env)
        status = str(instance.get("DBInstanceStatus") or "unknown")
        engine_version = str(instance.get("EngineVersion") or "")
        self._check_status(env, status)
        self._check_engine(env, instance)
        self._check_endpoint(env, instance)
        cert_id = instance.get("CACertificateIdentifier")
        valid_till = (instance.get("CertificateDetails") or {}).get("ValidTill")
        log.info(
            "RDS instance %s is %s, MySQL %s at %s:%s (CA %s)",
            env.rds.instance_id,
            status,
            engine_version,
            env.rds.endpoint,
            env.rds.port,
            cert_id,
        )

        schemas = self.read_schemas(env)
        stores, readings = schemas.stores, schemas.readings
        certificates = schemas.certificates
        for store, reading in zip(stores, readings, strict=True):
            log.info(
                "%s %s: schema %s (needs %s)",
                store.label,
                store.database,
                reading.version or f"{reading.missing} missing",
                store.required,
            )
        self._check_schemas(env, schemas)

        found = [
            StoreSchema(database=s.database, found=r.version or "", required=s.required)
            for s, r in zip(stores, readings, strict=True)
        ]
        expiry = f", CA {cert_id} valid till {valid_till:%Y-%m-%d}" if valid_till else ""
        summary = (
            f"RDS {env.rds.instance_id} {status} (MySQL {engine_version}){expiry}; "
            f"TLS verified as {env.db_tls_server_name}; schema {found[0].database} "
            f"{found[0].found} (needs {found[0].required}), {found[1].database} "
            f"{found[1].found} (needs {found[1].required})"
        )
        return CheckDatabaseResult(
            instance_id=env.rds.instance_id,
            instance_status=status,
            engine_version=engine_version,
            endpoint=env.rds.endpoint,
            port=env.rds.port,
            ca_certificate_identifier=cert_id,
            ca_certificate_valid_till=valid_till,
            ca_bundle_certificates=certificates,
            tls_server_name=env.db_tls_server_name,
            default_store=found[0],
            visibility_store=found[1],
            changed=False,
            summary=summary,
            dry_run=input.dry_run,
        )

    # --- shared with the upgrade's steps ---------------------------------------------------
    def read_schema_versions(self, env: Environment) -> tuple[str | None, str | None]:
        """curr_version of the default and the visibility store (None: no schema there),
        read over TLS with exactly what the cluster gets, like the preflight."""
        default, visibility = self.read_schemas(env).readings
        return default.version, visibility.version

    # --- RDS ------------------------------------------------------------------------------
    def _describe_instance(self, env: Environment) -> dict[str, Any]:
        rds = env.rds
        what = f"RDS instance {rds.instance_id!r} in {rds.region}"
        missing = activity_error(
            f"{what} does not exist: create it, or fix rds.instance_id / rds.region "
            f"in the {env.name} environment",
            ErrorType.RDS_INSTANCE_UNUSABLE,
        )
        try:
            response = self._aws.client("rds", rds.region).describe_db_instances(
                DBInstanceIdentifier=rds.instance_id
            )
        except AWS_ERRORS as exc:
            # AccessDenied and the like: the environment and AWS disagree.
            refused = ErrorType.CONFIGURATION_MISMATCH
            if aws_error_type(exc, refused) is ErrorType.RDS_INSTANCE_UNUSABLE:
                raise missing from None
            raise aws_error(f"describing {what}", exc, refused) from None
        instances = response.get("DBInstances") or []
        if not instances:
            raise missing
        return dict(instances[0])

    def _check_status(self, env: Environment, status: str) -> None:
        rds = env.rds
        if status == "available":
            return
        action = _unusable_action(status, rds.instance_id, rds.region)
        if action is not None:
            raise activity_error(
                f"RDS instance {rds.instance_id!r} is {status}: {action}",
                ErrorType.RDS_INSTANCE_UNUSABLE,
            )
        waiting = _waiting(status)
        next_check = (
            f" (next check in {waiting.retry_in.total_seconds():g} s)" if waiting.retry_in else ""
        )
        raise activity_error(
            f"RDS instance {rds.instance_id!r} is {status} ({waiting.reason}); waiting for it to "
            f"be available{next_check}",
            ErrorType.RDS_INSTANCE_NOT_READY,
            next_retry_delay=waiting.retry_in,
        )

    def _check_engine(self, env: Environment, instance: dict[str, Any]) -> None:
        engine = str(instance.get("Engine") or "")
        version = str(instance.get("EngineVersion") or "")
        if engine != "mysql" or not version.startswith("8."):
            raise activity_error(
                f"RDS instance {env.rds.instance_id!r} runs {engine or '?'} {version or '?'}; "
                "Temporal's mysql8 plugin needs engine mysql, version 8.x: point rds.instance_id "
                f"at a MySQL 8 instance in the {env.name} environment",
                ErrorType.CONFIGURATION_MISMATCH,
            )

    def _check_endpoint(self, env: Environment, instance: dict[str, Any]) -> None:
        endpoint = instance.get("Endpoint") or {}
        host = str(endpoint.get("Address") or "")
        port = endpoint.get("Port")
        rds = env.rds
        if not host or port is None:
            raise activity_error(
                f"RDS instance {rds.instance_id!r} reports no endpoint yet; waiting for it",
                ErrorType.RDS_INSTANCE_NOT_READY,
            )
        problems = []
        if host.rstrip(".").lower() != rds.endpoint.rstrip(".").lower():
            problems.append(f"its endpoint host is {host!r} but rds.endpoint is {rds.endpoint!r}")
        if int(port) != rds.port:
            problems.append(f"its port is {port} but rds.port is {rds.port}")
        if problems:
            raise activity_error(
                f"RDS instance {rds.instance_id!r}: {'; '.join(problems)} in the {env.name} "
                "environment; set them to what RDS reports",
                ErrorType.CONFIGURATION_MISMATCH,
            )

    # --- MySQL ----------------------------------------------------------------------------
    def read_schemas(self, env: Environment, server: str | None = None) -> SchemaReadings:
        """Temporal's schema version in both databases, read over TLS verified against the
        CA bundle the cluster mounts, with what Temporal server `server` needs (default: the
        one the declared chart deploys). Shared by this preflight and the drift check's
        Temporal check (check_temporal.py), which asks for the running server's needs."""
        origin = describe_source(env.ca_bundle.source)
        bundle = fetch_ca_bundle(env.ca_bundle.source, self._aws)
        certificates = parse_certificates(bundle, origin)
        ctx = _tls_context(bundle, env.db_tls_server_name, origin)

        passwords = read_db_passwords(env, self._aws, self._kube)
        server = server or env.chart.target_server_version
        required = schema_versions_for_server(server) or env.schema_versions
        stores = (
            _Store(
                "default store",
                env.database.default_store,
                required.default_store,
                "./schema/mysql/v8/temporal/versioned",
                self._password_ref(env, visibility=False),
                passwords.default_store,
            ),
            _Store(
                "visibility store",
                env.database.visibility_store,
                required.visibility_store,
                "./schema/mysql/v8/visibility/versioned",
                self._password_ref(env, visibility=True),
                passwords.visibility_store,
            ),
        )
        readings = tuple(self._read_schema_version(env, store, ctx) for store in stores)
        return SchemaReadings(server, len(certificates), stores, readings)

    def _password_ref(self, env: Environment, *, visibility: bool) -> str:
        source = env.database.password_source
        if isinstance(source, AwsSecretsManagerPasswords):
            key = source.visibility_store_key if visibility else source.default_store_key
            return f"Secrets Manager secret {source.secret_id!r}, key {key!r}"
        secret = env.database.kubernetes_secret
        key = secret.visibility_store_key if visibility else secret.default_store_key
        return f"Kubernetes Secret {env.kubernetes.namespace}/{secret.name}, key {key!r}"

    def _read_schema_version(
        self, env: Environment, store: _Store, ctx: ssl.SSLContext
    ) -> _Reading:
        try:
            conn = pymysql.connect(
                host=env.rds.endpoint,
                port=env.rds.port,
                user=env.database.user,
                password=store.password,
                database=store.database,
                ssl=ctx,
                connect_timeout=self._connect_timeout,
                read_timeout=self._read_timeout,
                write_timeout=self._read_timeout,
                autocommit=True,
            )
        except pymysql.err.MySQLError as exc:
            if mysql_code(exc) == ER.BAD_DB_ERROR:
                return _Reading(missing="database")
            raise mysql_error(exc, self._target(env, store), connecting=True) from None
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT curr_version FROM schema_version "
                    "WHERE version_partition=0 AND db_name=%s",
                    (store.database,),
                )
                row = cur.fetchone()
        except pymysql.err.MySQLError as exc:
            if mysql_code(exc) == ER.NO_SUCH_TABLE:
                return _Reading(missing="table")
            raise mysql_error(exc, self._target(env, store), connecting=False) from None
        finally:
            conn.close()
        if row is None or not row[0]:
            return _Reading(missing="row")
        return _Reading(version=str(row[0]))

    def _target(self, env: Environment, store: _Store) -> MySqlTarget:
        return MySqlTarget(
            host=env.rds.endpoint,
            port=env.rds.port,
            user=env.database.user,
            database=store.database,
            store=store.label,
            password_ref=store.password_ref,
            password=store.password,
            tls_server_name=env.db_tls_server_name,
            tls_server_name_from=(
                "database.tls_server_name" if env.database.tls_server_name else "rds.endpoint"
            ),
            ca_bundle=describe_source(env.ca_bundle.source),
            region=env.rds.region,
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
        )

    # --- schema ---------------------------------------------------------------------------
    def _check_schemas(self, env: Environment, schemas: SchemaReadings) -> None:
        found = schema_problems(env, schemas)
        if not found:
            return
        prepare = _ca_bundle_preparation(env)
        commands = [line for problem in found for line in problem.commands]
        server = schemas.server
        message = (
            f"Schema not ready for Temporal server {server}: "
            f"{'; '.join(p.problem for p in found)}.\n"
            f"Run from a checkout of temporalio/temporal at v{server} (it ships ./schema):\n"
            + "\n".join(f"  {line}" for line in [*prepare, *commands])
        )
        raise activity_error(message, ErrorType.SCHEMA_OUTDATED)


@dataclass(frozen=True)
class SchemaReadings:
    """Both stores as read, and the server version their requirements are for."""

    server: str
    certificates: int
    stores: tuple[_Store, ...]
    readings: tuple[_Reading, ...]


@dataclass(frozen=True)
class SchemaProblem:
    """A database whose schema the server cannot run on, and the commands that fix it."""

    database: str
    found: str | None
    required: str
    problem: str
    commands: tuple[str, ...]
    """`temporal-sql-tool` command lines (the password named by where it lives, never its
    value); none when the version cannot even be read."""


def schema_problems(env: Environment, schemas: SchemaReadings) -> list[SchemaProblem]:
    """Each store whose schema is missing, older than `schemas.server` needs, or unreadable."""
    problems: list[SchemaProblem] = []
    for store, reading in zip(schemas.stores, schemas.readings, strict=True):
        steps: list[str]
        if reading.missing == "database":
            text = f"database {store.database!r} does not exist"
            steps = [
                "create-database",
                "setup-schema -v 0.0",
                f"update-schema -d {store.schema_dir}",
            ]
        elif reading.missing is not None:
            text = (
                f"database {store.database!r} has no Temporal schema (schema_version "
                f"{'table' if reading.missing == 'table' else 'row'} missing)"
            )
            steps = ["setup-schema -v 0.0", f"update-schema -d {store.schema_dir}"]
        else:
            assert reading.version is not None
            try:
                outdated = _version_tuple(reading.version) < _version_tuple(store.required)
            except ValueError:
                problems.append(
                    SchemaProblem(
                        store.database,
                        reading.version,
                        store.required,
                        f"database {store.database!r} has an unreadable schema version "
                        f"{reading.version!r}; inspect its schema_version and "
                        "schema_update_history tables",
                        (),
                    )
                )
                continue
            if not outdated:
                continue
            text = (
                f"database {store.database!r} is at schema {reading.version}, "
                f"older than the {store.required} server {schemas.server} needs"
            )
            steps = [f"update-schema -d {store.schema_dir}"]
        base = _sql_tool_base(env, store.database)
        commands = [f"export SQL_PASSWORD=<{store.label} password: {store.password_ref}>"]
        commands.extend(f"{base} {step}" for step in steps)
        problems.append(
            SchemaProblem(store.database, reading.version, store.required, text, tuple(commands))
        )
    return problems


def _sql_tool_base(env: Environment, database: str) -> str:
    parts = [
        "temporal-sql-tool --plugin mysql8",
        f"--ep {env.rds.endpoint} -p {env.rds.port} -u {env.database.user}",
        f"--db {database} --tls --tls-ca-file {_ca_bundle_path(env)}",
    ]
    if env.db_tls_server_name != env.rds.endpoint:
        parts.append(f"--tls-server-name {env.db_tls_server_name}")
    return " ".join(parts)


def _ca_bundle_path(env: Environment) -> str:
    source = env.ca_bundle.source
    if isinstance(source, CaBundleFromFile):
        return source.path  # absolute: the loader resolves it against the environments folder
    return f"./{env.ca_bundle.key}"


def _ca_bundle_preparation(env: Environment) -> list[str]:
    source = env.ca_bundle.source
    if isinstance(source, CaBundleFromS3):
        region = f" --region {source.region}" if source.region else ""
        return [f"aws s3 cp s3://{source.bucket}/{source.key} ./{env.ca_bundle.key}{region}"]
    return []
