"""Map a helmfile release's chart values onto the environment model, and report what was wrong.

Input: the release's values layers (merged as helm merges `-f` files), the chart's own
defaults (its values.yaml: the schema jobs and subcharts are on unless switched off, the
stores' default password is `temporal`), and the chart and server versions. Every value is
read from the *effective* values (defaults, then the layers), so a setting the old values
never wrote is judged by what the chart would have done with it.

Output: the environment's keys (as an environment file spells them), `extra_values` for what
the model does not cover (the leftover keys the layers set, never the keys the model exists
to guarantee), and the report (operations/helmfile/report.py): each problem of the issue's
list, the decisions the import made where the helmfile project says nothing, and for each the
same decision as a change to the original values, which `--compare` replays.

Both values layouts are read: `persistence` (charts before 1.0, `server.config.persistence.
<store>.sql`) and `datastores` (1.0 and later, `server.config.persistence.datastores.<name>.
sql` in the server's format). What the model cannot express at all (a store that is not MySQL,
two stores on different database hosts) makes the import `blocked`: nothing is written.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from declared_state import versions
from declared_state.loader import deep_merge, display_path
from operations.helmfile.project import HelmfileRelease
from operations.helmfile.report import REMOVE, ReportItem, Severity, ValuesChange, ValuesPath

MIN_HISTORY_MEMORY = 256 * 1024**2
SERVER_SERVICES = ("frontend", "history", "matching", "worker")
SUBCHARTS = ("cassandra", "mysql", "postgresql", "prometheus", "grafana", "elasticsearch")
SCHEMA_JOBS = ("createDatabase", "setup", "update")
CA_VOLUME = "rds-ca-bundle"
DEFAULT_SECRET = "temporal-db-secret"
SECRET_KEYS = {"default": "password", "visibility": "visibility-password"}
CA_SOURCE_FILE = "global-bundle.pem"
_RDS_ENDPOINT = re.compile(
    r"^(?P<instance>[a-z][a-z0-9-]*)\.[a-z0-9]+\.(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d)"
    r"\.rds\.amazonaws\.com(\.cn)?$"
)
_QUANTITY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_QUANTITY_FACTORS = {
    None: 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
# Keys a SQL store may carry that the model sets (or refuses) itself.
_STORE_KEYS = frozenset(
    {
        "driver",
        "pluginName",
        "driverName",
        "host",
        "port",
        "connectAddr",
        "connectProtocol",
        "database",
        "databaseName",
        "user",
        "password",
        "existingSecret",
        "secretKey",
        "maxConns",
        "maxIdleConns",
        "maxConnLifetime",
        "createDatabase",
        "manageSchema",
    }
)
_TLS_KEYS = frozenset({"enabled", "caFile", "caData", "enableHostVerification", "serverName"})
_INGRESS_ANNOTATIONS = {
    "proxy-body-size": "nginx.ingress.kubernetes.io/proxy-body-size",
    "whitelist": "nginx.ingress.kubernetes.io/whitelist-source-range",
    "auth-url": "nginx.ingress.kubernetes.io/auth-url",
    "auth-signin": "nginx.ingress.kubernetes.io/auth-signin",
}


def coalesce(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """helm's merge of user values over the chart's: maps merge, anything else replaces, and
    a null removes the chart's key."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def get(values: Any, path: ValuesPath, default: Any = None) -> Any:
    node = values
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def leaves(values: Any, prefix: ValuesPath = ()) -> Iterator[tuple[ValuesPath, Any]]:
    """(path, value) of every leaf; lists and empty maps are leaves."""
    if isinstance(values, Mapping) and values:
        for key, value in values.items():
            yield from leaves(value, (*prefix, str(key)))
    elif prefix:
        yield prefix, values


def set_path(values: dict[str, Any], path: ValuesPath, value: Any) -> None:
    node = values
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is REMOVE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = copy.deepcopy(value)


def apply_changes(values: Mapping[str, Any], items: list[ReportItem]) -> dict[str, Any]:
    """The original values with every item's changes applied, in report order."""
    changed = copy.deepcopy(dict(values))
    for item in items:
        for change in item.changes:
            set_path(changed, change.path, change.value)
    return changed


def memory_bytes(quantity: Any) -> float | None:
    match = _QUANTITY.match(str(quantity))
    if not match:
        return None
    return float(match.group(1)) * _QUANTITY_FACTORS[match.group(2)]


def dotted(path: ValuesPath) -> str:
    return ".".join(path)


@dataclass
class Store:
    """One of the two SQL stores, wherever this layout keeps it."""

    role: str
    """`default` or `visibility`: the model's name for it."""
    path: ValuesPath
    """Where the store's `sql:` map lives."""
    sql: dict[str, Any]
    """Its effective settings."""


@dataclass
class Imported:
    """The environment file's keys and the report."""

    environment: dict[str, Any]
    items: list[ReportItem]
    blocked: bool
    user_values: dict[str, Any]
    """The release's values as helm receives them (for --compare)."""
    chart_server: str
    extra_sources: dict[ValuesPath, str] = field(default_factory=dict)
    """Where each extra_values leaf came from (for the report of refused ones)."""


