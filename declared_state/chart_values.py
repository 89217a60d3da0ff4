"""Turn an environment into the values of the Temporal Helm chart, for both values layouts.

- `persistence` (charts 0.51-0.74): `server.config.persistence.<store>.sql.{driver, host,
  port, database, ...}`, schema jobs switched off chart-wide (`schema.*.enabled: false`),
  the subcharts switched off one by one. From server 1.30 the images have no dockerize, so
  the server reads the sprig-templated config (`configMapsToMount: sprig`) from the path
  `setConfigFilePath` sets.
- `datastores` (charts 1.0 and later): `server.config.persistence.datastores.<name>.sql` in
  the server's own config format (`pluginName`, `databaseName`, `connectAddr`, ...), plus
  the helm-only `existingSecret` / `secretKey` and the per-store `createDatabase` /
  `manageSchema` (both false: the schema is this tool's job, not the chart's). The
  subcharts and the chart-wide schema toggles are gone: the chart refuses those keys. From
  server 1.30 the dockerize and elasticsearch-tool shims are switched off.

Both layouts are built from the same model, so an environment means the same thing on
either side of the 0.74 -> 1.x change (tests/integration/declared_state/test_chart_values_render.py renders every
shipped chart with helm v3 and v4 and checks each rule on the manifests; the upgrade e2e
compares the deployed manifests across the change). The three images (server, admintools,
web) are always pinned to what the chart itself pins (versions.CHART_IMAGES) with the
environment's `images` overrides, so an upgrade hop deploys exactly the release it planned
and the image preflight checks exactly what the pods pull.

`model_values(env)` is everything the model sets (per layout); `build_chart_values(env)`
merges `extra_values` over it, last.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from declared_state import archival, dynamic_config, versions
from declared_state.loader import deep_merge
from declared_state.models import Environment, Image, Resources, ServiceSpec, WebUiAuth

CA_VOLUME_NAME = "rds-ca-bundle"
SERVER_SERVICES = ("frontend", "history", "matching", "worker")
STORES = ("default", "visibility")
# Server 1.30 images ship without dockerize; older charts' default config needs it.
SPRIG_CONFIG_FROM = (1, 30, 0)


def _resources(resources: Resources) -> dict[str, Any]:
    return resources.model_dump(exclude_none=True)


def _store_database(env: Environment, store: str) -> str:
    return env.database.default_store if store == "default" else env.database.visibility_store


def _store_secret_key(env: Environment, store: str) -> str:
    secret = env.database.kubernetes_secret
    return secret.default_store_key if store == "default" else secret.visibility_store_key


def _sql_common(env: Environment, store: str) -> dict[str, Any]:
    """The SQL settings both layouts spell alike."""
    db = env.database
    return {
        "user": db.user,
        # existingSecret alone means key `password`; secretKey makes each store explicit.
        # Both are helm-only: the chart fills the store's password variable from them, and
        # with existingSecret set it never renders a Secret of its own.
        "existingSecret": db.kubernetes_secret.name,
        "secretKey": _store_secret_key(env, store),
        "maxConns": db.max_conns,
        "maxIdleConns": db.max_idle_conns,
        "maxConnLifetime": db.max_conn_lifetime,
        # The MySQL plugin reads caFile (a path); caData is ignored by the driver.
        "tls": {
            "enabled": True,
            "caFile": env.ca_bundle.mount_path,
            "enableHostVerification": True,
            "serverName": env.db_tls_server_name,
        },
    }


def _persistence_store(env: Environment, store: str) -> dict[str, Any]:
    """One store in the `persistence` layout (charts before 1.0)."""
    return {
        "driver": "sql",
        "sql": {
            "driver": "mysql8",
            "host": env.rds.endpoint,
            "port": env.rds.port,
            "database": _store_database(env, store),
            # Empty, so the chart never falls back to its default password.
            "password": "",
            **_sql_common(env, store),
        },
    }


def _datastore(env: Environment, store: str) -> dict[str, Any]:
    """One store in the `datastores` layout (charts 1.0 and later): the server's own format."""
    sql = {
        "pluginName": "mysql8",
        "driverName": "mysql8",
        "databaseName": _store_database(env, store),
        "connectAddr": f"{env.rds.endpoint}:{env.rds.port}",
        "connectProtocol": "tcp",
        **_sql_common(env, store),
        # Without these the chart renders a schema Job that creates and migrates the
        # databases with the admin-tools image it bundles.
        "createDatabase": False,
        "manageSchema": False,
    }
    if passwords_as_files(env):
        del sql["existingSecret"], sql["secretKey"]
        sql["passwordCommand"] = {"command": "/bin/cat", "args": [f"{DB_PASSWORD_DIR}/{store}"]}
    return {"sql": sql}


