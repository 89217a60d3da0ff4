from __future__ import annotations

import socket
from pathlib import Path

import pymysql
import pytest

from local_stack import mariadb as mariadb_mod
from local_stack.mariadb import INSTALL_HINT, MariaDB, MariaDBNotInstalled
from local_stack.tls import write_ca


def test_localhost_resolves_to_loopback(db: MariaDB) -> None:
    # Host-name verification is only meaningful if the certificate's name reaches us.
    assert db.host == "localhost"
    assert {a[4][0] for a in socket.getaddrinfo(db.host, db.port, socket.AF_INET)} == {"127.0.0.1"}


def test_tls_connect_with_right_name_and_ca(db: MariaDB) -> None:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        row = cur.fetchone()
        assert row is not None and row[1].startswith("TLS")
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone() == ("temporal_app@%",)


def test_wrong_ca_fails_verification(db: MariaDB, tmp_path: Path) -> None:
    other_ca = write_ca(tmp_path / "other-ca.pem", "some other CA")
    with pytest.raises(pymysql.err.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        db.connect(ca_path=other_ca)


def test_ip_address_fails_host_name_verification(db: MariaDB) -> None:
    with pytest.raises(pymysql.err.OperationalError, match="IP address mismatch"):
        db.connect(host="127.0.0.1")
    # Same address without identity checking works: the failure above is the name alone.
    db.connect(host="127.0.0.1", verify_identity=False).close()


def test_plaintext_refused_by_require_secure_transport(db: MariaDB) -> None:
    with pytest.raises(pymysql.err.OperationalError) as refused:
        db.connect(tls=False)
    assert refused.value.args[0] == 1045  # MariaDB reports insecure transport this way
    admin = db.admin_connect()
    try:
        # Prove it is the server-wide setting, not the credentials, that refused it.
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL require_secure_transport=OFF")
        db.connect(tls=False).close()
    finally:
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL require_secure_transport=ON")
        admin.close()
    with pytest.raises(pymysql.err.OperationalError):
        db.connect(tls=False)


def test_only_loopback_listener(db: MariaDB) -> None:
    with db.admin_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@bind_address, @@require_secure_transport, @@port")
        assert cur.fetchone() == ("127.0.0.1", 1, db.port)


def _app_versions(db: MariaDB) -> dict[str, str]:
    found = {}
    for name in ("temporal", "temporal_visibility"):
        with db.connect(database=name) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT curr_version, min_compatible_version FROM schema_version "
                "WHERE version_partition=0 AND db_name=%s",
                (name,),
            )
            row = cur.fetchone()
            assert row is not None
            found[name] = row[0]
    return found


def test_default_schema_versions_for_server_1_25(db: MariaDB) -> None:
    assert _app_versions(db) == {"temporal": "1.14", "temporal_visibility": "1.6"}


def test_set_schema_version(db: MariaDB) -> None:
    db.set_schema_version("temporal", "1.12")
    assert _app_versions(db)["temporal"] == "1.12"
    assert db.schema_version("temporal") == "1.12"


def test_drop_table_and_database(db: MariaDB) -> None:
    db.drop_schema_tables("temporal_visibility")
    assert db.schema_version("temporal_visibility") is None
    with db.connect(database="temporal_visibility") as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == ()
    db.drop_database("temporal")
    assert db.schema_version("temporal") is None
    with pytest.raises(pymysql.err.OperationalError, match="temporal"):
        db.connect(database="temporal")
    db.reset()
    assert _app_versions(db) == {"temporal": "1.14", "temporal_visibility": "1.6"}


def test_missing_mariadb_error_tells_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mariadb_mod.shutil, "which", lambda *_a, **_k: None)
    with pytest.raises(MariaDBNotInstalled) as err:
        mariadb_mod.start_mariadb(Path("/nonexistent"))
    assert str(err.value) == INSTALL_HINT
    assert "apt-get install mariadb-server" in INSTALL_HINT
    assert "scripts/setup.sh" in INSTALL_HINT
