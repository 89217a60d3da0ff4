"""The stand-in's `temporal-sql-tool update-schema`: what the admin-tools image's tool does to
the database a schema Job's container points it at, by the tool's own rules.

The rules, from temporalio/temporal `tools/sql/handler.go`, `tools/sql/main.go` and
`tools/common/schema/{handler,updatetask,version}.go` (unchanged v1.25.0-v1.31.2):

- the command is `update-schema` (alias `update`); the schema directory is `--schema-dir/-d`
  (a directory of `vX.Y` subdirectories) or `--schema-name/-s` (the image's embedded copy,
  e.g. `mysql/v8/visibility`); neither, or both, is a config error;
- `--version/-v` is optional: without it the target is the newest version in the schema
  directory; with it, it is normalised (a leading `v` dropped) and must parse as a version;
- the tool connects first, then reads `schema_version.curr_version` (no row: "error reading
  current schema version:sql: no rows in result set");
- the versions to apply are those in (current, target]: a database already AT the target is
  a no-op (a warning, exit 0); a database NEWER than a given `-v` fails with
  `error listing schema dir:start version 'C' must be less than end version 'T'` (exit 1);
  a target that is not a directory of the schema dir fails with `end version 'T' specified
  but not found. existing versions: [...]`; without `-v`, a database at or above the
  newest directory is a no-op;
- each version step moves `schema_version` (its `min_compatible_version` from the step's
  manifest: 1.0 for the main store, 0.1 for visibility) and adds one
  `schema_update_history` row (old, new);
- an error is logged as `Unable to update SQL schema.` with the error, and the tool exits 1.

The schema directory an image holds is its server release's `schema/mysql/v8/<store>/versioned`
(the directories are contiguous, v1.0 to the newest, at every tag v1.24.0-v1.31.2, so the
newest is enough): the release is read from the image tag (`1.29.1`,
`1.29.1-tctl-1.18.4-cli-1.5.0`, or `1.29`, a minor's floating tag).

Simplifications (named; no test relies on them to pass):
- no SQL statement of a version directory runs, only the `schema_version` row and the
  `schema_update_history` rows are written (the local MariaDB cannot run the MySQL 8
  visibility schema: no multi-valued indexes, no `->`); `manifest_md5` is empty and the
  description is the stand-in's;
- an image whose tag names no release from 1.24.0 to 1.31.x (a digest, `latest`, a newer
  release) fails the container with a line saying the stand-in does not know its schema
  directory, where the real image would run its own tool;
- only MySQL 8 schema directories exist (`.../mysql/v8/{temporal,visibility}/versioned`);
  any other directory is missing, as in an image without it; `--dryrun`, `--quiet` and the
  connect attributes are not played;
- log lines keep the tool's messages and levels, not its exact zap fields.
"""

from __future__ import annotations

import datetime
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import pymysql

Obj = dict[str, Any]
Version = tuple[int, ...]

# first release -> the newest v1.N directory of (temporal, visibility)/versioned, for the
# releases from that one up to the next row (schema/mysql/v8 at every tag v1.24.0-v1.31.2).
_NEWEST_DIRS: tuple[tuple[Version, int, int], ...] = (
    ((1, 24, 0), 12, 5),
    ((1, 24, 1), 12, 6),
    ((1, 25, 0), 14, 6),
    ((1, 26, 2), 14, 7),
    ((1, 27, 0), 15, 9),
    ((1, 27, 1), 16, 9),
    ((1, 28, 0), 17, 9),
    ((1, 29, 0), 18, 9),
    ((1, 30, 0), 18, 13),
    ((1, 31, 0), 19, 14),
)
_LAST_KNOWN_MINOR = (1, 31)
_FLOATING = 1_000_000  # the patch a minor-only tag (`1.29`) stands for: its newest
_STORES = {"temporal": "1.0", "visibility": "0.1"}  # store dir -> min_compatible_version
_DIR = re.compile(r"(?:^|/)mysql/v8/(temporal|visibility)/versioned/?$")
_NAME = re.compile(r"^mysql/v8/(temporal|visibility)$")
_TAG = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:$|-)")


