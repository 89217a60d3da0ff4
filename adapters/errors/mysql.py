"""PyMySQL errors -> ErrorType: by the socket/TLS error underneath, by MySQL error code, and
by OpenSSL verify code for a refused server certificate.

PyMySQL raises `pymysql.err.MySQLError` subclasses whose `args` are (code, server text).
When the network or TLS fails it raises OperationalError 2003 (connecting) or 2013 (lost
while reading) and keeps the error underneath: at connect time in `original_exception`,
while reading only as the implicit `__context__`. That error says more than the code
(wrong CA, wrong name, refused, silent), so it is looked up first, in `MYSQL_CAUSES`, whose
rows are tried in order because the `ssl` and `socket` errors are all `OSError`s; then the
code in `MYSQL_CODES`; anything else (too many connections, server shutting down) is
`OTHER_CODE`, retryable.

The classes of the table:
- DatabaseTlsFailed (permanent): the certificate does not verify against the CA bundle
  or not for the name, or the server offers no TLS (or only TLS < 1.2);
- DatabaseAuthFailed (permanent): wrong password, or missing grants;
- DatabaseUnreachable (retryable): DNS, refused, silent, connection lost, and the codes
  nobody listed.

Secrets: the server's text can echo what the client sent, the password included, so
messages are built from the templates below and name where the password lives
(`MySqlTarget.password_ref`), never its value; the one row that quotes the server's text
(`OTHER_CODE`) redacts the password from it.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pymysql
from pymysql.constants import CR, ER
from temporalio.exceptions import ApplicationError

from adapters.errors import ErrorType, activity_error


@dataclass(frozen=True)
class MySqlTarget:
    """What a message about one store's connection may name."""

    host: str
    port: int
    user: str
    database: str
    store: str
    """"default store" / "visibility store"."""
    password_ref: str
    """Where the password lives, e.g. "Secrets Manager secret 'x', key 'password'"."""
    password: str = field(repr=False)
    """Only to redact it from the server's text."""
    tls_server_name: str
    tls_server_name_from: str
    """The environment key the name comes from (database.tls_server_name or rds.endpoint)."""
    ca_bundle: str
    """Where the CA bundle comes from, e.g. "s3://bucket/global-bundle.pem"."""
    region: str
    connect_timeout: float
    read_timeout: float


class MySqlRow(NamedTuple):
    error_type: ErrorType
    message: str
    """`str.format` template over `MySqlTarget`'s fields (but the password) and: {where}
    (host:port), {code}, {phase} (connecting / reading), {doing} (connecting to / reading
    schema_version from), {server_text} (redacted), {os_error} (class: strerror),
    {ssl_reason} and {verify_reason} (from `TLS_VERIFY_CODES`)."""


_CANNOT_REACH = MySqlRow(ErrorType.DATABASE_UNREACHABLE, "cannot reach {where} ({os_error})")

MYSQL_CAUSES: tuple[tuple[type[BaseException], MySqlRow], ...] = (
    (
        ssl.SSLCertVerificationError,
        MySqlRow(ErrorType.DATABASE_TLS_FAILED, "TLS to {where} failed: {verify_reason}"),
    ),
    # The server hung up mid-handshake (restarting, overloaded): not a TLS verdict.
    (ssl.SSLEOFError, _CANNOT_REACH),
    (ssl.SSLZeroReturnError, _CANNOT_REACH),
    (
        ssl.SSLError,
        MySqlRow(
            ErrorType.DATABASE_TLS_FAILED,
            "TLS to {where} failed during the handshake ({ssl_reason}); the server must offer "
            "TLS 1.2 or newer",
        ),
    ),
    (
        socket.gaierror,
        MySqlRow(
            ErrorType.DATABASE_UNREACHABLE,
            "cannot resolve {host!r} (DNS); check the network path from the worker to RDS",
        ),
    ),
    (
        TimeoutError,
        MySqlRow(
            ErrorType.DATABASE_UNREACHABLE,
            "{where} did not answer within {connect_timeout:g}s/{read_timeout:g}s; check the "
            "security group and the network path from the worker to RDS",
        ),
    ),
    (
        ConnectionRefusedError,
        MySqlRow(
            ErrorType.DATABASE_UNREACHABLE,
            "{where} refused the connection; is the instance listening on port {port}?",
        ),
    ),
    (OSError, _CANNOT_REACH),
)

_SERVER_GONE = MySqlRow(
    ErrorType.DATABASE_UNREACHABLE,
    "{where} closed the connection while {phase} (MySQL client error {code}); the server may "
    "be restarting",
)

