"""The generated values, rendered by the real helm v3 and v4 with every shipped chart
(0.52.0 to 1.6.0, both values layouts).

One `helm template` per chart per helm version (cached for the module), every check run on
it. Each check reads the rendered manifests and compares them with what the environment
declares, never with the values that produced them. `test_each_check_catches_its_broken_field`
breaks one field of the values per check and layout and shows that check fails, so none of
them can pass by accident. `test_the_layout_change_keeps_the_meaning` renders the last chart
of the old layout and the 1.x charts and finds the same cluster in all of them.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.helm_cli import HelmCli, chart_reference
from declared_state.chart_files import read_chart_metadata
from declared_state.chart_values import build_chart_values
from declared_state.loader import load_environment
from declared_state.models import ChartSpec, Environment, FrontendTls, ImageOverride, ImagesSpec
from declared_state.versions import values_layout, version_key
from tests.helpers import MIRROR_CHARTS
from tests.helpers.manifests import (
    SERVER_SERVICES,
    Docs,
    cluster_meaning,
    container,
    mounted_dynamic_config,
    mounted_server_config,
    objects,
    parse_manifests,
    server_deployments,
    store_settings,
)

SHIPPED = sorted(
    (p.name.removeprefix("temporal-") for p in MIRROR_CHARTS.glob("temporal-*")),
    key=version_key,
)
HELM_VERSIONS = ("v3", "v4")


def test_every_chart_of_the_issue_is_shipped():
    assert SHIPPED == ["0.52.0", "0.55.0", "0.63.0", "0.67.0", "0.73.2", "0.74.0", "1.1.1", "1.6.0"]


def environment(chart_version: str, name: str = "staging") -> Environment:
    """The environment with its chart replaced by the offline copy of `chart_version`."""
    env = load_environment(name)
    chart = ChartSpec(
        version=chart_version, local_path=str(MIRROR_CHARTS / f"temporal-{chart_version}")
    )
    return env.model_copy(update={"chart": chart})


def render_values(helm_binary: str, env: Environment, values: dict[str, Any]) -> Docs:
    helm = HelmCli(binary=helm_binary)
    text = helm.template(
        env.kubernetes.release, env.kubernetes.namespace, chart_reference(env.chart), values
    )
    return parse_manifests(text)


@functools.cache
def _rendered(helm_binary: str, chart_version: str) -> tuple[Environment, Docs]:
    env = environment(chart_version)
    return env, render_values(helm_binary, env, build_chart_values(env))


@pytest.fixture(params=[(c, h) for c in SHIPPED for h in HELM_VERSIONS], ids=lambda p: "-".join(p))
def rendered(request, helm_binaries) -> tuple[Environment, Docs]:
    chart_version, helm = request.param
    return _rendered(helm_binaries[helm], chart_version)


def app_version(env: Environment) -> str:
    """The server version the chart itself names (its Chart.yaml), read independently."""
    assert env.chart.local_path
    found = read_chart_metadata(Path(env.chart.local_path)).app_version
    assert found
    return found


# --- checks -----------------------------------------------------------------------------


def check_store_connections(docs: Docs, env: Environment) -> None:
    config = mounted_server_config(docs)
    persistence = config["persistence"]
    assert persistence["defaultStore"] == "default"
    assert persistence["visibilityStore"] == "visibility"
    for store, database in (
        ("default", env.database.default_store),
        ("visibility", env.database.visibility_store),
    ):
        sql = persistence["datastores"][store]["sql"]
        assert sql["pluginName"] == "mysql8", store
        assert sql["databaseName"] == database, store
        assert sql["connectAddr"] == f"{env.rds.endpoint}:{env.rds.port}", store
        assert sql["user"] == env.database.user, store
        assert sql["maxConns"] == env.database.max_conns, store
        assert sql["maxConnLifetime"] == env.database.max_conn_lifetime, store
        tls = sql["tls"]
        assert tls["enabled"] is True, store
        assert tls.get("caFile") == env.ca_bundle.mount_path, store
        assert "caData" not in tls, f"{store}: caData is not read by the MySQL driver"
        assert tls.get("enableHostVerification") is True, store
        assert tls.get("serverName") == env.db_tls_server_name, store


def check_passwords_from_existing_secret(docs: Docs, env: Environment) -> None:
    """Each store's password is the env variable its config names, and every server pod
    fills that variable from the declared Secret's key for the store."""
    secret = env.database.kubernetes_secret
    settings = store_settings(docs)
    assert settings["default"]["password"] == (secret.name, secret.default_store_key)
    assert settings["visibility"]["password"] == (secret.name, secret.visibility_store_key)


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
    """No Job the chart renders touches the database: the schema is this tool's job.
    (Charts 1.x always render their schema hook Job; with both stores' createDatabase and
    manageSchema off it only echoes.)"""
    for name, job in objects(docs, "Job").items():
        spec = job["spec"]["template"]["spec"]
        for c in [*(spec.get("initContainers") or []), *spec["containers"]]:
            command = " ".join([*(c.get("command") or []), *(c.get("args") or [])])
            assert "temporal-sql-tool" not in command, f"Job {name} runs {command}"
            assert not any(e["name"].startswith("SQL_") for e in c.get("env") or []), name