@dataclass
class SchemaUpdate:
    """What one update-schema container is told to do (never printed: holds a password)."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    target: str  # "" when -v is not given
    schema_dir: str
    schema_name: str
    image: str
    tls: bool
    ca: str | None
    server_name: str | None
    verify_host: bool


class ToolError(Exception):
    """The tool's error, as it logs it before exiting 1."""


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _line(level: str, message: str, fields: str = "") -> str:
    return f"{_stamp()}\t{level}\t{message}" + (f"\t{fields}" if fields else "")


def tool_banner(update: SchemaUpdate) -> list[str]:
    config = (
        f'{{"DBName": "{update.database}", "TargetVersion": "{update.target}", '
        f'"SchemaDir": "{update.schema_dir}", "SchemaName": "{update.schema_name}"}}'
    )
    return [_line("INFO", "UpdateSchemaTask started", f'{{"config": {config}}}')]


def _failure(error: str) -> str:
    quoted = error.replace('"', '\\"')
    return _line("ERROR", "Unable to update SQL schema.", f'{{"error": "{quoted}"}}')


def _version(text: str) -> Version | None:
    """semver.ParseTolerant's reading of a schema version: 'v1.7' / '1.7' -> (1, 7, 0)."""
    parts = text.strip().removeprefix("v").split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in (*parts, "0", "0")[:3])


def image_release(image: str) -> Version | None:
    """The server release an admin-tools image was built from, from its tag; None when the
    tag names none the stand-in knows."""
    name = image.rsplit("/", 1)[-1]
    if "@" in name or ":" not in name:
        return None
    match = _TAG.match(name.split(":", 1)[1])
    if match is None:
        return None
    major, minor, patch = match.groups()
    release = (int(major), int(minor), int(patch) if patch is not None else _FLOATING)
    if release < _NEWEST_DIRS[0][0] or release[:2] > _LAST_KNOWN_MINOR:
        return None
    return release


def schema_dir_versions(image: str, store: str) -> list[str] | None:
    """The `vX.Y` directory names of `store`'s versioned schema in `image`, in the order a
    directory listing gives them (by name); None when the image is unknown."""
    release = image_release(image)
    if release is None:
        return None
    row = max((r for r in _NEWEST_DIRS if r[0] <= release), key=lambda r: r[0])
    newest = row[1] if store == "temporal" else row[2]
    return sorted(f"v1.{n}" for n in range(newest + 1))


def _store(update: SchemaUpdate) -> str:
    """Which store's directory the command names (ToolError as the tool reports it)."""
    if not update.schema_dir and not update.schema_name:
        raise ToolError("missing argument; either(-schema-dir) or (-schema-name) must be specified")
    if update.schema_dir and update.schema_name:
        raise ToolError("either(-schema-dir) or (-schema-name) must be specified")
    if update.schema_name:
        named = _NAME.match(update.schema_name)
        if named is None:
            raise ToolError(
                "(-schema-name) must be one of: [mysql/v8/temporal mysql/v8/visibility]"
            )
        return named.group(1)
    found = _DIR.search(update.schema_dir)
    if found is None:
        raise ToolError("error listing schema dir:open .: no such file or directory")
    return found.group(1)


def plan(update: SchemaUpdate, dirs: list[str], current: str) -> list[str]:
    """The versions the tool applies, in order, to a database at `current`
    (`sortAndFilterVersions` over the schema dir's names); ToolError as the tool fails."""
    target = update.target.removeprefix("v")  # normalizeVersionString
    start = _version(current)
    if start is None:
        raise ToolError(f"error listing schema dir:Invalid character(s) found in {current!r}")
    end = _version(target) if target else None
    if end is not None:
        if start > end:
            raise ToolError(
                f"error listing schema dir:start version '{current}' must be less than "
                f"end version '{target}'"
            )
        if start == end:
            return []
    chosen = []
    for name in dirs:
        version = _version(name)
        if version is not None and start < version and (end is None or version <= end):
            chosen.append(name)
    if end is not None and not any(_version(n) == end for n in chosen):
        raise ToolError(
            f"error listing schema dir:end version '{target}' specified but not "
            f"found. existing versions: [{' '.join(dirs)}]"
        )
    return [name[1:] for name in sorted(chosen, key=lambda n: _version(n) or ())]


