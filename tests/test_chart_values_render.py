"""The generated values, rendered by the real helm binary with the real chart 0.52.0.

Each check reads the rendered manifests. `test_each_check_catches_its_broken_field` breaks
one field of the values per check and shows that check (and only a real check) fails, so
none of them can pass by accident.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from activities.helm_cli import HelmCli, chart_reference
from declared_state.chart_values import SERVER_SERVICES, build_chart_values
from declared_state.loader import load_environment
from declared_state.models import Environment

Docs = list[dict[str, Any]]


@pytest.fixture(scope="module", params=["v3", "v4"])
def helm(request, helm_binaries) -> HelmCli:
    return HelmCli(binary=helm_binaries[request.param])


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("staging")


def render(helm: HelmCli, env: Environment, values: dict[str, Any]) -> Docs:
    text = helm.template(
        env.kubernetes.release, env.kubernetes.namespace, chart_reference(env.chart), values
    )
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def objects(docs: Docs, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def server_config(docs: Docs) -> dict[str, Any]:
    data = objects(docs, "ConfigMap")["temporal-config"]["data"]["config_template.yaml"]
    # The server's own dockerize placeholders are no YAML; any string stands in for them.
    return yaml.safe_load(re.sub(r"\{\{.*?\}\}", "PLACEHOLDER", data))


def server_deployments(docs: Docs) -> dict[str, dict[str, Any]]:
    deployments = objects(docs, "Deployment")
    return {svc: deployments[f"temporal-{svc}"] for svc in SERVER_SERVICES}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


# --- checks -----------------------------------------------------------------------------


def check_store_connections(docs: Docs, env: Environment) -> None:
    stores = server_config(docs)["persistence"]["datastores"]
    for store, database in (
        ("default", env.database.default_store),
        ("visibility", env.database.visibility_store),
    ):
        sql = stores[store]["sql"]
        assert sql["pluginName"] == "mysql8", store
        assert sql["databaseName"] == database, store
        assert sql["connectAddr"] == f"{env.rds.endpoint}:{env.rds.port}", store
        assert sql["tls"]["enabled"] is True, store
        assert sql["tls"].get("caFile") == env.ca_bundle.mount_path, store
        # The server checks the certificate's name, which is the RDS endpoint by default.
        assert sql["tls"].get("enableHostVerification") is True, store
        assert sql["tls"].get("serverName") == (env.database.tls_server_name or env.rds.endpoint), (
            store
        )
        assert "caData" not in sql["tls"], f"{store}: caData is not read by the MySQL driver"


def check_passwords_from_existing_secret(docs: Docs, env: Environment) -> None:
    secret = env.database.kubernetes_secret
    expected = {
        "TEMPORAL_STORE_PASSWORD": secret.default_store_key,
        "TEMPORAL_VISIBILITY_STORE_PASSWORD": secret.visibility_store_key,
    }
    for svc, deployment in server_deployments(docs).items():
        env_vars = {e["name"]: e for e in container(deployment)["env"]}
        for var, key in expected.items():
            ref = env_vars[var]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == (secret.name, key), f"{svc} {var}"


def check_no_chart_secret(docs: Docs, env: Environment) -> None:
    assert objects(docs, "Secret") == {}, "the chart rendered a Secret with a default password"


def check_deployments_replicas_and_resources(docs: Docs, env: Environment) -> None:
    deployments = objects(docs, "Deployment")
    assert set(deployments) == {f"temporal-{s}" for s in (*SERVER_SERVICES, "web", "admintools")}
    for svc in (*SERVER_SERVICES, "web"):
        spec = getattr(env.services, svc)
        dep = deployments[f"temporal-{svc}"]
        assert dep["spec"]["replicas"] == spec.replicas, svc
        assert container(dep)["resources"] == spec.resources.model_dump(exclude_none=True), svc
    admintools = container(deployments["temporal-admintools"])
    assert admintools["resources"] == env.services.admintools.resources.model_dump(
        exclude_none=True
    )


def check_ca_bundle_mounted(docs: Docs, env: Environment) -> None:
    ca = env.ca_bundle
    for svc, dep in server_deployments(docs).items():
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        ca_volumes = [
            v for v in volumes.values() if v.get("configMap", {}).get("name") == ca.config_map
        ]
        assert len(ca_volumes) == 1, f"{svc}: no volume from ConfigMap {ca.config_map}"
        mounts = [m for m in container(dep)["volumeMounts"] if m["name"] == ca_volumes[0]["name"]]
        assert [(m["mountPath"], m.get("subPath")) for m in mounts] == [(ca.mount_path, ca.key)], (
            svc
        )


def check_ingress_access_control(docs: Docs, env: Environment) -> None:
    ingress = objects(docs, "Ingress")["temporal-web"]
    annotations = ingress["metadata"].get("annotations", {})
    assert ingress["spec"]["ingressClassName"] == env.web_ingress.class_name
    assert annotations.get("nginx.ingress.kubernetes.io/proxy-body-size") == "15m"
    assert annotations.get("nginx.ingress.kubernetes.io/whitelist-source-range") == ",".join(
        env.web_ingress.access.allowed_cidrs
    )
    assert ingress["spec"]["rules"][0]["host"] == env.web_ingress.host
    assert ingress["spec"]["tls"] == [
        {"hosts": [env.web_ingress.host], "secretName": env.web_ingress.tls_secret}
    ]


def check_schema_jobs_off(docs: Docs, env: Environment) -> None:
    assert objects(docs, "Job") == {}, "a schema job would run against the production DB"


CHECKS: dict[str, Callable[[Docs, Environment], None]] = {
    f.__name__: f
    for f in (
        check_store_connections,
        check_passwords_from_existing_secret,
        check_no_chart_secret,
        check_deployments_replicas_and_resources,
        check_ca_bundle_mounted,
        check_ingress_access_control,
        check_schema_jobs_off,
    )
}


def _set(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        values = values[p]
    if value is _DELETE:
        del values[last]
    else:
        values[last] = value


_DELETE = object()
VIS = "server.config.persistence.visibility.sql"

# One wrong field per check: the check named first must fail on it.
BREAKAGES: list[tuple[str, str, Any]] = [
    ("check_store_connections", f"{VIS}.tls", {"enabled": True, "caData": "LS0tLQ=="}),
    ("check_store_connections", "server.config.persistence.default.sql.port", 3307),
    ("check_store_connections", f"{VIS}.tls.enableHostVerification", False),
    ("check_store_connections", "server.config.persistence.default.sql.tls.serverName", ""),
    ("check_store_connections", f"{VIS}.tls.serverName", "temporal-staging.example.org"),
    ("check_passwords_from_existing_secret", f"{VIS}.secretKey", _DELETE),
    ("check_no_chart_secret", f"{VIS}.existingSecret", _DELETE),
    ("check_deployments_replicas_and_resources", "server.history.resources", {}),
    ("check_deployments_replicas_and_resources", "server.matching.replicaCount", 3),
    ("check_ca_bundle_mounted", "server.additionalVolumeMounts", []),
    ("check_ingress_access_control", "web.ingress.annotations", {}),
    ("check_schema_jobs_off", "schema.setup.enabled", True),
]


@pytest.mark.parametrize("check", CHECKS)
def test_generated_values_pass(helm, env, check):
    CHECKS[check](render(helm, env, build_chart_values(env)), env)


@pytest.mark.parametrize(
    ("check", "path", "wrong"), BREAKAGES, ids=[f"{c}:{p}" for c, p, _ in BREAKAGES]
)
def test_each_check_catches_its_broken_field(helm_binaries, env, check, path, wrong):
    values = copy.deepcopy(build_chart_values(env))
    if path == f"{VIS}.existingSecret":
        values["server"]["config"]["persistence"]["visibility"]["sql"]["password"] = "temporal"
    _set(values, path, wrong)
    docs = render(HelmCli(binary=helm_binaries["v4"]), env, values)
    with pytest.raises(AssertionError):
        CHECKS[check](docs, env)


def test_auth_url_access_control_renders_auth_annotations(helm_binaries):
    env = load_environment("production")
    ingress = objects(
        render(HelmCli(binary=helm_binaries["v4"]), env, build_chart_values(env)), "Ingress"
    )
    annotations = ingress["temporal-web"]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-url"] == env.web_ingress.access.auth_url
    assert (
        annotations["nginx.ingress.kubernetes.io/auth-signin"] == env.web_ingress.access.auth_signin
    )
    assert "nginx.ingress.kubernetes.io/whitelist-source-range" not in annotations


def test_extra_values_merge_last(helm_binaries, env):
    custom = env.model_copy(update={"extra_values": {"server": {"config": {"logLevel": "warn"}}}})
    values = build_chart_values(custom)
    assert values["server"]["config"]["logLevel"] == "warn"
    # merged, not replaced: the persistence built from the model is still there
    assert values["server"]["config"]["persistence"]["default"]["sql"]["driver"] == "mysql8"
    docs = render(HelmCli(binary=helm_binaries["v4"]), custom, values)
    assert server_config(docs)["log"]["level"] == "warn"
