"""MariaDB over TLS on a free loopback port, prepared like Temporal's RDS MySQL database."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from local_stack.processes import LOOPBACK, ManagedProcess, free_port, log_tail
from local_stack.tls import TlsFiles, write_tls_files

MAIN_DB = "temporal"
VISIBILITY_DB = "temporal_visibility"
APP_USER = "temporal_app"
# What Temporal server 1.25 expects (see shared notes: MySQL schema versions).
DEFAULT_SCHEMA_VERSIONS: Mapping[str, str] = {MAIN_DB: "1.14", VISIBILITY_DB: "1.6"}

INSTALL_HINT = (
    "MariaDB is not installed (mariadbd / mariadb-install-db not found). "
    "Install it with `apt-get install mariadb-server` or run `scripts/setup.sh`."
)

_SCHEMA_TABLES = (
    """CREATE TABLE IF NOT EXISTS schema_version (
        version_partition INT NOT NULL,
        db_name VARCHAR(255) NOT NULL,
        creation_time DATETIME(6),
        curr_version VARCHAR(64),
        min_compatible_version VARCHAR(64),
        PRIMARY KEY (version_partition, db_name))""",
    """CREATE TABLE IF NOT EXISTS schema_update_history (
        version_partition INT NOT NULL,
        year INT NOT NULL,
        month INT NOT NULL,
        update_time DATETIME(6) NOT NULL,
        description VARCHAR(255),
        manifest_md5 VARCHAR(64),
        new_version VARCHAR(64),
        old_version VARCHAR(64),
        PRIMARY KEY (version_partition, year, month, update_time))""",
)


class MariaDBNotInstalled(RuntimeError):
    pass


def find_binaries() -> tuple[str, str]:
    """Paths of (mariadbd, mariadb-install-db); raises MariaDBNotInstalled with a fix."""
    mariadbd = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/bin")
    install_db = shutil.which("mariadb-install-db") or shutil.which(
        "mariadb-install-db", path="/usr/bin:/usr/sbin"
    )
    if not mariadbd or not install_db:
        raise MariaDBNotInstalled(INSTALL_HINT)
    return mariadbd, install_db


# Keep the throwaway server small: 2 cores, several servers side by side.
_LEAN = ("--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M", "--performance-schema=OFF")


@dataclass
class MariaDB:
    """A running (or recorded) TLS-only MariaDB and how to reach it."""

    host: str  # DNS name in the server certificate; resolves to 127.0.0.1
    port: int
    socket: Path
    datadir: Path
    ca_path: Path
    user: str
    password: str = field(repr=False)
    process: ManagedProcess | None = field(default=None, repr=False)
    databases: tuple[str, ...] = (MAIN_DB, VISIBILITY_DB)

    # --- connections -------------------------------------------------------------------
    def admin_connect(self, database: str | None = None) -> pymysql.connections.Connection:
        """root over the Unix socket (exempt from require_secure_transport)."""
        return pymysql.connect(
            unix_socket=str(self.socket),
            user="root",
            password="",
            database=database,
            autocommit=True,
            connect_timeout=5,
        )

    def connect(
        self,
        *,
        host: str | None = None,
        ca_path: Path | str | None = None,
        database: str | None = MAIN_DB,
        verify_identity: bool = True,
        tls: bool = True,
    ) -> pymysql.connections.Connection:
        """The application user over TCP+TLS, verifying the chain and host name by default."""
        return pymysql.connect(
            host=host or self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            ssl_disabled=not tls,
            ssl_ca=str(ca_path or self.ca_path) if tls else None,
            ssl_verify_cert=True if tls else None,
            ssl_verify_identity=verify_identity if tls else None,
            autocommit=True,
            connect_timeout=5,
        )

    # --- schema_version control for tests --------------------------------------------
    def set_schema_version(
        self, database: str, version: str, min_compatible: str | None = None
    ) -> None:
        """Create/overwrite Temporal's schema_version row for `database` (creating the table)."""
        with self.admin_connect(database) as conn, conn.cursor() as cur:
            for ddl in _SCHEMA_TABLES:
                cur.execute(ddl)
            cur.execute(
                "INSERT INTO schema_version (version_partition, db_name, creation_time, "
                "curr_version, min_compatible_version) VALUES (0, %s, NOW(6), %s, %s) "
                "ON DUPLICATE KEY UPDATE creation_time=NOW(6), curr_version=VALUES(curr_version), "
                "min_compatible_version=VALUES(min_compatible_version)",
                (database, version, min_compatible or version),
            )

    def schema_version(self, database: str) -> str | None:
        """curr_version, or None when the database, table or row is missing."""
        try:
            with self.admin_connect(database) as conn, conn.cursor() as cur:
                cur.execute(
                    "SELECT curr_version FROM schema_version "
                    "WHERE version_partition=0 AND db_name=%s",
                    (database,),
                )
                row = cur.fetchone()
        except pymysql.err.MySQLError:
            return None
        return None if row is None else str(row[0])

    def drop_schema_tables(self, database: str) -> None:
        with self.admin_connect(database) as conn, conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS schema_version, schema_update_history")

    def drop_database(self, database: str) -> None:
        with self.admin_connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")

    def create_database(self, database: str, schema_version: str | None = None) -> None:
        with self.admin_connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@'%%'", (self.user,))
        if schema_version is not None:
            self.set_schema_version(database, schema_version)

    def reset(self, schema_versions: Mapping[str, str] = DEFAULT_SCHEMA_VERSIONS) -> None:
        """Back to the initial state: both databases present at the given versions."""
        with self.admin_connect() as conn, conn.cursor() as cur:
            cur.execute(
                "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s",
                (self.user, self.password),
            )
        for db in self.databases:
            self.create_database(db)
            self.drop_schema_tables(db)
            if db in schema_versions:
                self.set_schema_version(db, schema_versions[db])

    # --- lifecycle -------------------------------------------------------------------
    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def state(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "socket": str(self.socket),
            "datadir": str(self.datadir),
            "ca_bundle": str(self.ca_path),
            "user": self.user,
            "password": self.password,
            "databases": list(self.databases),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> MariaDB:
        """A handle on a server recorded in a state file (not owned: stop() does nothing)."""
        return cls(
            host=state["host"],
            port=int(state["port"]),
            socket=Path(state["socket"]),
            datadir=Path(state["datadir"]),
            ca_path=Path(state["ca_bundle"]),
            user=state["user"],
            password=state["password"],
            databases=tuple(state["databases"]),
        )


def _socket_ready(sock: Path) -> bool:
    try:
        pymysql.connect(unix_socket=str(sock), user="root", connect_timeout=1).close()
        return True
    except pymysql.err.MySQLError:
        return False


def start_mariadb(
    workdir: Path,
    *,
    tls: TlsFiles | None = None,
    port: int | None = None,
    schema_versions: Mapping[str, str] = DEFAULT_SCHEMA_VERSIONS,
    password: str | None = None,
    detached: bool = False,
) -> MariaDB:
    """Initialise a fresh data dir under `workdir` and start a TLS-only mariadbd."""
    mariadbd, install_db = find_binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    datadir = workdir / "data"
    if datadir.exists():
        shutil.rmtree(datadir)
    tls = tls or write_tls_files(workdir / "tls")
    log_path = workdir / "mariadbd.log"
    # Its own tmpdir: the bootstrap's temporary tables otherwise live in the shared /tmp,
    # where one vanished under three installs at once ("Could not remove temporary table
    # '/tmp/#sql-temptable-...', error: 2", then "Unknown table 'mysql.tmp_user_sys'").
    tmpdir = workdir / "tmp"
    tmpdir.mkdir(exist_ok=True)
    init = subprocess.run(
        [
            install_db,
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            f"--tmpdir={tmpdir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *_LEAN,
        ],
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed:\n{init.stdout}\n{init.stderr}")
    # Unix socket paths are limited to ~107 bytes; keep the socket short.
    sock = workdir / "mysqld.sock"
    if len(str(sock)) > 100:
        sock = Path(tempfile.mkdtemp(prefix="mdb-")) / "mysqld.sock"
    port = port or free_port()
    argv = [
        mariadbd,
        "--no-defaults",
        "--user=root",
        f"--datadir={datadir}",
        f"--tmpdir={tmpdir}",
        f"--socket={sock}",
        f"--port={port}",
        f"--bind-address={LOOPBACK}",
        f"--pid-file={workdir / 'mariadbd.pid'}",
        "--skip-name-resolve",
        f"--ssl-ca={tls.ca_path}",
        f"--ssl-cert={tls.cert_path}",
        f"--ssl-key={tls.key_path}",
        "--require-secure-transport=ON",
        *_LEAN,
    ]
    proc = ManagedProcess(
        "mariadb",
        argv,
        ready=lambda _p: _socket_ready(sock),
        ready_timeout=30,
        log_path=log_path,
        detached=detached,
    )
    proc.start()
    db = MariaDB(
        host=tls.server_name,
        port=port,
        socket=sock,
        datadir=datadir,
        ca_path=tls.ca_path,
        user=APP_USER,
        password=password or secrets.token_urlsafe(18),
        process=proc,
    )
    try:
        db.reset(schema_versions)
    except BaseException as exc:
        db.stop()
        raise RuntimeError(f"preparing MariaDB failed: {exc}\n{log_tail(log_path)}") from exc
    return db


@contextlib.contextmanager
def mariadb_server(workdir: Path | None = None, **kwargs: Any) -> Iterator[MariaDB]:
    """Fixture-style: a fresh TLS MariaDB, stopped (by PID) on exit."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mariadb-")))
        db = start_mariadb(workdir, **kwargs)
        stack.callback(db.stop)
        yield db