class _ServerNameContext(ssl.SSLContext):
    """Verifies one fixed name whichever host was dialled (the tool's --tls-server-name)."""

    server_name: str

    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # type: ignore[override]
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def _ssl_context(update: SchemaUpdate) -> ssl.SSLContext:
    ctx = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.server_name = update.server_name or update.host
    ctx.check_hostname = update.verify_host
    ctx.load_verify_locations(cadata=update.ca or "")
    return ctx


def apply(update: SchemaUpdate) -> tuple[int, list[str], Obj | None]:
    """Run `temporal-sql-tool update-schema` against the database (on a worker thread:
    blocking I/O). Returns (exit code, log lines, the write made or None)."""
    lines: list[str] = []
    try:
        conn = pymysql.connect(
            host=update.host,
            port=update.port,
            user=update.user,
            password=update.password,
            database=update.database,
            ssl=_ssl_context(update) if update.tls else None,
            connect_timeout=5,
            autocommit=True,
        )
    except (pymysql.err.MySQLError, ssl.SSLError, OSError) as exc:
        return 1, [*lines, _line("ERROR", "Unable to connect to SQL database.", str(exc))], None
    try:
        # The tool connects, checks its arguments, then runs the task (which logs first).
        store = _store(update)
        if update.target and _version(update.target) is None:
            raise ToolError(f"invalid (-version) argument:{update.target!r}")
        update.target = update.target.removeprefix("v")  # normalizeVersionString
        lines += tool_banner(update)
        dirs = schema_dir_versions(update.image, store)
        if dirs is None:
            return (
                1,
                [
                    *lines,
                    f"stand-in: the schema directories of image {update.image!r} are not "
                    "known (admin-tools releases 1.24.0-1.31.x are)",
                ],
                None,
            )
        with conn.cursor() as cur:
            cur.execute(
                "SELECT curr_version FROM schema_version WHERE version_partition=0 AND db_name=%s",
                (update.database,),
            )
            row = cur.fetchone()
            if row is None:
                raise ToolError("error reading current schema version:sql: no rows in result set")
            current = str(row[0])
            steps = plan(update, dirs, current)
            if not steps:
                if update.target:
                    lines.append(
                        _line(
                            "WARN",
                            f"Start version '{current}' is equal to end version "
                            f"'{update.target}'. Returning empty version list",
                        )
                    )
                lines.append(_line("DEBUG", f"found zero updates from current version {current}"))
                return 0, [*lines, _line("INFO", "UpdateSchemaTask done")], None
            old = current
            for step in steps:
                cur.execute(
                    "INSERT INTO schema_version (version_partition, db_name, creation_time, "
                    "curr_version, min_compatible_version) VALUES (0, %s, NOW(6), %s, %s) "
                    "ON DUPLICATE KEY UPDATE creation_time=VALUES(creation_time), "
                    "curr_version=VALUES(curr_version), "
                    "min_compatible_version=VALUES(min_compatible_version)",
                    (update.database, step, _STORES[store] if step != "1.0" else "0.1"),
                )
                cur.execute(
                    "INSERT INTO schema_update_history (version_partition, year, month, "
                    "update_time, old_version, new_version, manifest_md5, description) VALUES "
                    "(0, YEAR(NOW()), MONTH(NOW()), NOW(6), %s, %s, '', %s)",
                    (old, step, f"stand-in update-schema v{step}"),
                )
                lines.append(_line("DEBUG", f"Schema updated from {old} to {step}"))
                old = step
    except ToolError as exc:
        return 1, [*lines, _failure(str(exc))], None
    except pymysql.err.MySQLError as exc:
        return 1, [*lines, _failure(f"error executing statement: {exc}")], None
    finally:
        conn.close()
    change = {
        "time": time.time(),
        "method": "SQL",
        "path": f"mysql://{update.host}:{update.port}/{update.database}",
        "status": 0,
        "schema": {"database": update.database, "from": current, "to": steps[-1]},
    }
    return 0, [*lines, _line("INFO", "UpdateSchemaTask done")], change