# Secrets as files (#23.6). From chart 1.3.0 (helm-charts #907) a SQL store may name a
# `passwordCommand` instead of a Secret: the chart then renders no password env variable,
# and the server (1.31.0 and later, temporalio/temporal #9879: `SQL.ResolvePassword`) runs
# the command for each new connection and takes its stdout. The command is the image's
# own `/bin/cat` (alpine) of the DB Secret mounted as files, read-only, mode 0440 (group
# fsGroup 1000, the server's user): no password in the pods' environment, and a rotated
# Secret reaches new connections once the kubelet refreshes the volume, without a restart.
# Before chart 1.3.0 the charts can only pass the passwords as env variables from the
# Secret (`existingSecret`): a chart limit (docs/security.md).
PASSWORD_COMMAND_FROM_CHART = (1, 3, 0)
PASSWORD_COMMAND_FROM_SERVER = (1, 31, 0)
DB_PASSWORD_VOLUME = "db-password"
DB_PASSWORD_DIR = "/etc/temporal/secrets/db"


def passwords_as_files(env: Environment) -> bool:
    """Does env's chart read the DB passwords from files (see above)?"""
    return (
        versions.version_key(env.chart.version) >= PASSWORD_COMMAND_FROM_CHART
        and versions.version_key(env.chart.target_server_version) >= PASSWORD_COMMAND_FROM_SERVER
    )


def _password_files(env: Environment) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server pods' volume of the DB Secret (one file per store) and its mount."""
    secret = env.database.kubernetes_secret
    volume = {
        "name": DB_PASSWORD_VOLUME,
        "secret": {
            "secretName": secret.name,
            "defaultMode": 0o440,
            "items": [{"key": _store_secret_key(env, store), "path": store} for store in STORES],
        },
    }
    mount = {"name": DB_PASSWORD_VOLUME, "mountPath": DB_PASSWORD_DIR, "readOnly": True}
    return volume, mount


def _image(image: Image | None) -> dict[str, Any]:
    """An image's values; empty for one the tables do not know (the chart's default)."""
    return {"repository": image.repository, "tag": image.tag} if image else {}


def _with_image(values: dict[str, Any], image: Image | None) -> dict[str, Any]:
    return {"image": _image(image), **values} if image else values


def _server_service(spec: ServiceSpec) -> dict[str, Any]:
    return {"replicaCount": spec.replicas, "resources": _resources(spec.resources)}


def ui_sign_in_env(env: Environment) -> list[dict[str, Any]]:
    """The Temporal UI server's OIDC settings as the UI container's environment (the names
    its config template reads, UI 2.31 to 2.52: server/docker/config-template.yaml, later
    server/config/docker.yaml); the client secret only as a secretKeyRef, so its value is in
    no values, manifest or history. Empty without sign-in."""
    oidc = env.web_ui.oidc
    if env.web_ui.auth != WebUiAuth.OIDC or oidc is None:
        return []
    ref = oidc.client_secret_ref
    return [
        {"name": "TEMPORAL_AUTH_ENABLED", "value": "true"},
        {"name": "TEMPORAL_AUTH_TYPE", "value": "oidc"},
        {"name": "TEMPORAL_AUTH_PROVIDER_URL", "value": oidc.provider_url},
        {"name": "TEMPORAL_AUTH_CLIENT_ID", "value": oidc.client_id},
        {
            "name": "TEMPORAL_AUTH_CLIENT_SECRET",
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
        },
        {"name": "TEMPORAL_AUTH_CALLBACK_URL", "value": env.ui_callback_url},
        {"name": "TEMPORAL_AUTH_SCOPES", "value": ",".join(oidc.scopes)},
    ]


@dataclass(frozen=True)
class ProvidedSecretKey:
    """A Secret key the release's pods read that this tool neither creates nor fills: the
    operator provides it before provisioning (install_chart checks it is there first)."""

    name: str
    key: str
    declared_at: str
    """The environment key that names it."""
    read_by: str


