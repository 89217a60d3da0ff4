"""History and visibility archival in the environment (#22.1): the cluster side (`archival:`)
and the namespace side (`temporal_namespaces[*].archival`), each refused with the file and key
named where the server would refuse to start, ignore the setting, or refuse the URI
(the rules are the server's: declared_state/archival.py names the source files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from declared_state.archival import ArchivalState, chart_values
from declared_state.loader import load_environment
from operations.environments import archival_text
from tests.helpers import copy_environments, declare_in
from tests.helpers import only_problem as problem

S3 = {"region": "eu-west-1"}
CLUSTER = {
    "s3store": S3,
    "history": {"state": "enabled", "uri": "s3://acme-temporal-archive/history"},
    "visibility": {"state": "enabled", "uri": "s3://acme-temporal-archive/visibility"},
}


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    return copy_environments(tmp_path)


def declare(env_dir: Path, cluster: Any = None, **namespace: Any) -> None:
    archival = {} if cluster is None else {"archival": cluster}
    declare_in(env_dir, temporal_namespaces=[{"name": "my-ns", **namespace}], **archival)


def test_cluster_and_namespace_archival_load(env_dir):
    declare(
        env_dir,
        CLUSTER,
        archival={
            "history": {"state": "enabled", "uri": "s3://acme-temporal-archive/payments"},
            "visibility": {"state": "enabled"},
        },
    )
    env = load_environment("staging", env_dir)
    (ns,) = env.temporal_namespaces
    assert ns.archival is not None and ns.archival.history and ns.archival.visibility
    assert (ns.archival.history.state, ns.archival.history.uri) == (
        ArchivalState.ENABLED,
        "s3://acme-temporal-archive/payments",
    )
    # Without its own URI the namespace takes the cluster's default (the server's rule).
    assert ns.archival.visibility.uri is None
    assert env.archival.history.uri == "s3://acme-temporal-archive/history"
    assert env.archival.s3store is not None and env.archival.s3store.region == "eu-west-1"


def test_nothing_declared_means_archival_off_and_not_managed(env_dir):
    declare(env_dir)
    env = load_environment("staging", env_dir)
    assert not env.archival.any_enabled
    assert env.temporal_namespaces[0].archival is None


def test_the_rendered_server_config_is_what_the_server_starts_with():
    """The server's own start-up rule (common/config/archival.go isArchivalConfigValid),
    written out independently: enabled = state enabled + default URI + provider; disabled =
    no enableRead, no enabled default, no URI, no provider."""
    env = load_environment("staging")
    cluster = type(env.archival).model_validate(
        {
            **CLUSTER,
            "visibility": {"state": "disabled"},
            "s3store": {**S3, "force_path_style": True},
        }
    )
    values = chart_values(cluster)
    assert values == {
        "archival": {
            "history": {
                "state": "enabled",
                "enableRead": True,
                "provider": {"s3store": {"region": "eu-west-1", "s3ForcePathStyle": True}},
            },
            "visibility": {"state": "disabled", "enableRead": False},
        },
        "namespaceDefaults": {
            "archival": {
                "history": {"state": "disabled", "URI": "s3://acme-temporal-archive/history"},
                "visibility": {"state": "disabled"},
            }
        },
    }
    for kind in ("history", "visibility"):
        cfg, default = values["archival"][kind], values["namespaceDefaults"]["archival"][kind]
        enabled = cfg["state"] == "enabled"
        valid_enabled = enabled and bool(default.get("URI")) and "provider" in cfg
        valid_disabled = (
            not enabled
            and not cfg.get("enableRead")
            and default.get("state") != "enabled"
            and not default.get("URI")
            and "provider" not in cfg
        )
        assert valid_enabled or valid_disabled, kind


@pytest.mark.parametrize(
    ("cluster", "key", "words"),
    [
        (
            {"s3store": S3, "history": {"state": "enabled"}},
            "archival.history:",
            "enabled but has no uri",
        ),
        (
            {"history": {"state": "enabled", "uri": "s3://acme-temporal-archive/h"}},
            "archival.history:",
            "archival.s3store (region) is not set",
        ),
        (
            {"history": {"uri": "s3://acme-temporal-archive/h"}},
            "archival.history:",
            "archival is disabled, so uri",
        ),
        (
            {"visibility": {"namespace_default": "enabled"}},
            "archival.visibility:",
            "refuses to start",
        ),
        ({"s3store": {"region": ""}}, "archival.s3store.region:", "is not an AWS region"),
        (
            {"s3store": {**S3, "endpoint": "minio:9000"}},
            "archival.s3store.endpoint:",
            "is not an endpoint URL",
        ),
        (
            {"s3store": S3, "history": {"state": "paused", "uri": "s3://acme-temporal-archive/h"}},
            "archival.history.state:",
            "'enabled' or 'disabled'",
        ),
    ],
)
def test_a_cluster_archival_the_server_would_not_start_with_is_refused(
    env_dir, cluster, key, words
):
    declare(env_dir, cluster)
    found = problem(env_dir)
    assert f"staging.yaml: {key}" in found, found
    assert words in found, found


@pytest.mark.parametrize("kind", ["history", "visibility"])
def test_a_namespace_archiving_what_the_cluster_does_not_enable_is_refused(env_dir, kind):
    """The server silently ignores a namespace's archival of a kind its cluster config does
    not enable (namespace_handler.go ClusterConfiguredForArchival): declared, it would be
    drift forever."""
    other = "visibility" if kind == "history" else "history"
    cluster = {"s3store": S3, other: CLUSTER[other]}
    declare(env_dir, cluster, archival={kind: {"state": "enabled"}})
    found = problem(env_dir)
    assert f"staging.yaml: temporal_namespaces[0].archival.{kind}:" in found, found
    assert f"the cluster's {kind} archival is not enabled (archival.{kind}.state)" in found


def test_disabled_without_a_uri_is_allowed_on_a_cluster_without_archival(env_dir):
    # What the server keeps anyway: nothing to ignore, nothing to report.
    declare(env_dir, archival={"history": {"state": "disabled"}})
    (ns,) = load_environment("staging", env_dir).temporal_namespaces
    assert ns.archival and ns.archival.history and ns.archival.history.uri is None


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("file:///var/temporal/archive", "scheme 'file' has no archival provider here"),
        ("gs://acme-archive/temporal", "scheme 'gs' has no archival provider here"),
        ("ftp://acme-archive/temporal", "the server has no archiver for that scheme"),
        ("acme-archive/temporal", "is not an archival URI"),
        ("s3:///temporal", "is not an S3 bucket name"),
        ("s3://Acme_Archive/temporal", "is not an S3 bucket name"),
        ("s3://key:secret@acme-archive/t", "credentials do not belong"),
        ("s3://acme-archive:9000/t", "no port"),
        ("s3://acme-archive/t?versionId=1", "no query or fragment"),
    ],
)
def test_a_bad_namespace_uri_names_the_key_and_the_rule(env_dir, uri, words):
    declare(env_dir, CLUSTER, archival={"history": {"state": "enabled", "uri": uri}})
    found = problem(env_dir)
    assert "staging.yaml: temporal_namespaces[0].archival.history.uri:" in found, found
    assert words in found, found
    assert "secret" not in found  # the credentials case never echoes them


def test_a_bad_default_uri_names_the_cluster_key(env_dir):
    declare(env_dir, {**CLUSTER, "visibility": {"state": "enabled", "uri": "file:///tmp/v"}})
    found = problem(env_dir)
    assert "staging.yaml: archival.visibility.uri:" in found, found
    assert "scheme 'file'" in found


@pytest.mark.parametrize("key", ["archival", "namespaceDefaults"])
def test_extra_values_cannot_carry_archival(env_dir, key):
    """Not even where the model enables none: the server's rules would go unchecked."""
    path = env_dir / "staging.yaml"
    data = yaml.safe_load(path.read_text())
    data["extra_values"] = {"server": {key: {"history": {"state": "enabled"}}}}
    path.write_text(yaml.safe_dump(data))
    found = problem(env_dir)
    assert f"extra_values.server.{key}" in found, found
    assert "declare it in archival" in found, found


def test_old_inputs_without_archival_still_load():
    """Workflow histories recorded before archival carry environments without the keys."""
    env = load_environment("staging")
    recorded = env.model_dump(mode="json", by_alias=True)
    recorded.pop("archival")
    for ns in recorded["temporal_namespaces"]:
        ns.pop("archival")
    again = type(env).model_validate(recorded)
    assert again == env


def test_validate_says_what_is_archived_where_and_with_which_credentials(env_dir):
    declare(env_dir, CLUSTER, archival={"history": {"state": "enabled"}})
    env = load_environment("staging", env_dir)
    assert archival_text(env) == (
        "history to s3://acme-temporal-archive/history by default (namespaces: my-ns declared, "
        "others disabled); visibility to s3://acme-temporal-archive/visibility by default "
        "(namespaces: none declared, others disabled); S3 in eu-west-1 with the server pods' "
        "AWS credentials (IAM role)"
    )
    assert archival_text(load_environment("staging")) == "off (archival)"