def check_server_image_pinned(docs: Docs, env: Environment) -> None:
    """Every server pod runs the server release the chart names (the hop's exact version)."""
    expected = f"temporalio/server:{app_version(env)}"
    for svc, dep in server_deployments(docs).items():
        assert container(dep)["image"] == expected, svc


def _values_pin(env: Environment, component: str) -> str:
    """`repository:tag` the chart's own values.yaml pins for `component`, read here."""
    assert env.chart.local_path
    values = yaml.safe_load((Path(env.chart.local_path) / "values.yaml").read_text())
    image = values[component]["image"]
    return f"{image['repository']}:{image['tag']}"


def check_images_are_the_charts_pins(docs: Docs, env: Environment) -> None:
    """The web UI and admintools pods run exactly the images the chart pins (the server's
    are check_server_image_pinned)."""
    deployments = objects(docs, "Deployment")
    for component in ("web", "admintools"):
        image = container(deployments[f"{env.kubernetes.release}-{component}"])["image"]
        assert image == _values_pin(env, component), component


def check_config_readable_by_the_image(docs: Docs, env: Environment) -> None:
    """Server images from 1.30 have no dockerize: the config they get must be the sprig
    template, read from the path TEMPORAL_SERVER_CONFIG_FILE_PATH names, with no dockerize
    shim mounted."""
    server_text = mounted_server_config(docs, raw=True)
    for svc, dep in server_deployments(docs).items():
        env_vars = {e["name"]: e.get("value") for e in container(dep)["env"]}
        mounts = {m["mountPath"] for m in container(dep)["volumeMounts"]}
        if version_key(app_version(env)) >= (1, 30, 0):
            assert server_text.startswith("# enable-template"), svc
            assert "{{ .Env." not in server_text, f"{svc}: dockerize syntax"
            assert env_vars.get("TEMPORAL_SERVER_CONFIG_FILE_PATH") == (
                "/etc/temporal/config/config_template.yaml"
            ), svc
            assert "/usr/local/bin/dockerize" not in mounts, svc
        else:
            assert "TEMPORAL_SERVER_CONFIG_FILE_PATH" not in env_vars, svc


CHECKS = {
    f.__name__: f
    for f in (
        check_store_connections,
        check_passwords_from_existing_secret,
        check_no_chart_secret,
        check_deployments_replicas_and_resources,
        check_ca_bundle_mounted,
        check_ingress_access_control,
        check_schema_jobs_off,
        check_server_image_pinned,
        check_images_are_the_charts_pins,
        check_config_readable_by_the_image,
    )
}


@pytest.mark.parametrize("check", CHECKS)
def test_generated_values_pass(rendered, check):
    env, docs = rendered
    CHECKS[check](docs, env)


# --- every check fails on its broken field ------------------------------------------------

_DELETE = object()
VIS = "server.config.persistence.visibility.sql"
DS_DEFAULT = "server.config.persistence.datastores.default.sql"
DS_VIS = "server.config.persistence.datastores.visibility.sql"