def provided_secret_keys(env: Environment) -> tuple[ProvidedSecretKey, ...]:
    """The Secret keys of `env`'s release that the operator provides (today: the Web UI's
    OIDC client secret); the DB password Secret is ensure_db_secret's, not listed here."""
    oidc = env.web_ui.oidc
    if env.web_ui.auth != WebUiAuth.OIDC or oidc is None:
        return ()
    ref = oidc.client_secret_ref
    return (
        ProvidedSecretKey(
            ref.name, ref.key, "web_ui.oidc.client_secret_ref", "the Web UI's OIDC sign-in"
        ),
    )


def _web(env: Environment) -> dict[str, Any]:
    web: dict[str, Any] = _with_image({"enabled": True}, env.resolved_images.web)
    web |= {
        "replicaCount": env.services.web.replicas,
        "resources": _resources(env.services.web.resources),
    }
    if sign_in := ui_sign_in_env(env):
        # Both layouts append web.additionalEnv to the UI container's env as written.
        web["additionalEnv"] = sign_in
    ingress = env.web_ingress
    if not ingress.enabled:
        web["ingress"] = {"enabled": False}
        return web
    annotations = {"nginx.ingress.kubernetes.io/proxy-body-size": ingress.proxy_body_size}
    if ingress.access.allowed_cidrs:
        annotations["nginx.ingress.kubernetes.io/whitelist-source-range"] = ",".join(
            ingress.access.allowed_cidrs
        )
    if ingress.access.auth_url:
        annotations["nginx.ingress.kubernetes.io/auth-url"] = ingress.access.auth_url
    if ingress.access.auth_signin:
        annotations["nginx.ingress.kubernetes.io/auth-signin"] = ingress.access.auth_signin
    web["ingress"] = {
        "enabled": True,
        "className": ingress.class_name,
        "annotations": annotations,
        "hosts": [ingress.host],
        "tls": (
            [{"secretName": ingress.tls_secret, "hosts": [ingress.host]}]
            if ingress.tls_secret
            else []
        ),
    }
    return web


def _server(env: Environment, persistence: dict[str, Any]) -> dict[str, Any]:
    """`server:` values both layouts share; `persistence` is the layout's own."""
    ca = env.ca_bundle
    server: dict[str, Any] = {
        # Pinned: an upgrade hop deploys exactly the server release it planned for.
        "image": _image(env.resolved_images.server),
        "config": {
            "persistence": persistence,
            # The chart's own namespace creation is off; namespaces are registered by the
            # bootstrap instead.
            "namespaces": {"create": False},
        },
        "additionalVolumes": [
            {"name": CA_VOLUME_NAME, "configMap": {"name": ca.config_map}},
        ],
        "additionalVolumeMounts": [
            {
                "name": CA_VOLUME_NAME,
                "mountPath": ca.mount_path,
                "subPath": ca.key,
                "readOnly": True,
            },
        ],
    }
    if env.dynamic_config:
        # Both layouts: the chart writes it verbatim into ConfigMap <release>-dynamic-config
        # (key dynamic_config.yaml), which the servers re-read every 10 s.
        server["dynamicConfig"] = dynamic_config.chart_values(env.dynamic_config)
    if env.archival.any_enabled:
        # Both layouts: `server.archival` and `server.namespaceDefaults` go verbatim into the
        # server config. Without them the chart writes archival `status: disabled` (a key the
        # server does not read: both kinds stay disabled, as they should).
        server.update(archival.chart_values(env.archival))
    for name in SERVER_SERVICES:
        server[name] = _server_service(getattr(env.services, name))
    return server


def _admintools(env: Environment) -> dict[str, Any]:
    return _with_image(
        {"enabled": True, "resources": _resources(env.services.admintools.resources)},
        env.resolved_images.admin_tools,
    )


def _sprig_config(env: Environment) -> bool:
    return versions.version_key(env.chart.target_server_version) >= SPRIG_CONFIG_FROM


def _persistence_layout(env: Environment) -> dict[str, Any]:
    server = _server(
        env,
        {
            "defaultStore": "default",
            **{store: _persistence_store(env, store) for store in STORES},
        },
    )
    if _sprig_config(env):
        server["configMapsToMount"] = "sprig"
        server["setConfigFilePath"] = True
    return {
        "server": server,
        "admintools": _admintools(env),
        "web": _web(env),
        # Schema is managed by this tool (the upgrade's schema step) and checked by the
        # preflight; every job defaults to true in the chart, so each is turned off.
        "schema": {
            "createDatabase": {"enabled": False},
            "setup": {"enabled": False},
            "update": {"enabled": False},
        },
        "cassandra": {"enabled": False},
        "mysql": {"enabled": False},
        "postgresql": {"enabled": False},
        "prometheus": {"enabled": False},
        "grafana": {"enabled": False},
        "elasticsearch": {"enabled": False},
    }


