"""Loading environment files: layering, validation messages (file, key, what is allowed)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from declared_state.loader import InvalidEnvironment, load_environment
from declared_state.models import AwsSecretsManagerPasswords, ExistingKubernetesSecret, ImagePin
from operations import environments
from tests.helpers import copy_environments


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    return copy_environments(tmp_path)


def edit(env_dir: Path, name: str, change) -> None:
    path = env_dir / f"{name}.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    change(data)
    path.write_text(yaml.safe_dump(data))


def problems(env_dir: Path, name: str = "staging") -> list[str]:
    with pytest.raises(InvalidEnvironment) as info:
        load_environment(name, env_dir)
    return [str(p) for p in info.value.problems]


def test_staging_layers_base_then_environment_file():
    env = load_environment("staging")
    # from base.yaml
    assert env.chart.version == "0.52.0"
    assert env.services.history.resources.limits.memory == "256Mi"
    assert env.database.kubernetes_secret.visibility_store_key == "visibility-password"
    # from staging.yaml
    assert env.rds.endpoint.startswith("temporal-staging.")
    assert env.web_ingress.host == "temporal.staging.example.com"
    assert isinstance(env.database.password_source, AwsSecretsManagerPasswords)
    # derived
    assert env.kubernetes.namespace == "my-app-staging"
    assert env.chart.target_server_version == "1.25.2"
    assert env.schema_versions.default_store == "1.14"
    assert env.frontend_address == "temporal-frontend.my-app-staging.svc.cluster.local:7233"
    assert env.temporal_namespaces[0].retention == timedelta(hours=168)


def test_production_overrides_maps_and_replaces_lists():
    env = load_environment("production")
    assert env.services.history.replicas == 3
    # frontend from production, matching too; worker still from base
    assert env.services.worker.resources.limits.memory == "128Mi"
    assert isinstance(env.database.password_source, ExistingKubernetesSecret)
    assert [ns.name for ns in env.temporal_namespaces] == ["my-ns", "my-ns-archive"]
    assert env.temporal_namespaces[1].retention == timedelta(days=30)
    assert env.approval_required is True


def test_models_are_frozen():
    env = load_environment("staging")
    with pytest.raises(Exception, match="frozen"):
        env.rds.port = 1  # type: ignore[misc]


def test_unknown_environment_lists_the_existing_ones(env_dir):
    (found,) = problems(env_dir, "stagin")
    assert "unknown environment 'stagin'" in found
    assert "available: local, production, staging" in found


def test_unknown_key_names_the_file_and_key_path(env_dir):
    edit(env_dir, "staging", lambda d: d["rds"].update(endpont="x"))
    (found,) = problems(env_dir)
    assert found.startswith(str(env_dir / "staging.yaml")) or "staging.yaml: rds.endpont" in found
    assert "rds.endpont: unknown key" in found


def test_a_wrong_key_in_base_is_blamed_on_base(env_dir):
    edit(env_dir, "base", lambda d: d["services"]["history"].update(replicas="two"))
    (found,) = problems(env_dir)
    assert "base.yaml: services.history.replicas:" in found
    assert "valid integer" in found


def test_wrong_type(env_dir):
    edit(env_dir, "staging", lambda d: d["rds"].update(port="three-three-o-six"))
    (found,) = problems(env_dir)
    assert "staging.yaml: rds.port: Input should be a valid integer" in found


@pytest.mark.parametrize(
    ("retention", "is_global", "minimum"),
    [("30m", False, "1h0m0s"), ("12h", True, "24h0m0s")],
)
def test_retention_below_the_server_minimum(env_dir, retention, is_global, minimum):
    edit(
        env_dir,
        "staging",
        lambda d: d.update(
            temporal_namespaces=[{"name": "ns1", "retention": retention, "global": is_global}]
        ),
    )
    (found,) = problems(env_dir)
    assert "temporal_namespaces[0].retention:" in found
    assert f"minimum of {minimum}" in found


def test_retention_at_the_minimum_is_accepted(env_dir):
    edit(
        env_dir,
        "staging",
        lambda d: d.update(temporal_namespaces=[{"name": "ns1", "retention": "1h"}]),
    )
    assert load_environment("staging", env_dir).temporal_namespaces[0].retention == timedelta(
        hours=1
    )


def test_ingress_without_access_control_is_refused(env_dir):
    edit(env_dir, "staging", lambda d: d["web_ingress"].pop("access"))
    (found,) = problems(env_dir)
    assert "web_ingress.access: the Web UI ingress has no access control" in found
    assert "public: true" in found


def test_ingress_may_be_public_when_written_explicitly(env_dir):
    def public(d):
        d["web_ingress"].pop("access")
        d["web_ingress"]["public"] = True

    edit(env_dir, "staging", public)
    assert load_environment("staging", env_dir).web_ingress.public is True


def test_invalid_kubernetes_namespace(env_dir):
    edit(env_dir, "staging", lambda d: d["kubernetes"].update(namespace="My_App"))
    (found,) = problems(env_dir)
    assert "kubernetes.namespace: 'My_App' is not a valid Kubernetes name" in found


def test_invalid_temporal_namespace_name(env_dir):
    edit(env_dir, "staging", lambda d: d.update(temporal_namespaces=[{"name": "bad name!"}]))
    (found,) = problems(env_dir)
    assert (
        "temporal_namespaces[0].name: 'bad name!' is not a valid Temporal namespace name" in found
    )


def test_duplicate_namespace_names(env_dir):
    edit(
        env_dir,
        "staging",
        lambda d: d.update(temporal_namespaces=[{"name": "a-ns"}, {"name": "a-ns"}]),
    )
    (found,) = problems(env_dir)
    assert "temporal_namespaces: namespace 'a-ns' is declared more than once" in found


def test_chart_version_outside_the_supported_table(env_dir):
    edit(env_dir, "staging", lambda d: d.update(chart={"version": "0.40.0"}))
    (found,) = problems(env_dir)
    assert "chart.version: chart 0.40.0 is not in the supported table" in found
    assert "0.51.0-0.52.x" in found and "1.6.0" in found


def test_server_version_that_contradicts_the_chart(env_dir):
    edit(env_dir, "staging", lambda d: d.update(chart={"server_version": "1.26.2"}))
    (found,) = problems(env_dir)
    assert "chart.server_version: chart 0.52.0 deploys server 1.25.2, not 1.26.2" in found


def test_every_chart_line_of_the_tables_loads(env_dir):
    edit(env_dir, "staging", lambda d: d.update(chart={"version": "1.4.0"}))
    env = load_environment("staging", env_dir)
    assert env.chart.target_server_version == "1.31.1"
    assert (env.schema_versions.default_store, env.schema_versions.visibility_store) == (
        "1.19",
        "1.14",
    )


def test_a_broken_release_is_refused_naming_the_next_good_one(env_dir):
    edit(env_dir, "staging", lambda d: d.update(chart={"version": "0.56.0"}))
    (found,) = problems(env_dir)
    assert (
        "chart.version: chart 0.56.0: Temporal server 1.27.0 is a release known to be broken"
        in found
    )
    assert "1.27.1 (chart 0.56.1-0.58.x)" in found


def test_every_1_29_chart_deploys_one_exact_server(env_dir):
    # Upstream Chart.yaml appVersions: 0.69.0 -> 1.29.1, 0.70.0/0.71.0 -> 1.29.0, 0.72.0 on -> 1.29.1.
    for chart, server in (("0.69.0", "1.29.1"), ("0.70.0", "1.29.0"), ("0.72.0", "1.29.1")):
        edit(env_dir, "staging", lambda d, chart=chart: d.update(chart={"version": chart}))
        assert load_environment("staging", env_dir).chart.target_server_version == server
    edit(
        env_dir,
        "staging",
        lambda d: d.update(chart={"version": "0.70.0", "server_version": "1.29.1"}),
    )
    (found,) = problems(env_dir)
    assert "chart.server_version: chart 0.70.0 deploys server 1.29.0, not 1.29.1" in found


def _local_chart(tmp_path: Path, version: str, app_version: str) -> Path:
    chart = tmp_path / f"chart-{version}"
    chart.mkdir()
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump(
            {"apiVersion": "v2", "name": "temporal", "version": version, "appVersion": app_version}
        )
    )
    return chart


def test_a_local_chart_names_its_server_version(env_dir, tmp_path):
    """A chart on disk is better evidence than the tables: its Chart.yaml appVersion is the
    server version, also for a chart the tables do not know."""
    chart = _local_chart(tmp_path, "1.5.9", "1.31.2")
    edit(
        env_dir, "staging", lambda d: d.update(chart={"version": "1.5.9", "local_path": str(chart)})
    )
    assert load_environment("staging", env_dir).chart.target_server_version == "1.31.2"


def test_a_local_chart_contradicting_the_declared_server_version(env_dir, tmp_path):
    chart = _local_chart(tmp_path, "0.52.0", "1.25.2")
    edit(
        env_dir,
        "staging",
        lambda d: d.update(chart={"local_path": str(chart), "server_version": "1.25.1"}),
    )
    (found,) = problems(env_dir)
    assert "staging.yaml: chart.server_version: 1.25.1 contradicts the chart at" in found
    assert "whose Chart.yaml appVersion is 1.25.2" in found


def test_missing_required_key(env_dir):
    edit(env_dir, "staging", lambda d: d["rds"].pop("instance_id"))
    (found,) = problems(env_dir)
    assert "rds.instance_id: required key is missing" in found


def test_every_problem_is_reported_at_once(env_dir):
    def break_three(d):
        d["rds"]["port"] = "x"
        d["kubernetes"]["namespace"] = "UPPER"
        d["surprise"] = 1

    edit(env_dir, "staging", break_three)
    found = problems(env_dir)
    assert len(found) == 3
    assert any("surprise: unknown key" in p for p in found)


def test_invalid_yaml_names_the_line(env_dir):
    (env_dir / "staging.yaml").write_text("rds:\n  port: [1,\n")
    (found,) = problems(env_dir)
    assert "staging.yaml: line" in found
    assert "not valid YAML" in found


def test_variables_are_interpolated_and_a_missing_one_is_named(env_dir):
    edit(
        env_dir,
        "staging",
        lambda d: d["rds"].update(endpoint="${DB_HOST}", port="${DB_PORT:-3307}"),
    )
    env = load_environment("staging", env_dir, variables={"DB_HOST": "db.internal"})
    assert (env.rds.endpoint, env.rds.port) == ("db.internal", 3307)
    with pytest.raises(InvalidEnvironment) as info:
        load_environment("staging", env_dir, variables={})
    assert "rds.endpoint: environment variable DB_HOST is not set" in str(info.value)


def test_extra_values_are_kept_verbatim(env_dir):
    edit(
        env_dir,
        "staging",
        lambda d: d.update(extra_values={"server": {"config": {"logLevel": "warn"}}}),
    )
    assert load_environment("staging", env_dir).extra_values == {
        "server": {"config": {"logLevel": "warn"}}
    }


# --- files that cannot be read, or should not be (issue #10 items 6-9) ------------------


def append(env_dir: Path, text: str, name: str = "staging") -> Path:
    """Add raw YAML text to an environment file (aliases and duplicates survive only as text)."""
    path = env_dir / f"{name}.yaml"
    path.write_text(path.read_text() + "\n" + text)
    return path


def billion_laughs(levels: int) -> str:
    """The classic alias bomb under extra_values: each level is 9 aliases of the one before."""
    lines = ["extra_values:", '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"  l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_from_the_node_graph(env_dir):
    # 6 levels expand to 9**6 = 531441 strings: harmless to build, but far above the cap.
    append(env_dir, billion_laughs(6))
    (found,) = problems(env_dir)
    assert found.startswith(f"{env_dir / 'staging.yaml'}: extra_values.")
    assert "expands to more than 100000 values (through YAML aliases/anchors?)" in found


def test_a_recursive_alias_is_refused(env_dir):
    append(env_dir, "extra_values: &loop\n  again: *loop\n")
    (found,) = problems(env_dir)
    assert "extra_values.again: refers to itself through an alias" in found


def test_deep_nesting_is_refused(env_dir):
    append(env_dir, "extra_values: " + "[" * 2000 + "]" * 2000 + "\n")
    (found,) = problems(env_dir)
    assert "staging.yaml: nested more than 64 levels deep" in found


def test_aliases_within_the_limits_still_load(env_dir):
    # base.yaml shares one resources block between four services with &small / *small.
    env = load_environment("staging", env_dir)
    assert env.services.web.resources.limits.memory == "128Mi"


def test_a_file_above_the_size_cap_is_refused(env_dir):
    append(env_dir, "# " + "x" * (300 * 1024) + "\n")
    (found,) = problems(env_dir)
    assert (
        found == f"{env_dir / 'staging.yaml'}: is larger than 256 KiB; environment files are small"
    )


def test_a_binary_file_is_named_not_a_traceback(env_dir):
    (env_dir / "staging.yaml").write_bytes(b"rds:\n  port: \x9f\xff\x00\x01\n")
    (found,) = problems(env_dir)
    assert "staging.yaml: is not UTF-8 text (a binary file?): byte 0x9f at offset 13" in found


def test_a_directory_named_like_an_environment_file(env_dir):
    (env_dir / "probe.yaml").mkdir()
    (found,) = problems(env_dir, "probe")
    assert found == f"{env_dir / 'probe.yaml'}: is a directory, not an environment file"
    # and it is no environment to offer either
    (unknown,) = problems(env_dir, "prob")
    assert "available: local, production, staging" in unknown


def test_a_missing_base_yaml_is_a_problem_not_skipped(env_dir):
    (env_dir / "base.yaml").unlink()
    (found,) = problems(env_dir)
    assert found.startswith(f"{env_dir / 'base.yaml'}: does not exist")


def test_problems_of_both_files_are_reported_at_once(env_dir):
    (env_dir / "base.yaml").write_bytes(b"\xff")
    (env_dir / "staging.yaml").write_text("a: 1\na: 2\n")
    found = problems(env_dir)
    assert len(found) == 2
    assert "base.yaml: is not UTF-8 text" in found[0]
    assert "staging.yaml: a: duplicate key (lines 1 and 2)" in found[1]


def test_a_missing_environments_folder_says_how_to_point_at_one(tmp_path):
    (found,) = problems(tmp_path / "nowhere")
    assert "no environments folder here" in found
    assert "--environments-dir" in found


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("approval_required: true\napproval_required: false\n", "approval_required"),
        ("drift_check:\n  policy: ask\n  policy: report\n", "drift_check.policy"),
    ],
)
def test_duplicate_keys_are_refused_with_both_lines(env_dir, text, key):
    path = append(env_dir, text)
    leaf = key.split(".")[-1]
    lines = [
        i
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if line.strip().startswith(f"{leaf}:")
    ]
    (found,) = problems(env_dir)
    assert found == (
        f"{path}: {key}: duplicate key (lines {lines[-2]} and {lines[-1]}); "
        "keep one: YAML would silently use the last"
    )


def test_a_merge_key_may_be_overridden(env_dir):
    append(env_dir, "drift_check:\n  <<: {interval: 2h, policy: ask}\n  policy: report\n")
    env = load_environment("staging", env_dir)
    assert (env.drift_check.interval, env.drift_check.policy) == (timedelta(hours=2), "report")


@pytest.mark.parametrize("name", ["../../../../tmp/x/probe", "a/b", "Staging", "-x", "x" * 64, ""])
def test_environment_names_are_plain_names(env_dir, name):
    (found,) = problems(env_dir, name)
    assert f"{name!r} is not an environment name" in found


# --- values the server or chart would take differently (item 10) -----------------------


def test_retention_above_the_server_maximum_is_refused(env_dir):
    edit(
        env_dir,
        "staging",
        lambda d: d.update(temporal_namespaces=[{"name": "ns1", "retention": "876001h"}]),
    )
    (found,) = problems(env_dir)
    assert (
        "temporal_namespaces[0].retention: 876001h0m0s is above the server's maximum of 876000h0m0s"
        in found
    )


def test_retention_at_the_server_maximum_is_accepted(env_dir):
    edit(
        env_dir,
        "staging",
        lambda d: d.update(temporal_namespaces=[{"name": "ns1", "retention": "36500d"}]),
    )
    assert load_environment("staging", env_dir).temporal_namespaces[0].retention == timedelta(
        hours=876000
    )


@pytest.mark.parametrize("value", ["soon", "1 hour", "0s", "500ms", -5, True, "1h-1m", ""])
def test_max_conn_lifetime_must_be_a_duration(env_dir, value):
    edit(
        env_dir,
        "staging",
        lambda d: d.update(database={**d["database"], "max_conn_lifetime": value}),
    )
    (found,) = problems(env_dir)
    assert "staging.yaml: database.max_conn_lifetime:" in found


@pytest.mark.parametrize(
    ("value", "rendered"),
    [("1h", "1h"), ("90m", "1h30m"), ("1d", "24h"), (45, "45s"), ("1h0m0s", "1h")],
)
def test_max_conn_lifetime_is_kept_in_the_form_go_reads(env_dir, value, rendered):
    edit(
        env_dir,
        "staging",
        lambda d: d.update(database={**d["database"], "max_conn_lifetime": value}),
    )
    assert load_environment("staging", env_dir).database.max_conn_lifetime == rendered


# --- extra_values never overrides the model or carries a secret (item 11) --------------


@pytest.mark.parametrize(
    ("extra", "key", "advice"),
    [
        (
            {
                "server": {
                    "config": {"persistence": {"default": {"sql": {"tls": {"enabled": False}}}}}
                }
            },
            "server.config.persistence.default.sql.tls.enabled",
            "TLS to the database is always on",
        ),
        (
            {
                "server": {
                    "config": {
                        "persistence": {
                            "visibility": {"sql": {"tls": {"enableHostVerification": False}}}
                        }
                    }
                }
            },
            "server.config.persistence.visibility.sql.tls.enableHostVerification",
            "set ca_bundle and database.tls_server_name",
        ),
        (
            {
                "web": {
                    "ingress": {
                        "annotations": {
                            "nginx.ingress.kubernetes.io/whitelist-source-range": "0.0.0.0/0"
                        }
                    }
                }
            },
            "web.ingress.annotations.nginx.ingress.kubernetes.io/whitelist-source-range",
            "use web_ingress.access.allowed_cidrs",
        ),
        (
            {
                "web": {
                    "ingress": {
                        "annotations": {"nginx.ingress.kubernetes.io/auth-url": "https://x"}
                    }
                }
            },
            "web.ingress.annotations.nginx.ingress.kubernetes.io/auth-url",
            "use web_ingress.access.auth_url and auth_signin",
        ),
        ({"web": {"ingress": {"annotations": {}}}}, None, None),  # an empty map changes nothing
        (
            {"web": {"ingress": {"annotations": None}}},
            "web.ingress.annotations",
            "add annotations one by one",
        ),
        ({"web": {"ingress": {"tls": []}}}, "web.ingress.tls", "use web_ingress.tls_secret"),
        (
            {
                "server": {
                    "config": {"persistence": {"default": {"sql": {"existingSecret": "mine"}}}}
                }
            },
            "server.config.persistence.default.sql.existingSecret",
            "database.kubernetes_secret",
        ),
        (
            {
                "server": {
                    "config": {"persistence": {"visibility": {"sql": {"secretKey": "password"}}}}
                }
            },
            "server.config.persistence.visibility.sql.secretKey",
            "database.kubernetes_secret",
        ),
        ({"schema": {"setup": {"enabled": True}}}, "schema.setup.enabled", "schema jobs stay off"),
        (
            {"server": {"frontend": {"replicaCount": 3}}},
            "server.frontend.replicaCount",
            "use services.frontend.replicas",
        ),
        ({"server": {"additionalVolumes": []}}, "server.additionalVolumes", "ca_bundle"),
        (
            {"server": {"config": {"persistence": "none"}}},
            "server.config.persistence",
            "declared by rds and database",
        ),
    ],
)
def test_extra_values_may_not_override_the_model(env_dir, extra, key, advice):
    edit(env_dir, "staging", lambda d: d.update(extra_values=extra))
    if key is None:
        assert load_environment("staging", env_dir).extra_values == extra
        return
    (found,) = problems(env_dir)
    assert (
        f"staging.yaml: extra_values.{key}: overrides a chart value the environment model owns"
        in found
    )
    assert advice in found


def test_an_extra_value_set_in_base_yaml_is_blamed_on_base(env_dir):
    edit(
        env_dir, "base", lambda d: d.update(extra_values={"schema": {"update": {"enabled": True}}})
    )
    (found,) = problems(env_dir)
    assert "base.yaml: extra_values.schema.update.enabled: overrides" in found


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        (
            {"server": {"config": {"persistence": {"default": {"sql": {"password": "hunter2"}}}}}},
            "server.config.persistence.default.sql.password",
        ),
        ({"web": {"additionalEnv": [{"name": "X", "apiKey": "k"}]}}, "web.additionalEnv[0].apiKey"),
        (
            {"server": {"archival": {"s3": {"secretAccessKey": "k"}}}},
            "server.archival.s3.secretAccessKey",
        ),
        ({"admintools": {"auth_token": "t"}}, "admintools.auth_token"),
    ],
)
def test_password_like_keys_are_refused_anywhere_in_extra_values(env_dir, extra, key):
    edit(env_dir, "staging", lambda d: d.update(extra_values=extra))
    (found,) = problems(env_dir)
    assert f"staging.yaml: extra_values.{key}: looks like a secret value" in found


def test_extra_values_may_add_what_the_model_does_not_cover(env_dir):
    extra = {
        "server": {"config": {"logLevel": "warn"}, "frontend": {"podAnnotations": {"a": "b"}}},
        "web": {"ingress": {"annotations": {"example.com/team": "platform"}}},
        "imagePullSecrets": [{"name": "registry"}],
        "server.secretLabels": {"team": "platform"},
    }
    edit(env_dir, "staging", lambda d: d.update(extra_values=extra))
    assert load_environment("staging", env_dir).extra_values == extra


# --- a public Web UI is declared per environment (item 12) ------------------------------


def test_public_may_not_come_from_base_yaml(env_dir):
    edit(env_dir, "base", lambda d: d["web_ingress"].update(public=True))
    edit(env_dir, "staging", lambda d: d["web_ingress"].pop("access"))
    (found,) = problems(env_dir)
    assert found.startswith(f"{env_dir / 'base.yaml'}: web_ingress.public: may only be set in")


def test_an_environment_too_large_for_a_workflow_input_is_refused(env_dir):
    # 40 KiB of text repeated 30 times through one alias: a small file, a 1.2 MB input.
    chunk = ", ".join(f'"{i:04d}-' + "x" * 1000 + '"' for i in range(40))
    copies = ", ".join(["*big"] * 30)
    path = append(env_dir, f"extra_values:\n  big: &big [{chunk}]\n  copies: [{copies}]\n")
    assert path.stat().st_size < 64 * 1024
    load_environment("staging", env_dir)  # valid as a declaration
    with pytest.raises(InvalidEnvironment) as info:
        environments.load("staging", env_dir)
    (found,) = [str(p) for p in info.value.problems]
    assert found.startswith(f"{path}: the environment makes a workflow input of 12")
    assert "KiB; the limit is 1024 KiB" in found


def test_an_allow_list_may_not_be_added_where_the_model_uses_auth(env_dir):
    # production declares auth_url and no CIDRs: the model sets no allow-list annotation, and
    # an allow-list from extra_values would still change who reaches the UI.
    annotation = "nginx.ingress.kubernetes.io/whitelist-source-range"
    edit(
        env_dir,
        "production",
        lambda d: d.update(
            extra_values={"web": {"ingress": {"annotations": {annotation: "0.0.0.0/0"}}}}
        ),
    )
    (found,) = problems(env_dir, "production")
    assert f"production.yaml: extra_values.web.ingress.annotations.{annotation}: overrides" in found
    assert "use web_ingress.access.allowed_cidrs" in found


def test_drift_check_ignore_rules_load_and_bad_ones_are_named(env_dir):
    def rules(data):
        data["drift_check"] = {
            "ignore": [{"kind": "Deployment", "name": "temporal-*", "path": "/spec/replicas"}]
        }

    edit(env_dir, "staging", rules)
    (rule,) = load_environment("staging", env_dir).drift_check.ignore
    assert (rule.kind, rule.name, rule.path) == ("Deployment", "temporal-*", "/spec/replicas")
    assert rule.matches("Deployment", "temporal-frontend", "/spec/replicas")
    assert not rule.matches("Deployment", "other", "/spec/replicas")
    assert not rule.matches("Deployment", "temporal-frontend", "/spec/template")

    def bad(data):
        data["drift_check"] = {
            "ignore": [
                {"kind": "Deploy", "path": "/spec/replicas"},
                {"kind": "Deployment", "path": "spec/replicas"},
                {"kind": "ConfigMap", "path": "/spec/replicas"},
                {"kind": "Deployment", "path": "/metadata/name"},
                {"kind": "Deployment", "path": "/spec", "paths": "x"},
            ]
        }

    edit(env_dir, "staging", bad)
    found = problems(env_dir)
    file = f"{env_dir / 'staging.yaml'}"
    assert any(
        p.startswith(f"{file}: drift_check.ignore[0].kind: 'Deploy' is not a kind the drift check")
        and "Deployment" in p
        for p in found
    ), found
    assert any(
        p.startswith(f"{file}: drift_check.ignore[1].path: 'spec/replicas' is not a JSON pointer")
        for p in found
    ), found
    assert any(
        p.startswith(f"{file}: drift_check.ignore[2].path: '/spec/replicas' is not a field")
        and "/data, /binaryData" in p
        for p in found
    ), found
    assert any(p.startswith(f"{file}: drift_check.ignore[3].path: '/metadata/name'") for p in found)
    assert any(p.startswith(f"{file}: drift_check.ignore[4].paths: unknown key") for p in found)


# --- image overrides (#21.1) --------------------------------------------------------------


def test_images_take_a_repository_and_or_a_tag_per_component(env_dir):
    images = {
        "server": "registry.example.com:5000/temporalio/server",
        "admin_tools": {"tag": "1.25.2-custom"},
        "web": "registry.example.com/temporalio/ui:2.31.2-patched",
    }
    edit(env_dir, "staging", lambda d: d.update(images=images))
    env = load_environment("staging", env_dir)
    resolved = {n: i.reference for n, i in env.resolved_images.components() if i}
    # chart 0.52.0 pins server 1.25.2, admin-tools 1.25.2-tctl-1.18.1-cli-1.1.1, ui 2.31.2
    assert resolved == {
        "server": "registry.example.com:5000/temporalio/server:1.25.2",
        "admin_tools": "temporalio/admin-tools:1.25.2-custom",
        "web": "registry.example.com/temporalio/ui:2.31.2-patched",
    }


@pytest.mark.parametrize(
    ("images", "key", "says"),
    [
        ({"web": "temporalio/UI:2"}, "images.web.repository", "is not an image repository"),
        ({"server": {"tag": "-bad"}}, "images.server.tag", "is not an image tag"),
        ({"admin_tools": "x@sha256:00"}, "images.admin_tools", "digests are not supported"),
        ({"webui": "temporalio/ui"}, "images.webui", ""),
    ],
)
def test_a_bad_image_override_names_its_key(env_dir, images, key, says):
    edit(env_dir, "staging", lambda d: d.update(images=images))
    (found,) = problems(env_dir)
    assert f"staging.yaml: {key}" in found and says in found, found


def test_extra_values_may_not_set_an_image_the_model_declares(env_dir):
    extra = {"admintools": {"image": {"tag": "1.25.2"}}}
    edit(env_dir, "staging", lambda d: d.update(extra_values=extra))
    (found,) = problems(env_dir)
    assert "extra_values.admintools.image.tag" in found and "images.admin_tools" in found


# --- issue #20 items 8 and 9: forms the model used to accept -------------------------------


@pytest.mark.parametrize("version", ["0.52", "1.6", "0.52.0.1", "v0.52.0", "0.52.x", " 0.52.0"])
def test_a_chart_version_is_major_minor_patch(env_dir, version):
    # '0.52' used to pass validate and plan a hop 0.52.0 -> 0.52 for nothing (#20.8).
    edit(env_dir, "staging", lambda d: d.setdefault("chart", {}).update(version=version))
    (found,) = problems(env_dir)
    assert "chart.version" in found and "MAJOR.MINOR.PATCH" in found, found


@pytest.mark.parametrize("port", [True, False, 3306.0, "3306.0", "port"])
def test_rds_port_is_a_whole_number_not_a_boolean_or_text(env_dir, port):
    # `port: true` was read as port 1 (#20.9). Text of digits stays allowed: `${PORT}` is text.
    edit(env_dir, "staging", lambda d: d["rds"].update(port=port))
    (found,) = problems(env_dir)
    assert "rds.port" in found and "integer" in found, found


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("endpoint", "db\x00.example.com"),
        ("endpoint", "dé.example.com"),
        ("endpoint", "db example.com"),
        ("endpoint", "-db.example.com"),
        ("instance_id", "temporal staging"),
        ("instance_id", "1temporal"),
        ("instance_id", "témporal"),
        ("instance_id", "temporal--staging"),
    ],
)
def test_rds_endpoint_and_instance_id_are_checked_for_form(env_dir, key, value):
    edit(env_dir, "staging", lambda d: d["rds"].update({key: value}))
    (found,) = problems(env_dir)
    assert f"rds.{key}" in found, found
    assert "\x00" not in found


@pytest.mark.parametrize("text", ["${HOME", "db-${X:-a.example.com", "a${", "${}"])
def test_an_unterminated_variable_is_an_error_wherever_variables_are_read(env_dir, text):
    edit(env_dir, "staging", lambda d: d["rds"].update(endpoint=text))
    found = problems(env_dir)
    assert any("rds.endpoint" in p and "${" in p and "unterminated" in p for p in found), found


def test_a_closed_variable_with_a_default_still_works(env_dir, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    edit(env_dir, "staging", lambda d: d["rds"].update(endpoint="${NOT_SET_ANYWHERE:-db.x.test}"))
    assert load_environment("staging", env_dir).rds.endpoint == "db.x.test"


def test_images_pin_is_tag_unless_digest_is_asked_for(tmp_path):
    """#23.5: `images.pin: digest` is opt-in; anything else is refused naming what is allowed."""
    folder = copy_environments(tmp_path)
    assert load_environment("staging", folder).images.pin == ImagePin.TAG
    staging = folder / "staging.yaml"
    data = yaml.safe_load(staging.read_text())
    data.setdefault("images", {})["pin"] = "digest"
    staging.write_text(yaml.safe_dump(data))
    assert load_environment("staging", folder).images.pin == ImagePin.DIGEST
    data["images"]["pin"] = "sha"
    staging.write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidEnvironment) as refused:
        load_environment("staging", folder)
    assert "images.pin" in str(refused.value) and "'digest'" in str(refused.value)


def test_a_heartbeat_timeout_below_the_heartbeat_interval_is_refused(env_dir):
    edit(env_dir, "staging", lambda d: d.update(step_timeouts={"heartbeat": "5s"}))
    (found,) = problems(env_dir)
    assert "staging.yaml: step_timeouts.heartbeat:" in found and "at least 10s" in found


def test_a_declared_heartbeat_timeout_is_kept(env_dir):
    assert load_environment("staging", env_dir).step_timeouts.heartbeat == timedelta(seconds=30)
    edit(env_dir, "staging", lambda d: d.update(step_timeouts={"heartbeat": "10s"}))
    assert load_environment("staging", env_dir).step_timeouts.heartbeat == timedelta(seconds=10)