# (chart, check, dotted path, wrong value): the check named must fail on it.
BREAKAGES: list[tuple[str, str, str, Any]] = [
    *(
        (chart, check, path, wrong)
        for chart in ("0.52.0", "0.74.0")
        for check, path, wrong in (
            ("check_store_connections", f"{VIS}.tls", {"enabled": True, "caData": "LS0tLQ=="}),
            ("check_store_connections", "server.config.persistence.default.sql.port", 3307),
            ("check_store_connections", f"{VIS}.tls.serverName", _DELETE),
            ("check_store_connections", f"{VIS}.tls.enableHostVerification", False),
            ("check_store_connections", "server.config.persistence.default.sql.tls.serverName", ""),
            ("check_passwords_from_existing_secret", f"{VIS}.secretKey", _DELETE),
            ("check_no_chart_secret", f"{VIS}.existingSecret", _DELETE),
            ("check_deployments_replicas_and_resources", "server.history.resources", {}),
            ("check_deployments_replicas_and_resources", "server.matching.replicaCount", 3),
            ("check_ca_bundle_mounted", "server.additionalVolumeMounts", []),
            ("check_ingress_access_control", "web.ingress.annotations", {}),
            ("check_schema_jobs_off", "schema.setup.enabled", True),
            ("check_server_image_pinned", "server.image.tag", "1.25.1"),
            ("check_images_are_the_charts_pins", "admintools.image.tag", "1.25.2"),
        )
    ),
    ("0.74.0", "check_config_readable_by_the_image", "server.configMapsToMount", _DELETE),
    *(
        ("1.6.0", check, path, wrong)
        for check, path, wrong in (
            ("check_store_connections", f"{DS_VIS}.tls", {"enabled": True, "caData": "LS0tLQ=="}),
            ("check_store_connections", f"{DS_DEFAULT}.connectAddr", "elsewhere:3306"),
            ("check_store_connections", f"{DS_VIS}.tls.enableHostVerification", False),
            ("check_store_connections", f"{DS_DEFAULT}.tls.serverName", ""),
            # the password file another store's (#23.6: passwords as files from chart 1.3.0)
            (
                "check_passwords_from_existing_secret",
                f"{DS_VIS}.passwordCommand.args",
                ["/etc/temporal/secrets/db/default"],
            ),
            ("check_no_chart_secret", f"{DS_VIS}.passwordCommand", _DELETE),
            ("check_deployments_replicas_and_resources", "server.history.resources", {}),
            ("check_deployments_replicas_and_resources", "server.matching.replicaCount", 3),
            ("check_ca_bundle_mounted", "server.additionalVolumeMounts", []),
            ("check_ingress_access_control", "web.ingress.annotations", {}),
            ("check_schema_jobs_off", f"{DS_VIS}.manageSchema", True),
            ("check_server_image_pinned", "server.image.tag", "1.31.0"),
            ("check_images_are_the_charts_pins", "web.image.repository", "example/ui"),
            ("check_config_readable_by_the_image", "shims.dockerize", True),
        )
    ),
]


# The 1.x charts before 1.3.0 pass the passwords as env variables from the Secret.
BREAKAGES += [
    ("1.1.1", "check_passwords_from_existing_secret", f"{DS_VIS}.secretKey", _DELETE),
    ("1.1.1", "check_no_chart_secret", f"{DS_VIS}.existingSecret", _DELETE),
]