MYSQL_CODES: dict[int, MySqlRow] = {
    ER.ACCESS_DENIED_ERROR: MySqlRow(  # 1045
        ErrorType.DATABASE_AUTH_FAILED,
        "MySQL at {where} refused user {user!r} for the {store} (database {database!r}, "
        "error 1045 access denied): the password in {password_ref} is not this user's "
        "password; fix the secret or reset the user's password",
    ),
    ER.DBACCESS_DENIED_ERROR: MySqlRow(  # 1044
        ErrorType.DATABASE_AUTH_FAILED,
        "MySQL at {where}: user {user!r} may not use database {database!r} (error 1044); "
        "grant it with GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%' (create the "
        "database first if it does not exist)",
    ),
    ER.TABLEACCESS_DENIED_ERROR: MySqlRow(  # 1142
        ErrorType.DATABASE_AUTH_FAILED,
        "MySQL at {where}: user {user!r} may not read {database}.schema_version (error 1142); "
        "grant it privileges on `{database}`.*",
    ),
    CR.CR_SSL_CONNECTION_ERROR: MySqlRow(  # 2026
        ErrorType.DATABASE_TLS_FAILED,
        "MySQL at {where} does not offer TLS; the cluster connects with TLS only",
    ),
    CR.CR_SERVER_GONE_ERROR: _SERVER_GONE,  # 2006
    CR.CR_SERVER_LOST: _SERVER_GONE,  # 2013
}
OTHER_CODE = MySqlRow(
    ErrorType.DATABASE_UNREACHABLE,
    "MySQL error {code} {doing} {database!r} at {where} ({server_text})",
)
"""Too many connections, server shutting down and the like: worth retrying."""

_UNTRUSTED = (
    "certificate verify failed: the server certificate is not signed by a CA in the bundle "
    "{ca_bundle} ({verify_message}); use the RDS CA bundle for {region} (global-bundle.pem)"
)
_HOST_MISMATCH = (
    "host name mismatch: the server certificate is not valid for {tls_server_name!r} (from "
    "{tls_server_name_from}); set database.tls_server_name to a name the certificate carries "
    "(for RDS: the instance endpoint)"
)
_EXPIRED = (
    "certificate verify failed: {verify_message}; rotate the instance's CA certificate "
    "(aws rds modify-db-instance --ca-certificate-identifier ...)"
)

TLS_VERIFY_CODES: dict[int, str] = {
    2: _UNTRUSTED,  # unable to get issuer certificate
    9: _EXPIRED,  # not yet valid
    10: _EXPIRED,  # expired
    18: _UNTRUSTED,  # self-signed
    19: _UNTRUSTED,  # self-signed in chain
    20: _UNTRUSTED,  # unable to get local issuer certificate
    21: _UNTRUSTED,  # unable to verify the first certificate
    62: _HOST_MISMATCH,
    64: _HOST_MISMATCH,  # IP address mismatch
}
OTHER_VERIFY_CODE = "certificate verify failed: {verify_message} (OpenSSL code {verify_code})"


def mysql_code(exc: pymysql.err.MySQLError) -> int | None:
    """The MySQL (1xxx) or client (2xxx) error code, if PyMySQL gave one."""
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, int) else None


def mysql_error(
    exc: pymysql.err.MySQLError, target: MySqlTarget, *, connecting: bool
) -> ApplicationError:
    """The ApplicationError for `exc`, raised while connecting to or reading from `target`."""
    cause = getattr(exc, "original_exception", None) or exc.__context__
    code = mysql_code(exc)
    row = next((row for cls, row in MYSQL_CAUSES if isinstance(cause, cls)), None)
    if row is None:
        row = MYSQL_CODES.get(code or 0, OTHER_CODE)
    fields: dict[str, Any] = {
        name: getattr(target, name) for name in target.__dataclass_fields__ if name != "password"
    }
    fields.update(
        where=f"{target.host}:{target.port}",
        code=code,
        phase="connecting" if connecting else "reading",
        doing="connecting to" if connecting else "reading schema_version from",
        server_text=_redact(_server_text(exc), target.password),
        os_error=_os_error(cause),
        ssl_reason=getattr(cause, "reason", None) or "SSL error",
        verify_reason="",
    )
    if isinstance(cause, ssl.SSLCertVerificationError):
        template = TLS_VERIFY_CODES.get(cause.verify_code, OTHER_VERIFY_CODE)
        fields["verify_reason"] = template.format(
            verify_message=cause.verify_message, verify_code=cause.verify_code, **fields
        )
    return activity_error(row.message.format(**fields), row.error_type)


def _server_text(exc: pymysql.err.MySQLError) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else type(exc).__name__


def _os_error(cause: BaseException | None) -> str:
    strerror = getattr(cause, "strerror", None)
    return f"{type(cause).__name__}{': ' + strerror if strerror else ''}"


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text