def _datastores_layout(env: Environment) -> dict[str, Any]:
    values: dict[str, Any] = {
        "server": _server(
            env,
            {
                "defaultStore": "default",
                "visibilityStore": "visibility",
                "datastores": {store: _datastore(env, store) for store in STORES},
            },
        ),
        "admintools": _admintools(env),
        "web": _web(env),
    }
    if _sprig_config(env):
        values["shims"] = {"dockerize": False, "elasticsearchTool": False}
    if not env.frontend.tls.enabled:
        values["server"]["frontend"]["readinessProbe"] = copy.deepcopy(FRONTEND_READINESS)
    if passwords_as_files(env):
        volume, mount = _password_files(env)
        values["server"]["additionalVolumes"].append(volume)
        values["server"]["additionalVolumeMounts"].append(mount)
    return values


# Readiness (#23.4): the 1.x charts take a readiness probe per service; the frontend's asks
# the gRPC health service for the WorkflowService, which the server (service/frontend,
# WorkflowHandler.Start) reports NOT_SERVING until its membership ring is ready, then
# SERVING: `helm --wait` then waits for a frontend that serves, not for an open port (the
# chart's default since 1.2, a tcpSocket probe). Not with TLS on the frontend: the kubelet's
# gRPC probe speaks no TLS (kubernetes/enhancements#4939), so the chart's tcpSocket stays.
# The 0.x charts render no readiness probe at all and take none (docs/security.md).
WORKFLOW_SERVICE = "temporal.api.workflowservice.v1.WorkflowService"
FRONTEND_GRPC_PORT = 7233  # the frontend container's `rpc` port in every chart
FRONTEND_READINESS: dict[str, Any] = {
    "grpc": {"port": FRONTEND_GRPC_PORT, "service": WORKFLOW_SERVICE}
}


# --- Pod Security "restricted" (#23.1) -----------------------------------------------------
# Every pod the chart renders runs as the image's own non-root user, with no privilege
# escalation, no capabilities, the runtime's default seccomp profile and, where the image
# writes nothing at start, a read-only root. The users come from the images' Dockerfiles:
# temporalio/server and temporalio/admin-tools create `temporal` with uid/gid 1000
# (temporalio/temporal .github/docker/targets/*.Dockerfile, temporalio/docker-builds);
# temporalio/ui created it with uid 5000 until 2.38.3 (temporalio/ui 2267695a, "Change
# default group ... openshift"), which chart 0.64.0 is the first to pin. A numeric
# runAsUser is required: the kubelet cannot check runAsNonRoot against a user *name*.
# The charts have no value for `automountServiceAccountToken` (pod or ServiceAccount), so
# the token stays mounted: a chart limit, documented in docs/security.md.
TEMPORAL_UID = 1000
OLD_UI_UID = 5000
UI_UID_1000_FROM_CHART = (0, 64, 0)
# Before UI 2.38.3 the image's start script renders ./config/docker.yaml with dockerize;
# later images ship that file and render nothing unless a custom template is mounted.
UI_HOME_CONFIG = "/home/ui-server/config"
UI_CONFIG_VOLUME = "ui-config"