def _set(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        values = values[p]
    if value is _DELETE:
        del values[last]
    else:
        values[last] = value


@pytest.mark.parametrize(
    ("chart", "check", "path", "wrong"),
    BREAKAGES,
    ids=[f"{chart}:{check}:{path}" for chart, check, path, _ in BREAKAGES],
)
def test_each_check_catches_its_broken_field(helm_binaries, chart, check, path, wrong):
    env = environment(chart)
    values = copy.deepcopy(build_chart_values(env))
    if path == f"{VIS}.existingSecret":
        values["server"]["config"]["persistence"]["visibility"]["sql"]["password"] = "temporal"
    _set(values, path, wrong)
    docs = render_values(helm_binaries["v4"], env, values)
    with pytest.raises(AssertionError):
        CHECKS[check](docs, env)


def test_breakages_cover_every_check_in_both_layouts():
    for layout in ("persistence", "datastores"):
        broken = {check for chart, check, _, _ in BREAKAGES if values_layout(chart) == layout}
        assert broken == set(CHECKS), layout


# --- the same cluster in every layout -----------------------------------------------------


def test_the_layout_change_keeps_the_meaning(helm_binaries):
    """0.74.0 (the last chart of the old layout), 1.1.1 and 1.6.0 deploy the same database
    connections, passwords, CA mounts, replicas, resources and ingress."""
    meanings = {
        chart: cluster_meaning(_rendered(helm_binaries["v4"], chart)[1])
        for chart in ("0.74.0", "1.1.1", "1.6.0")
    }
    assert meanings["0.74.0"]["stores"]["visibility"]["password"] == (
        "temporal-db-secret",
        "visibility-password",
    )
    assert meanings["1.1.1"] == meanings["0.74.0"]
    assert meanings["1.6.0"] == meanings["0.74.0"]


def test_auth_url_access_control_renders_auth_annotations(helm_binaries):
    for chart in ("0.52.0", "1.6.0"):
        env = environment(chart, "production")
        docs = render_values(helm_binaries["v4"], env, build_chart_values(env))
        annotations = objects(docs, "Ingress")["temporal-web"]["metadata"]["annotations"]
        access = env.web_ingress.access
        assert annotations["nginx.ingress.kubernetes.io/auth-url"] == access.auth_url, chart
        assert annotations["nginx.ingress.kubernetes.io/auth-signin"] == access.auth_signin
        assert "nginx.ingress.kubernetes.io/whitelist-source-range" not in annotations


def test_extra_values_merge_last(helm_binaries):
    for chart in ("0.52.0", "1.6.0"):
        base = environment(chart)
        custom = base.model_copy(
            update={"extra_values": {"server": {"config": {"logLevel": "warn"}}}}
        )
        values = build_chart_values(custom)
        assert values["server"]["config"]["logLevel"] == "warn"
        # merged, not replaced: the persistence built from the model is still there
        assert values["server"]["config"]["persistence"]["defaultStore"] == "default"
        docs = render_values(helm_binaries["v4"], custom, values)
        assert mounted_server_config(docs)["log"]["level"] == "warn", chart


def test_declared_images_override_the_charts_in_both_layouts(helm_binaries):
    mirror = "registry.example.com:5000/mirror"
    images = ImagesSpec(
        server=ImageOverride(repository=f"{mirror}/server"),
        admin_tools=ImageOverride(repository=f"{mirror}/admin-tools", tag="1.29.1-custom"),
        web=ImageOverride(tag="2.99.0"),
    )
    for chart in ("0.52.0", "1.6.0"):
        env = environment(chart).model_copy(update={"images": images})
        docs = render_values(helm_binaries["v4"], env, build_chart_values(env))
        deployments = objects(docs, "Deployment")
        server_tag = _values_pin(env, "server").split(":")[1]
        for svc, dep in server_deployments(docs).items():
            assert container(dep)["image"] == f"{mirror}/server:{server_tag}", svc
        admintools = container(deployments["temporal-admintools"])["image"]
        assert admintools == f"{mirror}/admin-tools:1.29.1-custom", chart
        web = container(deployments["temporal-web"])["image"]
        assert web == "temporalio/ui:2.99.0", chart


# --- dynamic config (#22.3) ------------------------------------------------------------------


def with_fields(env: Environment, **fields: Any) -> Environment:
    """`env` with top-level fields given as they are written in a file, validated."""
    return Environment.model_validate({**env.model_dump(by_alias=True), **fields})


DYNAMIC_CONFIG = {
    "frontend.namespaceRPS": [
        {"value": 2400},
        {"value": 400, "constraints": {"namespace": "batch-jobs"}},
    ],
    "matching.numTaskqueueReadPartitions": [
        {"value": 8, "constraints": {"namespace": "my-ns", "taskQueueName": "busy"}}
    ],
    "history.defaultActivityRetryPolicy": [{"value": {"MaximumAttempts": 3}}],
}


def test_dynamic_config_is_the_file_every_server_reads_in_both_layouts(helm_binaries):
    """The declared keys are what the servers' dynamic config file holds, followed from the
    server config's dynamicConfigClient.filepath through each pod's mount to the ConfigMap."""
    expected = {
        key: [{"constraints": {}, **item} for item in values]
        for key, values in DYNAMIC_CONFIG.items()
    }
    for chart in ("0.52.0", "1.6.0"):
        env = with_fields(environment(chart), dynamic_config=DYNAMIC_CONFIG)
        docs = render_values(helm_binaries["v4"], env, build_chart_values(env))
        for svc in SERVER_SERVICES:
            name, content = mounted_dynamic_config(docs, svc)
            assert name == "temporal-dynamic-config", (chart, svc)
            assert content == expected, (chart, svc)


# --- archival (#22.1) -----------------------------------------------------------------------

ARCHIVAL = {
    "s3store": {"region": "eu-west-1", "endpoint": "https://s3.eu-west-1.amazonaws.com"},
    "history": {"state": "enabled", "uri": "s3://acme-temporal-archive/history"},
    "visibility": {"state": "disabled"},
}


def server_starts_with(archival: dict[str, Any], defaults: dict[str, Any], kind: str) -> bool:
    """The server's start-up rule for one kind (common/config/archival.go
    isArchivalConfigValid), on the config as the server reads it."""
    cfg = archival.get(kind) or {}
    default = (defaults.get("archival") or {}).get(kind) or {}
    enabled = cfg.get("state") == "enabled"
    if enabled:
        return bool(default.get("URI")) and bool(cfg.get("provider"))
    return (
        not cfg.get("enableRead")
        and default.get("state") != "enabled"
        and not default.get("URI")
        and not cfg.get("provider")
    )


def test_archival_is_the_server_config_every_server_reads_in_both_layouts(helm_binaries):
    """The server config each pod mounts enables history archival to the declared bucket
    through the s3store provider (region and endpoint, no credentials), keeps visibility
    archival disabled, and is a config the server starts with."""
    for chart in ("0.52.0", "1.6.0"):
        env = with_fields(environment(chart), archival=ARCHIVAL)
        config = mounted_server_config(
            render_values(helm_binaries["v4"], env, build_chart_values(env))
        )
        assert config["archival"]["history"] == {
            "state": "enabled",
            "enableRead": True,
            "provider": {
                "s3store": {
                    "region": "eu-west-1",
                    "endpoint": "https://s3.eu-west-1.amazonaws.com",
                }
            },
        }, chart
        assert config["archival"]["visibility"].get("state") == "disabled", chart
        assert config["namespaceDefaults"]["archival"]["history"] == {
            "state": "disabled",
            "URI": "s3://acme-temporal-archive/history",
        }, chart
        for kind in ("history", "visibility"):
            assert server_starts_with(config["archival"], config["namespaceDefaults"], kind)


def test_without_archival_both_kinds_stay_disabled(rendered):
    """Nothing declared: the chart's default (`status: disabled`, a key the server does not
    read) leaves both kinds without a state, which the server reads as disabled."""
    _, docs = rendered
    config = mounted_server_config(docs)
    for kind in ("history", "visibility"):
        state = ((config.get("archival") or {}).get(kind) or {}).get("state", "")
        assert state in ("", "disabled"), kind
        assert server_starts_with(
            config.get("archival") or {}, config.get("namespaceDefaults") or {}, kind
        )


# --- Web UI sign-in (#22.4) -----------------------------------------------------------------

SIGN_IN = {
    "auth": "oidc",
    "oidc": {
        "provider_url": "https://login.example.com/realms/temporal",
        "client_id": "temporal-ui",
        "client_secret_ref": {"name": "temporal-ui-oidc", "key": "client-secret"},
        "scopes": ["openid", "email"],
    },
}


def with_sign_in(env: Environment) -> Environment:
    return with_fields(env, web_ui=SIGN_IN, dynamic_config=DYNAMIC_CONFIG)


def check_ui_sign_in(docs: Docs) -> None:
    """The UI container's environment carries the OIDC settings under the names the UI
    server reads, the client secret only as a reference to the declared Secret key; no
    object anywhere holds a value for it, and the chart renders no Secret."""
    web = container(objects(docs, "Deployment")["temporal-web"])
    env_vars = {e["name"]: e for e in web["env"]}
    assert {name: e.get("value") for name, e in env_vars.items() if "value" in e} == {
        "TEMPORAL_ADDRESS": env_vars["TEMPORAL_ADDRESS"]["value"],
        "TEMPORAL_AUTH_ENABLED": "true",
        "TEMPORAL_AUTH_TYPE": "oidc",
        "TEMPORAL_AUTH_PROVIDER_URL": "https://login.example.com/realms/temporal",
        "TEMPORAL_AUTH_CLIENT_ID": "temporal-ui",
        "TEMPORAL_AUTH_CALLBACK_URL": "https://temporal.staging.example.com/auth/sso/callback",
        "TEMPORAL_AUTH_SCOPES": "openid,email",
    }
    assert env_vars.get("TEMPORAL_AUTH_CLIENT_SECRET") == {
        "name": "TEMPORAL_AUTH_CLIENT_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "temporal-ui-oidc", "key": "client-secret"}},
    }
    for doc in docs:
        for c in _containers(doc):
            for e in c.get("env") or []:
                if "SECRET" in e["name"] or "PASSWORD" in e["name"]:
                    assert "value" not in e, (doc["metadata"]["name"], e["name"])
    assert objects(docs, "Secret") == {}


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = (doc.get("spec") or {}).get("template", {}).get("spec") or doc.get("spec") or {}
    if not isinstance(spec, dict):
        return []
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def test_oidc_sign_in_is_the_ui_containers_environment_in_both_layouts(helm_binaries):
    for chart in ("0.52.0", "1.6.0"):
        env = with_sign_in(environment(chart))
        docs = render_values(helm_binaries["v4"], env, build_chart_values(env))
        check_ui_sign_in(docs)


def test_the_sign_in_check_catches_a_secret_value_and_a_lost_reference(helm_binaries):
    env = with_sign_in(environment("1.6.0"))
    values = build_chart_values(env)
    for wrong in (
        [{"name": "TEMPORAL_AUTH_CLIENT_SECRET", "value": "plain"}],
        [e for e in values["web"]["additionalEnv"] if e["name"] != "TEMPORAL_AUTH_CLIENT_SECRET"],
    ):
        broken = copy.deepcopy(values)
        broken["web"]["additionalEnv"] = [
            *(e for e in values["web"]["additionalEnv"] if "SECRET" not in e["name"]),
            *(e for e in wrong if "SECRET" in e["name"]),
        ]
        with pytest.raises(AssertionError):
            check_ui_sign_in(render_values(helm_binaries["v4"], env, broken))


# --- readiness (#23.4) ----------------------------------------------------------------------
WORKFLOW_SERVICE = "temporal.api.workflowservice.v1.WorkflowService"


def test_the_frontend_is_ready_when_its_workflow_service_serves(rendered):
    """1.x: the frontend's readiness is the gRPC health of the WorkflowService on its `rpc`
    port, so helm --wait waits for SERVING; the 0.x charts render no readiness probe and
    take none (docs/security.md)."""
    env, docs = rendered
    frontend = container(server_deployments(docs)["frontend"])
    probe = frontend.get("readinessProbe")
    if values_layout(env.chart.version) == "persistence":
        assert probe is None
        return
    rpc = next(p["containerPort"] for p in frontend["ports"] if p["name"] == "rpc")
    assert probe == {"grpc": {"port": rpc, "service": WORKFLOW_SERVICE}}


def test_a_frontend_serving_tls_keeps_the_charts_tcp_readiness(helm_binaries):
    """The kubelet's gRPC probe speaks no TLS: it would never see SERVING."""
    env = environment("1.6.0")
    env = env.model_copy(
        update={"frontend": env.frontend.model_copy(update={"tls": FrontendTls(enabled=True)})}
    )
    docs = render_values(helm_binaries["v3"], env, build_chart_values(env))
    probe = container(server_deployments(docs)["frontend"])["readinessProbe"]
    assert probe == {"tcpSocket": {"port": "rpc"}}


# --- secrets as files (#23.6) ---------------------------------------------------------------


def test_db_passwords_are_files_where_the_chart_allows_it(rendered):
    """From chart 1.3.0 no container's environment holds a DB password: the server cats the
    Secret's key, mounted read-only for its user only (owner and fsGroup); before it, the
    chart can only pass them as env variables from the Secret (docs/security.md)."""
    env, docs = rendered
    secret = env.database.kubernetes_secret
    from_secret = [
        (dep["metadata"]["name"], e["name"])
        for kind in ("Deployment", "Job")
        for dep in objects(docs, kind).values()
        for c in dep["spec"]["template"]["spec"]["containers"]
        for e in c.get("env") or []
        if (e.get("valueFrom") or {}).get("secretKeyRef", {}).get("name") == secret.name
    ]
    if version_key(env.chart.version) < (1, 3, 0):
        assert from_secret, "the chart's env variables (a chart limit)"
        return
    assert from_secret == []
    for svc, dep in server_deployments(docs).items():
        pod = dep["spec"]["template"]["spec"]
        (volume,) = [
            v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == secret.name
        ]
        assert volume["secret"]["defaultMode"] == 0o440, svc
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"], svc
        (mount,) = [m for m in container(dep)["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["readOnly"] is True, svc
