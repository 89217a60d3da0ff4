"""Turn an environment into the values of the Temporal Helm chart 0.51/0.52.

Each rule below is one of the facts in shared/notes/temporal-on-k8s-facts.md; the render
tests in tests/test_chart_values_render.py check the chart's output for every one of them.
"""

from __future__ import annotations

from typing import Any

from declared_state.loader import deep_merge
from declared_state.models import Environment, Resources, ServiceSpec

CA_VOLUME_NAME = "rds-ca-bundle"
SERVER_SERVICES = ("frontend", "history", "matching", "worker")


def _resources(resources: Resources) -> dict[str, Any]:
    return resources.model_dump(exclude_none=True)


def _sql_store(env: Environment, store: str) -> dict[str, Any]:
    db, secret = env.database, env.database.kubernetes_secret
    is_default = store == "default"
    return {
        "driver": "sql",
        "sql": {
            "driver": "mysql8",
            "host": env.rds.endpoint,
            "port": env.rds.port,
            "database": db.default_store if is_default else db.visibility_store,
            "user": db.user,
            # Empty, so the chart never renders a Secret of its own with a default password.
            "password": "",
            # existingSecret alone means key `password`; secretKey makes each store explicit.
            "existingSecret": secret.name,
            "secretKey": secret.default_store_key if is_default else secret.visibility_store_key,
            "maxConns": db.max_conns,
            "maxConnLifetime": db.max_conn_lifetime,
            # The MySQL plugin reads caFile (a path); caData is ignored by the driver.
            "tls": {
                "enabled": True,
                "caFile": env.ca_bundle.mount_path,
                "enableHostVerification": True,
                "serverName": env.db_tls_server_name,
            },
        },
    }


def _server_service(spec: ServiceSpec) -> dict[str, Any]:
    return {"replicaCount": spec.replicas, "resources": _resources(spec.resources)}


def _web(env: Environment) -> dict[str, Any]:
    web: dict[str, Any] = {
        "enabled": True,
        "replicaCount": env.services.web.replicas,
        "resources": _resources(env.services.web.resources),
    }
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


def build_chart_values(env: Environment) -> dict[str, Any]:
    """The complete values for `helm upgrade --install` of env.chart, extra_values merged last."""
    ca = env.ca_bundle
    server: dict[str, Any] = {
        "config": {
            "persistence": {
                "defaultStore": "default",
                "default": _sql_store(env, "default"),
                "visibility": _sql_store(env, "visibility"),
            },
            # The chart's own namespace creation lives in the schema job we turn off;
            # namespaces are registered by the bootstrap instead.
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
    for name in SERVER_SERVICES:
        server[name] = _server_service(getattr(env.services, name))
    values: dict[str, Any] = {
        "server": server,
        "admintools": {
            "enabled": True,
            "resources": _resources(env.services.admintools.resources),
        },
        "web": _web(env),
        # Schema is managed with temporal-sql-tool and checked by the preflight; every job
        # defaults to true in the chart, so each must be turned off explicitly.
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
    return deep_merge(values, env.extra_values)
