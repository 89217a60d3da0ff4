"""Loading environment files: layering, validation messages (file, key, what is allowed)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from declared_state.loader import InvalidEnvironment, load_environment
from declared_state.models import AwsSecretsManagerPasswords, ExistingKubernetesSecret
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


def test_a_chart_the_sources_disagree_on_needs_its_server_version(env_dir):
    edit(env_dir, "staging", lambda d: d.update(chart={"version": "0.70.0"}))
    (found,) = problems(env_dir)
    assert "chart.server_version: chart 0.70.0 deploys server 1.29.0 or 1.29.1" in found
    edit(
        env_dir,
        "staging",
        lambda d: d.update(chart={"version": "0.70.0", "server_version": "1.29.0"}),
    )
    assert load_environment("staging", env_dir).chart.target_server_version == "1.29.0"


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
