"""The NetworkPolicies an environment declares (#23.3): what each one lets through, read off
the objects as a cluster's network plugin would read them, and the `network_policy` key's
refusals, each naming its key path. The chart side (every rendered pod selected, every
container port it declares open among the release's pods) is
tests/integration/declared_state/test_network_policy_render.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from declared_state.loader import InvalidEnvironment, load_environment
from declared_state.models import Environment
from declared_state.network_policies import network_policies
from tests.helpers import copy_environments


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    return copy_environments(tmp_path)


def staging(env_dir: Path, **network_policy: Any) -> Environment:
    path = env_dir / "staging.yaml"
    data = yaml.safe_load(path.read_text())
    if network_policy:
        data["network_policy"] = network_policy
    path.write_text(yaml.safe_dump(data))
    return load_environment("staging", env_dir)


def by_name(env: Environment) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in network_policies(env)}


def allowed_in(policy: dict[str, Any]) -> set[tuple[str, int]]:
    """(peer as JSON-ish text, port) pairs every ingress rule admits."""
    out = set()
    for rule in policy["spec"].get("ingress", []):
        for peer in rule["from"]:
            for port in rule["ports"]:
                out.add((repr(sorted(peer.items())), port["port"]))
    return out


RELEASE = {"app.kubernetes.io/name": "temporal", "app.kubernetes.io/instance": "temporal"}


def test_defaults_deny_all_then_open_only_the_declared_paths(env_dir):
    env = staging(env_dir)
    policies = by_name(env)
    assert set(policies) == {
        "temporal-default-deny",
        "temporal-internal",
        "temporal-egress",
        "temporal-frontend",
        "temporal-web",
    }
    for policy in policies.values():
        assert policy["metadata"]["namespace"] == env.kubernetes.namespace
        assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "temporal-bootstrap"
    deny = policies["temporal-default-deny"]["spec"]
    assert deny == {"podSelector": {"matchLabels": RELEASE}, "policyTypes": ["Ingress", "Egress"]}

    internal = policies["temporal-internal"]["spec"]
    (rule,) = internal["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": RELEASE}}]
    ports = {p["port"] for p in rule["ports"]}
    # gRPC and membership of frontend, history, matching, worker; the frontend's HTTP API
    assert ports == {7233, 7234, 7235, 7239, 6933, 6934, 6935, 6939, 7243}
    assert internal["egress"][0]["ports"] == rule["ports"]

    frontend = policies["temporal-frontend"]
    assert frontend["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "frontend"
    )
    # only this tool's worker as deploy/ runs it
    worker = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "temporal-bootstrap"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "temporal-bootstrap"}},
    }
    assert allowed_in(frontend) == {(repr(sorted(worker.items())), 7233)}
    web = policies["temporal-web"]
    nginx = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    assert allowed_in(web) == {(repr(sorted(nginx.items())), 8080)}
    assert web["spec"]["policyTypes"] == ["Ingress"]


def test_egress_is_dns_the_database_port_and_declared_endpoints(env_dir):
    env = staging(env_dir)
    egress = by_name(env)["temporal-egress"]["spec"]
    assert egress["policyTypes"] == ["Egress"]
    dns, database = egress["egress"]
    assert dns == {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    # a host name cannot be selected: the RDS port to any address
    assert database == {"ports": [{"protocol": "TCP", "port": 3306}]}

    narrowed = staging(
        env_dir,
        database_cidr="10.20.0.0/16",
        egress_to=[{"cidr": "52.218.0.0/17"}, {"cidr": "10.9.9.9/32", "ports": [9000]}],
    )
    _, database, s3, archival = by_name(narrowed)["temporal-egress"]["spec"]["egress"]
    assert database["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    assert s3 == {
        "to": [{"ipBlock": {"cidr": "52.218.0.0/17"}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }
    assert archival["ports"] == [{"protocol": "TCP", "port": 9000}]


def test_an_rds_endpoint_given_as_an_address_is_the_only_database_destination(env_dir):
    env = staging(env_dir)
    env = env.model_copy(update={"rds": env.rds.model_copy(update={"endpoint": "10.1.2.3"})})
    database = by_name(env)["temporal-egress"]["spec"]["egress"][1]
    assert database["to"] == [{"ipBlock": {"cidr": "10.1.2.3/32"}}]


def test_declared_sources_reach_the_frontend_and_metrics(env_dir):
    env = staging(
        env_dir,
        frontend_from=[
            {"namespace_selector": {"team": "payments"}},
            {"namespace_selector": {}, "pod_selector": {"app": "orders"}},
            {"cidr": "10.30.0.7/16"},
        ],
        bootstrap_worker=[],
        metrics_from=[{"namespace_selector": {"kubernetes.io/metadata.name": "monitoring"}}],
    )
    policies = by_name(env)
    (rule,) = policies["temporal-frontend"]["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"team": "payments"}}},
        {
            "namespaceSelector": {"matchLabels": {}},
            "podSelector": {"matchLabels": {"app": "orders"}},
        },
        {"ipBlock": {"cidr": "10.30.0.0/16"}},  # as the API server would normalise it
    ]
    metrics = policies["temporal-metrics"]["spec"]
    assert metrics["podSelector"] == {"matchLabels": RELEASE}
    assert metrics["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9090}]


def test_disabled_declares_none(env_dir):
    assert network_policies(staging(env_dir, enabled=False)) == []


def test_nothing_reaches_the_frontend_from_outside_when_no_source_is_declared(env_dir):
    policies = by_name(staging(env_dir, bootstrap_worker=[], web_from=[]))
    assert "temporal-frontend" not in policies and "temporal-web" not in policies


@pytest.mark.parametrize(
    ("network_policy", "expected"),
    [
        (
            {"frontend_from": [{"cidr": "10.0.0.0/8", "pod_selector": {"a": "b"}}]},
            "network_policy.frontend_from[0]: a peer is either selectors (namespace_selector, "
            "pod_selector) or a cidr, not both",
        ),
        (
            {"frontend_from": [{}]},
            "network_policy.frontend_from[0]: a peer needs namespace_selector, pod_selector or cidr",
        ),
        (
            {"web_from": [{"cidr": "10.0.0.300/8"}]},
            "network_policy.web_from[0].cidr: '10.0.0.300/8' is not a CIDR",
        ),
        (
            {"frontend_from": [{"pod_selector": {"app name": "x"}}]},
            "network_policy.frontend_from[0].pod_selector: label key 'app name'",
        ),
        (
            {"frontend_from": [{"namespace_selector": {"team": "-bad"}}]},
            "network_policy.frontend_from[0].namespace_selector: label value '-bad'",
        ),
        ({"egress_to": [{"cidr": "1.2.3.4/32", "ports": []}]}, "egress_to[0].ports: at least one"),
        ({"database_cidr": "db.internal"}, "network_policy.database_cidr: 'db.internal' is not"),
        ({"frontend": [{"cidr": "10.0.0.0/8"}]}, "network_policy.frontend"),
    ],
)
def test_bad_declarations_are_refused_naming_the_key(env_dir, network_policy, expected):
    with pytest.raises(InvalidEnvironment) as info:
        staging(env_dir, **network_policy)
    (found,) = [str(p) for p in info.value.problems]
    assert expected in found, found
    assert "\n" not in found