def _pod_security_context(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security_context(*, read_only_root: bool) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def server_writes_config(env: Environment) -> bool:
    """Servers before 1.30 start through dockerize, which renders the config into
    /etc/temporal/config/docker.yaml on the image's root filesystem: that root stays
    writable (the image's own files sit in the same folder, so an emptyDir would hide them)."""
    return not _sprig_config(env)


def _old_ui(env: Environment) -> bool:
    return versions.version_key(env.chart.version) < UI_UID_1000_FROM_CHART


def _harden(values: dict[str, Any], env: Environment) -> dict[str, Any]:
    """Add the restricted-profile security contexts to `values` (either layout)."""
    server = values["server"]
    server["securityContext"] = _pod_security_context(TEMPORAL_UID)
    server_container = _container_security_context(read_only_root=not server_writes_config(env))
    for name in SERVER_SERVICES:
        server[name]["containerSecurityContext"] = server_container
    admintools = values["admintools"]
    admintools["securityContext"] = _pod_security_context(TEMPORAL_UID)
    admintools["containerSecurityContext"] = _container_security_context(read_only_root=True)
    web = values["web"]
    old_ui = _old_ui(env)
    web["securityContext"] = _pod_security_context(OLD_UI_UID if old_ui else TEMPORAL_UID)
    web["containerSecurityContext"] = _container_security_context(read_only_root=True)
    # The chart's schema Jobs (the 1.x chart renders one even with schema management off)
    # run the admin-tools image.
    schema = values.setdefault("schema", {})
    schema["securityContext"] = _pod_security_context(TEMPORAL_UID)
    schema["containerSecurityContext"] = _container_security_context(read_only_root=True)
    if old_ui:
        web["additionalVolumes"] = [{"name": UI_CONFIG_VOLUME, "emptyDir": {}}]
        web["additionalVolumeMounts"] = [{"name": UI_CONFIG_VOLUME, "mountPath": UI_HOME_CONFIG}]
    return values


def pod_security_values(env: Environment) -> dict[str, Any]:
    """Only what the restricted profile adds (`_harden` over no other values)."""
    return _harden(
        {"server": {name: {} for name in SERVER_SERVICES}, "admintools": {}, "web": {}}, env
    )


def with_model_additions(values: dict[str, Any], env: Environment) -> dict[str, Any]:
    """`values` (anybody's, e.g. a helmfile's) with what the model adds to every rendering on
    purpose (#23): the restricted profile, and in the 1.x layout the frontend's gRPC
    readiness and the DB passwords as files (each SQL store that reads an `existingSecret`
    cats its key instead). For the helmfile import's comparison, which shows the
    differences these alone make as the model's own, not as unexplained."""
    out = deep_merge(values, pod_security_values(env))
    if versions.values_layout(env.chart.version) != "datastores":
        return out
    server = out.setdefault("server", {})
    if not env.frontend.tls.enabled:
        server.setdefault("frontend", {})["readinessProbe"] = copy.deepcopy(FRONTEND_READINESS)
    if not passwords_as_files(env):
        return out
    stores = ((server.get("config") or {}).get("persistence") or {}).get("datastores") or {}
    items, secrets = [], set()
    for name, store in stores.items():
        sql = store.get("sql") if isinstance(store, dict) else None
        if not isinstance(sql, dict) or not sql.get("existingSecret"):
            continue
        secrets.add(sql.pop("existingSecret"))
        items.append({"key": sql.pop("secretKey", "password"), "path": name})
        sql["passwordCommand"] = {"command": "/bin/cat", "args": [f"{DB_PASSWORD_DIR}/{name}"]}
    if len(secrets) == 1:
        volume, mount = _password_files(env)
        volume["secret"].update(secretName=secrets.pop(), items=items)
        server["additionalVolumes"] = [*server.get("additionalVolumes", []), volume]
        server["additionalVolumeMounts"] = [*server.get("additionalVolumeMounts", []), mount]
    return out


def model_values(env: Environment) -> dict[str, Any]:
    """Every value the environment model sets, in the layout of env.chart (no extra_values)."""
    if versions.values_layout(env.chart.version) == "datastores":
        return _harden(_datastores_layout(env), env)
    return _harden(_persistence_layout(env), env)


# Where each image's values live, in both layouts: (ImageSet field, values key).
IMAGE_VALUES = (("server", "server"), ("admin_tools", "admintools"), ("web", "web"))


def image_references(env: Environment) -> tuple[str, ...]:
    """The references (`repository:tag`) of the images the values name (the ones the
    tables know), for `images.pin: digest` to resolve."""
    images = env.resolved_images
    found = (getattr(images, component) for component, _ in IMAGE_VALUES)
    return tuple(image.reference for image in found if image is not None)


def build_chart_values(
    env: Environment, digests: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The complete values for `helm upgrade --install` of env.chart, extra_values merged last.
    `digests` (`images.pin: digest`): reference -> manifest digest; each image it names is
    deployed as `repository:tag@sha256:...` (the charts join `repository:tag`, and a runtime
    given a tag and a digest pulls by the digest)."""
    values = model_values(env)
    for component, key in IMAGE_VALUES:
        image = getattr(env.resolved_images, component)
        digest = (digests or {}).get(image.reference) if image is not None else None
        if image is not None and digest:
            values[key]["image"] = {"repository": image.repository, "tag": f"{image.tag}@{digest}"}
    return deep_merge(values, env.extra_values)