class _Mapper:
    def __init__(
        self,
        release: HelmfileRelease,
        defaults: Mapping[str, Any],
        chart_version: str,
        server_version: str,
    ):
        self.release = release
        self.layout = versions.values_layout(chart_version)
        self.chart_version, self.server = chart_version, server_version
        user: dict[str, Any] = {}
        for layer in release.layers:
            user = deep_merge(user, layer.data)
        self.user = user
        self.values = coalesce(defaults, user)
        self.consumed: set[ValuesPath] = set()
        self.items: list[ReportItem] = []
        self.blocked = False
        self.env: dict[str, Any] = {}

    # --- helpers ---------------------------------------------------------------------

    def origin(self, path: ValuesPath) -> str:
        """The values file (or inline map) that sets `path` last; `chart default` if none."""
        # A key no layer writes belongs to the file that writes its nearest parent (where
        # it is missing), unless only a top-level key is written there.
        for end in range(len(path), 1, -1):
            for layer in reversed(self.release.layers):
                if get(layer.data, path[:end], _MISSING) is not _MISSING:
                    return layer.source
        return f"chart default (temporal {self.chart_version} values.yaml)"

    def take(self, path: ValuesPath, default: Any = None) -> Any:
        """The effective value at `path`; the layers' keys there are the model's now."""
        self.consumed.add(path)
        return get(self.values, path, default)

    def item(
        self,
        severity: Severity,
        path: ValuesPath,
        finding: str,
        why: str,
        instead: str,
        changes: tuple[ValuesChange, ...] = (),
    ) -> None:
        self.items.append(
            ReportItem(severity, self.origin(path), dotted(path), finding, why, instead, changes)
        )

    def problem(
        self, path: ValuesPath, finding: str, why: str, instead: str, *changes: ValuesChange
    ) -> None:
        self.item(Severity.PROBLEM, path, finding, why, instead, changes)

    def note(
        self, path: ValuesPath, finding: str, why: str, instead: str, *changes: ValuesChange
    ) -> None:
        self.item(Severity.NOTE, path, finding, why, instead, changes)

    def block(self, path: ValuesPath, finding: str, why: str) -> None:
        self.blocked = True
        self.problem(path, finding, why, "nothing is written: the model cannot express it")

    # --- the stores ------------------------------------------------------------------

    def stores(self) -> list[Store] | None:
        persistence = ("server", "config", "persistence")
        found = []
        for role, selector in (("default", "defaultStore"), ("visibility", "visibilityStore")):
            if self.layout == "persistence":
                name = (
                    self.take((*persistence, "defaultStore"), "default")
                    if role == "default"
                    else "visibility"
                )
                base: ValuesPath = (*persistence, str(name))
                driver = self.take((*base, "driver"))
                if driver != "sql":
                    self.block(
                        (*base, "driver"),
                        f"the {role} store's driver is {driver!r}, not sql",
                        "temporal-bootstrap runs both stores on RDS MySQL 8",
                    )
                    continue
            else:
                name = self.take((*persistence, selector), role)
                base = (*persistence, "datastores", str(name))
                if not isinstance(get(self.values, (*base, "sql")), Mapping):
                    self.block(
                        base,
                        f"the {role} store ({name}) is not a SQL store",
                        "temporal-bootstrap runs both stores on RDS MySQL 8",
                    )
                    continue
            path = (*base, "sql")
            sql = get(self.values, path) or {}
            found.append(Store(role, path, dict(sql)))
            for key in _STORE_KEYS:
                self.consumed.add((*path, key))
            for key in _TLS_KEYS:
                self.consumed.add((*path, "tls", key))
        return found if len(found) == 2 else None

    def _plugin(self, store: Store) -> None:
        key = "driver" if self.layout == "persistence" else "pluginName"
        plugin = store.sql.get(key)
        if plugin == "mysql8":
            return
        if plugin == "mysql":
            self.problem(
                (*store.path, key),
                f"the {store.role} store uses the `mysql` plugin (MySQL 5.7)",
                "RDS MySQL 8 is read with the `mysql8` plugin",
                "the imported environment uses mysql8",
                ValuesChange((*store.path, key), "mysql8"),
                *(
                    [ValuesChange((*store.path, "driverName"), "mysql8")]
                    if self.layout == "datastores"
                    else []
                ),
            )
            return
        self.block(
            (*store.path, key),
            f"the {store.role} store's plugin is {plugin!r}",
            "temporal-bootstrap runs both stores on RDS MySQL 8 (mysql8)",
        )

    def _address(self, store: Store) -> tuple[str | None, int | None]:
        if self.layout == "datastores" and store.sql.get("connectAddr"):
            host, _, port = str(store.sql["connectAddr"]).rpartition(":")
            return host or None, int(port) if port.isdigit() else None
        written, number = store.sql.get("host"), str(store.sql.get("port", 3306))
        return (str(written) if written else None), (int(number) if number.isdigit() else None)

    def database(self, stores: list[Store]) -> None:
        for store in stores:
            self._plugin(store)
        default, visibility = stores
        (host, port), other = self._address(default), self._address(visibility)
        if host is None or port is None:
            self.block(default.path, "the default store names no host and port", "")
            return
        if other != (host, port):
            self.block(
                visibility.path,
                f"the stores are on different servers ({host}:{port} and {other[0]}:{other[1]})",
                "the model has one RDS instance for both stores",
            )
            return
        self.env["rds"] = {**self._rds(host, default), "endpoint": host, "port": port}
        key = "database" if self.layout == "persistence" else "databaseName"
        database: dict[str, Any] = {
            "default_store": default.sql.get(key),
            "visibility_store": visibility.sql.get(key),
        }
        for name, setting in (
            ("user", "user"),
            ("max_conns", "maxConns"),
            ("max_idle_conns", "maxIdleConns"),
            ("max_conn_lifetime", "maxConnLifetime"),
        ):
            value = default.sql.get(setting)
            if value is None:
                if setting == "maxIdleConns":
                    self.note(
                        (*default.path, setting),
                        "maxIdleConns is not set (the chart sets none)",
                        "the model always declares it, so a chart's layout change keeps it",
                        "the imported environment keeps 20 idle connections per store",
                        *(ValuesChange((*s.path, setting), 20) for s in stores),
                    )
                    value = 20
                else:
                    continue
            if visibility.sql.get(setting) != value:
                self.problem(
                    (*visibility.path, setting),
                    f"the visibility store's {setting} differs from the default store's",
                    "the model has one value for both stores",
                    "the imported environment uses the default store's for both",
                    ValuesChange((*visibility.path, setting), value),
                )
            database[name] = value
        database["password_source"] = {"kind": "existing_kubernetes_secret"}
        self.env["database"] = database
        self._passwords(stores, database)
        self._tls(stores, host, database)
        self._connect_protocol(stores)

    def _rds(self, host: str, default: Store) -> dict[str, Any]:
        match = _RDS_ENDPOINT.match(host)
        if match:
            return {"instance_id": match.group("instance"), "region": match.group("region")}
        self.problem(
            (*default.path, "host" if self.layout == "persistence" else "connectAddr"),
            f"{host} is not an RDS endpoint name (<instance>.<id>.<region>.rds.amazonaws.com)",
            "the preflight looks the instance up by rds.instance_id and rds.region, which "
            "the helmfile project does not hold",
            "rds.instance_id and rds.region are left out: add them to the environment file "
            "(validate refuses it until then)",
        )
        return {}

    def _connect_protocol(self, stores: list[Store]) -> None:
        for store in stores:
            protocol = store.sql.get("connectProtocol")
            if protocol is None and self.layout == "datastores":
                self.note(
                    (*store.path, "connectProtocol"),
                    f"the {store.role} store names no connectProtocol",
                    "the model always writes it in the server's config",
                    "the imported environment connects over tcp (the server's default)",
                    ValuesChange((*store.path, "connectProtocol"), "tcp"),
                )
            elif protocol not in (None, "tcp"):
                self.problem(
                    (*store.path, "connectProtocol"),
                    f"connectProtocol {protocol!r}",
                    "RDS is reached over TCP",
                    "the imported environment connects over tcp",
                    ValuesChange((*store.path, "connectProtocol"), "tcp"),
                )

    def _passwords(self, stores: list[Store], database: dict[str, Any]) -> None:
        names = [s.sql.get("existingSecret") for s in stores]
        secret = next((n for n in names if n), DEFAULT_SECRET)
        keys: dict[str, str] = {}
        for store in stores:
            path = (*store.path, "existingSecret")
            written = get(self.user, (*store.path, "password"))
            if written:  # never copied, never shown
                self.problem(
                    (*store.path, "password"),
                    f"a plaintext password for the {store.role} store",
                    "it is readable by anyone who reads the values files or the release",
                    "not copied: the imported environment reads the password from the Kubernetes "
                    f"Secret {secret} (database.kubernetes_secret); rotate this password",
                    ValuesChange((*store.path, "password"), self._empty_password()),
                )
            own_key = store.sql.get("secretKey")
            if not store.sql.get("existingSecret"):
                key = own_key or SECRET_KEYS[store.role]
                keys[store.role] = key
                fallback = "that password" if written else "the chart's default password"
                self.problem(
                    path,
                    f"the {store.role} store has no existingSecret",
                    f"the chart then renders its own Secret with {fallback} and the store "
                    "connects with it",
                    f"the imported environment reads Secret {secret}, key {key}",
                    ValuesChange(path, secret),
                    ValuesChange((*store.path, "secretKey"), key),
                    ValuesChange((*store.path, "password"), self._empty_password()),
                )
                continue
            if store.sql["existingSecret"] != secret:
                self.problem(
                    path,
                    f"the {store.role} store reads Secret {store.sql['existingSecret']}, the "
                    f"other store {secret}",
                    "the model keeps both passwords in one Secret",
                    f"the imported environment reads both from {secret}",
                    ValuesChange(path, secret),
                )
            if own_key:
                keys[store.role] = str(own_key)
            elif store.role == "visibility":
                keys[store.role] = SECRET_KEYS["visibility"]
                self.problem(
                    (*store.path, "secretKey"),
                    "the visibility store has no secretKey",
                    "existingSecret alone means key `password`: the visibility store reads the "
                    "default store's password",
                    f"the imported environment reads key {SECRET_KEYS['visibility']} of "
                    f"{secret} (create it)",
                    ValuesChange((*store.path, "secretKey"), SECRET_KEYS["visibility"]),
                )
            else:
                keys[store.role] = "password"
                self.note(
                    (*store.path, "secretKey"),
                    "the default store has no secretKey (it reads key `password`)",
                    "the model names each store's key",
                    "the imported environment names key password",
                    ValuesChange((*store.path, "secretKey"), "password"),
                )
        if keys["default"] == keys["visibility"]:
            keys["visibility"] = SECRET_KEYS["visibility"]
            visibility = stores[1]
            self.problem(
                (*visibility.path, "secretKey"),
                "both stores read the same key of the Secret",
                "one password for both stores: the model keeps them apart",
                f"the imported environment reads key {keys['visibility']} for visibility "
                "(create it)",
                ValuesChange((*visibility.path, "secretKey"), keys["visibility"]),
            )
        database["kubernetes_secret"] = {
            "name": secret,
            "default_store_key": keys["default"],
            "visibility_store_key": keys["visibility"],
        }

    def _empty_password(self) -> Any:
        # The model writes an empty password in the old layout and none in the new one.
        return "" if self.layout == "persistence" else REMOVE

    def _tls(self, stores: list[Store], host: str, database: dict[str, Any]) -> None:
        mount_path = self._ca_path(stores)
        server_names = set()
        for store in stores:
            tls = store.sql.get("tls") or {}
            path = (*store.path, "tls")
            verify = ValuesChange((*path, "enableHostVerification"), True)
            if not tls.get("enabled"):
                self.problem(
                    (*path, "enabled"),
                    f"TLS to the database is off for the {store.role} store",
                    "passwords and workflow data cross the network in clear text",
                    "the imported environment turns TLS on, with the RDS CA bundle and host "
                    "verification",
                    ValuesChange((*path, "enabled"), True),
                    *([] if tls.get("enableHostVerification") else [verify]),
                )
            elif not tls.get("enableHostVerification"):
                self.problem(
                    (*path, "enableHostVerification"),
                    f"host verification is off for the {store.role} store",
                    "any certificate the CA signed is accepted for the database, so a "
                    "man in the middle goes unnoticed",
                    "the imported environment verifies the host name",
                    verify,
                )
            if tls.get("caData"):
                data = str(tls["caData"])
                self.problem(
                    (*path, "caData"),
                    "the CA is given as caData"
                    + (f" with a file path ({data})" if data.startswith("/") else " (inline data)"),
                    "the MySQL driver ignores caData: the connection is verified against no "
                    "CA bundle at all",
                    f"the imported environment reads the bundle as caFile {mount_path} "
                    "(ca_bundle.mount_path)",
                    ValuesChange((*path, "caData"), REMOVE),
                    ValuesChange((*path, "caFile"), mount_path),
                )
            if tls.get("serverName"):
                server_names.add(str(tls["serverName"]))
            for key in sorted(set(tls) - _TLS_KEYS):
                self.consumed.discard((*path, key))  # left to extra_values, which refuses it
        name = sorted(server_names)[0] if server_names else None
        if name and name != host:
            database["tls_server_name"] = name
        if (
            not name
            or len(server_names) > 1
            or any((s.sql.get("tls") or {}).get("serverName") != (name or host) for s in stores)
        ):
            shown = name or host
            self.note(
                (*stores[0].path, "tls", "serverName"),
                "tls.serverName is not set on every store",
                "the model names the host verified on the certificate for both stores",
                f"the imported environment verifies {shown} on both",
                *(ValuesChange((*s.path, "tls", "serverName"), shown) for s in stores),
            )
        self._ca_bundle(stores, mount_path)

    @staticmethod
    def _ca_path(stores: list[Store]) -> str:
        """Where the stores read the CA bundle: a caFile, else a path written as caData (the
        mistake the report names), else the model's default."""
        for key in ("caFile", "caData"):
            for store in stores:
                written = str((store.sql.get("tls") or {}).get(key) or "")
                if written.startswith("/"):
                    return written
        return "/etc/temporal/global-bundle.pem"

    def _ca_bundle(self, stores: list[Store], mount_path: str) -> None:
        volumes_path = ("server", "additionalVolumes")
        mounts_path = ("server", "additionalVolumeMounts")
        volumes = self.take(volumes_path) or []
        mounts = self.take(mounts_path) or []
        match, key = None, None
        for mount in (m for m in mounts if isinstance(m, Mapping)):
            target = str(mount.get("mountPath", ""))
            if target == mount_path:
                match, key = mount, mount.get("subPath") or mount_path.rsplit("/", 1)[-1]
            elif mount_path.startswith(target.rstrip("/") + "/") and not mount.get("subPath"):
                match, key = mount, mount_path[len(target.rstrip("/")) + 1 :]
        volume = next(
            (
                v
                for v in volumes
                if isinstance(v, Mapping) and match is not None and v.get("name") == match["name"]
            ),
            None,
        )
        config_map = get(volume, ("configMap", "name"))
        others = [v for v in volumes if v is not volume]
        model_volumes = [{"name": CA_VOLUME, "configMap": {"name": config_map or "rds-ca-certs"}}]
        model_mounts = [
            {
                "name": CA_VOLUME,
                "mountPath": mount_path,
                "subPath": key or "global-bundle.pem",
                "readOnly": True,
            }
        ]
        changes = (
            ValuesChange(volumes_path, model_volumes),
            ValuesChange(mounts_path, model_mounts),
            *(ValuesChange((*s.path, "tls", "caFile"), mount_path) for s in stores),
        )
        if config_map is None:
            self.problem(
                mounts_path,
                f"no ConfigMap volume is mounted at {mount_path}, where the stores read "
                "their CA bundle",
                "the server cannot verify the database's certificate",
                f"the imported environment mounts ConfigMap rds-ca-certs (key "
                f"global-bundle.pem) at {mount_path}",
                *changes,
            )
            config_map, key = "rds-ca-certs", "global-bundle.pem"
        elif (match, volume, len(mounts), len(volumes)) != (
            model_mounts[0],
            model_volumes[0],
            1,
            1,
        ):
            self.note(
                mounts_path,
                f"the CA bundle (ConfigMap {config_map}, key {key}) is mounted in another shape",
                "the model mounts it as volume rds-ca-bundle, read-only, with subPath",
                "the imported environment declares the same file; the server pods restart once "
                "on the first provision",
                *changes,
            )
        for other in others:
            self.problem(
                volumes_path,
                f"another volume, {other.get('name')}, is mounted into the server pods",
                "server.additionalVolumes holds the CA bundle's volume in the model; a list in "
                "extra_values would replace it",
                "not imported: the server pods lose this volume",
            )
        self.env["ca_bundle"] = {
            "source": {"kind": "file", "path": CA_SOURCE_FILE},
            "config_map": config_map,
            "key": key,
            "mount_path": mount_path,
        }
        self.items.append(
            ReportItem(
                Severity.NOTE,
                display_release(self.release),
                "ca_bundle.source",
                "where the CA bundle comes from is not in the helmfile project (the "
                f"ConfigMap {config_map} was created by hand)",
                "the bootstrap keeps the ConfigMap up to date from a source",
                f"the imported environment reads {CA_SOURCE_FILE} beside the environment "
                "files: put the RDS bundle there, or point ca_bundle.source at S3",
            )
        )

    # --- chart-wide settings ---------------------------------------------------------

    def schema_and_subcharts(self, stores: list[Store] | None) -> None:
        if self.layout == "persistence":
            on = [job for job in SCHEMA_JOBS if self.take(("schema", job, "enabled"))]
            if on:
                self.problem(
                    ("schema", on[0], "enabled"),
                    f"the chart's schema jobs are on ({', '.join(on)})",
                    "each install runs temporal-sql-tool against the database, outside the "
                    "upgrade's snapshot-first order",
                    "the imported environment turns every schema job off (the upgrade runs "
                    "the schema)",
                    *(ValuesChange(("schema", job, "enabled"), False) for job in on),
                )
            for job in SCHEMA_JOBS:
                self.consumed.add(("schema", job, "enabled"))
            subcharts = [c for c in SUBCHARTS if self.take((c, "enabled"))]
            if subcharts:
                self.problem(
                    (subcharts[0], "enabled"),
                    f"subcharts are on ({', '.join(subcharts)})",
                    "they deploy databases and monitoring beside Temporal (elasticsearch "
                    "also takes over visibility from MySQL)",
                    "the imported environment turns them off",
                    *(ValuesChange((c, "enabled"), False) for c in subcharts),
                )
        else:
            for store in stores or []:
                on = [k for k in ("createDatabase", "manageSchema") if store.sql.get(k, True)]
                if on:
                    self.problem(
                        (*store.path, on[0]),
                        f"the {store.role} store's schema job is on ({', '.join(on)})",
                        "each install runs a schema Job against the database, outside the "
                        "upgrade's snapshot-first order",
                        "the imported environment sets createDatabase and manageSchema false",
                        *(ValuesChange((*store.path, k), False) for k in on),
                    )

    def server_image_and_config(self) -> None:
        tag = self.take(("server", "image", "tag"))
        if str(tag) != self.server:
            self.problem(
                ("server", "image", "tag"),
                f"the server image tag is {tag}, the chart {self.chart_version} deploys "
                f"{self.server}",
                "the version tables (schema, upgrades) follow the chart",
                f"the imported environment pins {self.server}",
                ValuesChange(("server", "image", "tag"), self.server),
            )
        sprig = versions.version_key(self.server) >= (1, 30, 0)
        if self.layout == "persistence":
            settings = {
                ("server", "configMapsToMount"): "sprig",
                ("server", "setConfigFilePath"): True,
            }
        else:
            settings = {("shims", "dockerize"): False, ("shims", "elasticsearchTool"): False}
        wrong = [p for p, v in settings.items() if sprig and self.take(p) != v]
        for path in settings:
            self.consumed.add(path)
        if wrong:
            self.problem(
                wrong[0],
                f"server {self.server} images have no dockerize, and "
                + ", ".join(dotted(p) for p in wrong)
                + " keep the dockerize config",
                "the server does not start",
                "the imported environment reads the sprig config",
                *(ValuesChange(p, settings[p]) for p in wrong),
            )
        namespaces = self.take(("server", "config", "namespaces", "create"))
        self.consumed.add(("server", "config", "namespaces", "namespace"))
        declared = get(self.values, ("server", "config", "namespaces", "namespace")) or []
        if namespaces:
            self.env["temporal_namespaces"] = [
                {"name": n.get("name"), "retention": str(n.get("retention", "72h"))}
                for n in declared
                if isinstance(n, Mapping)
            ]
            self.note(
                ("server", "config", "namespaces", "create"),
                "the chart creates the Temporal namespaces",
                "the bootstrap registers them itself (and keeps their retention)",
                "the imported environment declares them in temporal_namespaces",
                ValuesChange(("server", "config", "namespaces", "create"), False),
            )
        else:
            self.items.append(
                ReportItem(
                    Severity.NOTE,
                    display_release(self.release),
                    "temporal_namespaces",
                    "no Temporal namespaces are declared (the helmfile setup creates them by "
                    "hand with `temporal operator namespace create`)",
                    "the bootstrap registers the namespaces an environment declares",
                    "the imported environment declares none: add them to temporal_namespaces",
                )
            )
        shards_path = (
            ("server", "config", "numHistoryShards")
            if self.layout == "persistence"
            else ("server", "config", "persistence", "numHistoryShards")
        )
        if get(self.user, shards_path) is not None:
            self.problem(
                shards_path,
                f"numHistoryShards is set to {get(self.user, shards_path)}",
                "it can never change after the first install: a different value on the same "
                "database breaks the cluster",
                "kept as it is (extra_values); never change it",
            )

    def images(self) -> None:
        """Image repositories and tags the values set, onto the model's `images:` (#21: the
        model pins every image, so extra_values may not set one); the server's tag is judged
        by server_image_and_config."""
        pinned = versions.chart_images(self.chart_version)
        images: dict[str, Any] = {}
        for key, component in (("server", "server"), ("admintools", "admin_tools"), ("web", "web")):
            base: ValuesPath = (key, "image")
            repository = get(self.user, (*base, "repository"))
            tag = None if key == "server" else get(self.user, (*base, "tag"))
            self.consumed.update({(*base, "repository"), (*base, "tag")})
            override: dict[str, str] = {}
            if repository and repository != versions.IMAGE_REPOSITORIES[component]:
                override["repository"] = str(repository)
            if tag and (pinned is None or str(tag) != getattr(pinned, component)):
                override["tag"] = str(tag)
            if override:
                images[component] = override
                self.note(
                    base,
                    f"the {key} image is set ({', '.join(f'{k} {v}' for k, v in override.items())})",
                    "temporal-bootstrap pins every image (the image preflight and the upgrade's "
                    "schema Job read them), so extra_values may not set one",
                    f"the imported environment declares images.{component}",
                )
        if images:
            self.env["images"] = images

    def security_contexts(self) -> None:
        """Security contexts the values set: every pod runs the Pod Security restricted
        profile the model sets (#23), which extra_values may not replace."""
        found = sorted(
            {
                path[: i + 1]
                for path, _ in leaves(self.user)
                for i, part in enumerate(path)
                if path[0] in ("server", "admintools", "web", "schema")
                and part.lower().endswith("securitycontext")
            }
        )
        if not found:
            return
        self.consumed.update(found)
        self.note(
            found[0],
            "the values set security contexts (" + ", ".join(dotted(p) for p in found) + ")",
            "temporal-bootstrap runs every pod with the Pod Security restricted profile "
            "(docs/security.md)",
            "not imported: the imported environment's pods run restricted",
            *(ValuesChange(p, REMOVE) for p in found),
        )

    def services(self) -> None:
        services: dict[str, Any] = {}
        for svc in SERVER_SERVICES:
            # The chart's `default`: a service's own value unless empty, else server-wide.
            shared_replicas = self.take(("server", "replicaCount"), 1)
            shared_resources = self.take(("server", "resources")) or {}
            replicas = self.take(("server", svc, "replicaCount")) or shared_replicas
            own = self.take(("server", svc, "resources"))
            where: ValuesPath = ("server", svc, "resources") if own else ("server", "resources")
            resources = own or shared_resources
            services[svc] = {
                "replicas": replicas,
                "resources": self._resources(svc, where, resources),
            }
        services["web"] = {
            "replicas": self.take(("web", "replicaCount"), 1),
            "resources": self._resources(
                "web", ("web", "resources"), self.take(("web", "resources")) or {}
            ),
        }
        services["admintools"] = {
            "resources": self._resources(
                "admintools",
                ("admintools", "resources"),
                self.take(("admintools", "resources")) or {},
            )
        }
        for name in ("web", "admintools"):
            if self.take((name, "enabled"), True) is not True:
                self.note(
                    (name, "enabled"),
                    f"{name} is off",
                    f"temporal-bootstrap always deploys {name}",
                    f"the imported environment deploys {name}",
                    ValuesChange((name, "enabled"), True),
                )
        self.env["services"] = services

    def _resources(self, svc: str, path: ValuesPath, resources: Any) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for part in ("limits", "requests"):
            amounts = resources.get(part) or {}
            kept = {k: str(v) for k, v in amounts.items() if k in ("cpu", "memory")}
            for other in sorted(set(amounts) - {"cpu", "memory"}):
                self.problem(
                    (*path, part, other),
                    f"{svc} {part} {other}",
                    "the model declares cpu and memory only",
                    "not imported",
                    ValuesChange((*path, part, other), REMOVE),
                )
            if kept:
                result[part] = kept
        limits = result.get("limits", {})
        if not limits.get("cpu") or not limits.get("memory"):
            missing = " and ".join(k for k in ("cpu", "memory") if not limits.get(k))
            self.problem(
                (*path, "limits"),
                f"{svc} has no {missing} limit",
                "one service can take the node's memory or CPU from the others",
                f"kept without it: set services.{svc}.resources.limits in the imported environment",
            )
        memory = memory_bytes(limits.get("memory")) if limits.get("memory") else None
        if svc == "history" and memory is not None and memory < MIN_HISTORY_MEMORY:
            raised = copy.deepcopy(result)
            raised["limits"]["memory"] = "256Mi"
            self.problem(
                (*path, "limits", "memory"),
                f"the history service's memory limit is {limits['memory']}",
                "the reference setup's history was OOMKilled at 128Mi",
                "the imported environment gives history 256Mi",
                ValuesChange(("server", "history", "resources"), raised),
            )
            result = raised
        return result

    def ingress(self) -> None:
        base = ("web", "ingress")
        enabled = self.take((*base, "enabled"))
        hosts = self.take((*base, "hosts")) or []
        tls = self.take((*base, "tls")) or []
        class_name = self.take((*base, "className"))
        annotations = dict(get(self.values, (*base, "annotations")) or {})
        self.consumed.update(
            (*base, "annotations", annotation) for annotation in _INGRESS_ANNOTATIONS.values()
        )
        if not enabled:
            self.env["web_ingress"] = {"enabled": False}
            return
        ingress: dict[str, Any] = {"enabled": True, "class_name": class_name or "nginx"}
        if not class_name:
            self.note(
                (*base, "className"),
                "the ingress names no class",
                "the model always names it (nginx reads the access annotations)",
                "the imported environment uses class nginx",
                ValuesChange((*base, "className"), "nginx"),
            )
        if len(hosts) != 1:
            self.problem(
                (*base, "hosts"),
                f"the ingress has {len(hosts)} hosts",
                "the model serves the Web UI on one host",
                f"the imported environment uses {hosts[0] if hosts else 'none'}",
                ValuesChange((*base, "hosts"), hosts[:1]),
            )
        if hosts:
            ingress["host"] = str(hosts[0])
        secret = next((t.get("secretName") for t in tls if isinstance(t, Mapping)), None)
        if secret:
            ingress["tls_secret"] = secret
            expected = [{"secretName": secret, "hosts": [ingress.get("host")]}]
            if tls != expected:
                self.note(
                    (*base, "tls"),
                    "the ingress TLS list has another shape",
                    "the model writes one entry for its host",
                    f"the imported environment serves {ingress.get('host')} with {secret}",
                    ValuesChange((*base, "tls"), expected),
                )
        size = annotations.get(_INGRESS_ANNOTATIONS["proxy-body-size"])
        if size:
            ingress["proxy_body_size"] = str(size)
        else:
            self.note(
                (*base, "annotations"),
                "no proxy-body-size annotation",
                "the model always sets it",
                "the imported environment sets 15m (the reference setup's value)",
                ValuesChange(
                    (*base, "annotations", _INGRESS_ANNOTATIONS["proxy-body-size"]), "15m"
                ),
            )
        access: dict[str, Any] = {}
        cidrs = annotations.get(_INGRESS_ANNOTATIONS["whitelist"])
        if cidrs:
            access["allowed_cidrs"] = [c.strip() for c in str(cidrs).split(",") if c.strip()]
        for key, annotation in (("auth_url", "auth-url"), ("auth_signin", "auth-signin")):
            if annotations.get(_INGRESS_ANNOTATIONS[annotation]):
                access[key] = str(annotations[_INGRESS_ANNOTATIONS[annotation]])
        if access:
            ingress["access"] = access
        if not cidrs and not access.get("auth_url"):
            ingress["enabled"] = False
            self.problem(
                (*base, "annotations"),
                "the Web UI ingress has no access control (no allow-list, no auth)",
                "anyone who reaches the ingress controller can use the Web UI: start, "
                "terminate and read every workflow",
                "the imported environment keeps the ingress off until you add "
                "web_ingress.access.allowed_cidrs or auth_url (and enabled: true); write "
                "public: true only to expose it on purpose",
                ValuesChange((*base, "enabled"), False),
            )
        self.env["web_ingress"] = ingress

    # --- the rest --------------------------------------------------------------------

    def chart_and_target(self) -> None:
        release = self.release
        chart: dict[str, Any] = {"name": "temporal", "version": self.chart_version}
        if release.repository:
            chart["repository"] = release.repository
        if release.local_chart:
            chart["local_path"] = str(release.local_chart)
        self.env["chart"] = chart
        namespace = release.namespace
        if namespace is None:
            namespace = "default"
            self.items.append(
                ReportItem(
                    Severity.PROBLEM,
                    display_release(release),
                    f"releases[{release.name}].namespace",
                    "the release names no namespace",
                    "helm then installs into the kube context's default namespace",
                    "the imported environment installs into namespace default",
                )
            )
        kubernetes: dict[str, Any] = {"namespace": namespace, "release": release.name}
        if release.kube_context:
            kubernetes["context"] = release.kube_context
        self.env["kubernetes"] = kubernetes
        broken = versions.broken_release(self.server)
        latest = max(versions.UPGRADE_PATH)
        minor = versions.minor_of(self.server)
        helmfile = display_release(release)
        if broken:
            self.items.append(
                ReportItem(
                    Severity.PROBLEM,
                    helmfile,
                    f"releases[{release.name}].version",
                    f"chart {self.chart_version} deploys server {self.server}: {broken}",
                    "the model refuses a broken release",
                    "the imported environment keeps the version, so validate refuses it: "
                    "choose the next good chart as its version",
                )
            )
        elif minor[0] == latest[0] and latest[1] - minor[1] > 1:
            self.items.append(
                ReportItem(
                    Severity.PROBLEM,
                    helmfile,
                    f"releases[{release.name}].version",
                    f"chart {self.chart_version} deploys server {self.server}, "
                    f"{latest[1] - minor[1]} minors behind the latest known "
                    f"({'.'.join(map(str, latest))})",
                    "Temporal upgrades one minor at a time; the further behind, the longer "
                    "the path and the sooner support ends",
                    "the imported environment keeps the version (the cluster runs it): plan "
                    "the upgrade with `python starter.py upgrade ENV --plan`",
                )
            )

    def dynamic_config(self) -> None:
        """`server.dynamicConfig` is the server's dynamic config file, the format the model's
        `dynamic_config` takes as it is (extra_values may not carry it); a shape the server
        would refuse is reported by the loader's check of the imported file."""
        found = self.take(("server", "dynamicConfig"))
        if found:
            self.env["dynamic_config"] = copy.deepcopy(found)

    def archival(self) -> None:
        """`server.archival` and `server.namespaceDefaults` are the server's archival config,
        which the model's `archival` declares (extra_values may not carry them). A kind that
        is not `enabled` is the model's default (disabled); an enabled one maps when its
        provider is `s3store`, the only one the model configures (shared by both kinds);
        anything else blocks the import. The server's own rules (an enabled kind needs a
        default URI, ...) are checked by the loader on the imported file."""
        found = self.take(("server", "archival"))
        defaults = self.take(("server", "namespaceDefaults"))
        archival: dict[str, Any] = {}
        stores: dict[str, dict[str, Any]] = {}
        for kind in ("history", "visibility"):
            cfg = get(found, (kind,), None) if isinstance(found, Mapping) else None
            if not isinstance(cfg, Mapping) or str(cfg.get("state", "")).lower() != "enabled":
                continue
            path: ValuesPath = ("server", "archival", kind, "provider")
            provider = cfg.get("provider")
            provider = provider if isinstance(provider, Mapping) else {}
            if set(provider) != {"s3store"}:
                self.block(
                    path,
                    f"{kind} archival uses {', '.join(sorted(provider)) or 'no'} provider",
                    "temporal-bootstrap configures the s3store archiver only (s3:// URIs)",
                )
                continue
            store = provider["s3store"] if isinstance(provider["s3store"], Mapping) else {}
            stores[kind] = {
                key: store[written]
                for key, written in (
                    ("region", "region"),
                    ("endpoint", "endpoint"),
                    ("force_path_style", "s3ForcePathStyle"),
                )
                if store.get(written) not in (None, "", False)
            }
            default = (
                get(defaults, ("archival", kind), None) if isinstance(defaults, Mapping) else None
            )
            default = default if isinstance(default, Mapping) else {}
            spec: dict[str, Any] = {
                "state": "enabled",
                "enable_read": bool(cfg.get("enableRead", False)),
            }
            if default.get("URI"):
                spec["uri"] = default["URI"]
            if str(default.get("state", "")).lower() == "enabled":
                spec["namespace_default"] = "enabled"
            archival[kind] = spec
        if len({tuple(sorted(s.items())) for s in stores.values()}) > 1:
            self.block(
                ("server", "archival", "visibility", "provider", "s3store"),
                "history and visibility archival use different s3store settings",
                "the model declares one archival.s3store for both kinds",
            )
        elif stores:
            archival["s3store"] = next(iter(stores.values()))
        if archival:
            self.env["archival"] = archival

    def extra_values(self) -> dict[str, Any]:
        """The layers' leaves the model does not map, as they were written."""
        extra: dict[str, Any] = {}
        for path, value in leaves(self.user):
            if any(path[: i + 1] in self.consumed for i in range(len(path))):
                continue
            set_path(extra, path, value)
        return extra

    def run(self) -> Imported:
        self.chart_and_target()
        stores = self.stores()
        if stores is not None:
            self.database(stores)
        self.schema_and_subcharts(stores)
        self.server_image_and_config()
        self.images()
        self.security_contexts()
        self.services()
        self.ingress()
        self.dynamic_config()
        self.archival()
        extra = self.extra_values()
        if extra:
            self.env["extra_values"] = extra
        sources = {path: self.origin(path) for path, _ in leaves(extra)}
        return Imported(self.env, self.items, self.blocked, self.user, self.server, sources)


_MISSING = object()


def display_release(release: HelmfileRelease) -> str:
    return display_path(str(release.helmfile))


def map_release(
    release: HelmfileRelease,
    defaults: Mapping[str, Any],
    chart_version: str,
    server_version: str,
) -> Imported:
    """Map `release` (with its chart's `defaults`) onto the environment model."""
    return _Mapper(release, defaults, chart_version, server_version).run()
