"""The MySQL error tables, row by row, with exceptions shaped as PyMySQL raises them.

The real-server paths (wrong password, wrong CA, wrong name, refused, silent) are covered
by tests/integration/activities/test_check_database.py against TLS MariaDB; here every row is, with
the expectations written out, not read from the tables, so a wrong row fails.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import replace

import pymysql
import pytest

from adapters.errors import ErrorType
from adapters.errors.mysql import (
    MYSQL_CAUSES,
    MYSQL_CODES,
    TLS_VERIFY_CODES,
    MySqlTarget,
    mysql_error,
)

TLS, AUTH, UNREACHABLE = (
    ErrorType.DATABASE_TLS_FAILED,
    ErrorType.DATABASE_AUTH_FAILED,
    ErrorType.DATABASE_UNREACHABLE,
)
PASSWORD = "s3cret-pw-123"
TARGET = MySqlTarget(
    host="db.example.test",
    port=3306,
    user="temporal_app",
    database="temporal",
    store="default store",
    password_ref="Secrets Manager secret 'temporal/db', key 'password'",
    password=PASSWORD,
    tls_server_name="db.example.test",
    tls_server_name_from="rds.endpoint",
    ca_bundle="s3://bucket/global-bundle.pem",
    region="eu-west-1",
    connect_timeout=5,
    read_timeout=10,
)

# code -> (type, retryable, words the message must carry)
CODES = {
    1045: (AUTH, False, "error 1045 access denied): the password in Secrets Manager secret"),
    1044: (AUTH, False, "GRANT ALL PRIVILEGES ON `temporal`.* TO 'temporal_app'@'%'"),
    1142: (AUTH, False, "may not read temporal.schema_version (error 1142)"),
    2026: (TLS, False, "does not offer TLS; the cluster connects with TLS only"),
    2006: (UNREACHABLE, True, "closed the connection while connecting (MySQL client error 2006)"),
    2013: (UNREACHABLE, True, "closed the connection while connecting (MySQL client error 2013)"),
}
UNLISTED_CODES = [1040, 1053, 1205]  # too many connections, shutdown, lock wait timeout


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_code, error.verify_message = code, message
    return error


# the error PyMySQL wraps -> (type, retryable, words the message must carry)
CAUSES = [
    (_verify_error(62, "Hostname mismatch"), TLS, False, "host name mismatch"),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), UNREACHABLE, True, "SSLEOFError"),
    (ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"), UNREACHABLE, True, "cannot"),
    (ssl.SSLError(1, "[SSL: UNSUPPORTED_PROTOCOL]"), TLS, False, "TLS 1.2 or newer"),
    (socket.gaierror(-2, "Name or service not known"), UNREACHABLE, True, "(DNS)"),
    (TimeoutError("timed out"), UNREACHABLE, True, "did not answer within 5s/10s"),
    (ConnectionRefusedError(111, "Connection refused"), UNREACHABLE, True, "refused the conn"),
    (OSError(113, "No route to host"), UNREACHABLE, True, "(OSError: No route to host)"),
]


def _wrapped(cause: BaseException) -> pymysql.err.OperationalError:
    """As PyMySQL raises it at connect time: 2003, the cause in `original_exception`."""
    exc = pymysql.err.OperationalError(2003, f"Can't connect to MySQL server ({cause})")
    exc.original_exception = cause  # type: ignore[attr-defined]
    return exc


def test_every_row_is_expected_here() -> None:
    assert set(MYSQL_CODES) == set(CODES)
    assert {cls for cls, _ in MYSQL_CAUSES} == {type(cause) for cause, *_ in CAUSES}


@pytest.mark.parametrize("code", CODES)
def test_code_maps_to_its_type(code: int) -> None:
    error_type, retryable, words = CODES[code]
    exc = pymysql.err.OperationalError(code, f"server says {PASSWORD}")

    error = mysql_error(exc, TARGET, connecting=True)

    assert (error.type, error.non_retryable) == (error_type, not retryable)
    assert words in error.message
    assert PASSWORD not in error.message


@pytest.mark.parametrize("code", UNLISTED_CODES)
def test_other_codes_are_retryable_and_redact_the_password(code: int) -> None:
    exc = pymysql.err.OperationalError(code, f"Access with password '{PASSWORD}' hiccup")

    error = mysql_error(exc, TARGET, connecting=False)

    assert (error.type, error.non_retryable) == (UNREACHABLE, False)
    assert error.message == (
        f"MySQL error {code} reading schema_version from 'temporal' at db.example.test:3306 "
        "(Access with password '***' hiccup)"
    )


@pytest.mark.parametrize(("cause", "error_type", "retryable", "words"), CAUSES, ids=repr)
def test_wrapped_cause_maps_to_its_type(
    cause: BaseException, error_type: ErrorType, retryable: bool, words: str
) -> None:
    error = mysql_error(_wrapped(cause), TARGET, connecting=True)

    assert (error.type, error.non_retryable) == (error_type, not retryable)
    assert words in error.message


def test_a_cause_seen_only_as_context_while_reading_counts_too() -> None:
    # PyMySQL raises 2013 while reading from within its `except OSError` (a read timeout).
    try:
        try:
            raise TimeoutError("timed out")
        except TimeoutError as timeout:
            raise pymysql.err.OperationalError(2013, f"Lost connection ({timeout})")  # noqa: B904
    except pymysql.err.OperationalError as exc:
        error = mysql_error(exc, TARGET, connecting=False)

    assert (error.type, error.non_retryable) == (UNREACHABLE, False)
    assert "did not answer within" in error.message


# OpenSSL verify code -> words the reason must carry
VERIFY_CODES = {
    2: "not signed by a CA in the bundle s3://bucket/global-bundle.pem",
    18: "not signed by a CA in the bundle",
    19: "not signed by a CA in the bundle",
    20: "use the RDS CA bundle for eu-west-1 (global-bundle.pem)",
    21: "not signed by a CA in the bundle",
    9: "rotate the instance's CA certificate",
    10: "rotate the instance's CA certificate",
    62: "not valid for 'db.example.test' (from rds.endpoint)",
    64: "host name mismatch",
}


def test_every_verify_code_is_expected_here() -> None:
    assert set(TLS_VERIFY_CODES) == set(VERIFY_CODES)


@pytest.mark.parametrize("code", [*VERIFY_CODES, 26])
def test_verify_code_gives_its_reason(code: int) -> None:
    target = replace(TARGET, tls_server_name_from="rds.endpoint")
    error = mysql_error(_wrapped(_verify_error(code, "some verdict")), target, connecting=True)

    assert (error.type, error.non_retryable) == (TLS, True)
    assert error.message.startswith("TLS to db.example.test:3306 failed: ")
    expected = VERIFY_CODES.get(code, "certificate verify failed: some verdict (OpenSSL code 26)")
    assert expected in error.message
