"""The bootstrap's NetworkPolicies fit what every shipped chart (both values layouts) renders
(#23.3): the default deny selects every pod the release runs, and the ports the servers listen
on, read from the rendered server config and the containers' declared ports (not from the
policy code's table), are open among the release's pods; the frontend's and the Web UI's own
policies select exactly their pods and open the port those pods listen on."""

from __future__ import annotations

from typing import Any

import pytest

from declared_state.network_policies import network_policies
from tests.helpers.manifests import SERVER_SERVICES, container, mounted_server_config, objects

from .test_chart_values_render import SHIPPED, _rendered

WORKLOADS = ("Deployment", "StatefulSet", "Job")


def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"]["matchLabels"]
    return all(labels.get(k) == v for k, v in wanted.items())


def pods(docs: Any) -> dict[str, dict[str, Any]]:
    """Each workload's pod template, by workload name."""
    return {
        name: obj["spec"]["template"]
        for kind in WORKLOADS
        for name, obj in objects(docs, kind).items()
    }


def ports(policy: dict[str, Any], direction: str = "ingress") -> set[int]:
    return {p["port"] for rule in policy["spec"].get(direction, []) for p in rule["ports"]}


@pytest.mark.parametrize("chart_version", SHIPPED)
def test_policies_select_every_pod_and_open_the_ports_it_listens_on(
    chart_version, helm_binaries
) -> None:
    env, docs = _rendered(helm_binaries["v3"], chart_version)
    policies = {p["metadata"]["name"].removeprefix("temporal-"): p for p in network_policies(env)}
    templates = pods(docs)
    assert {"temporal-frontend", "temporal-web", "temporal-history"} <= set(templates)
    for name, template in templates.items():
        labels = template["metadata"]["labels"]
        assert selects(policies["default-deny"], labels), name
        assert selects(policies["internal"], labels) and selects(policies["egress"], labels)
        assert selects(policies["frontend"], labels) == (name == "temporal-frontend"), name
        assert selects(policies["web"], labels) == (name == "temporal-web"), name

    config = mounted_server_config(docs)
    listened: set[int] = set()
    for service in SERVER_SERVICES:
        rpc = config["services"][service]["rpc"]
        listened |= {rpc[k] for k in ("grpcPort", "membershipPort", "httpPort") if k in rpc}
        deployment = objects(docs, "Deployment")[f"temporal-{service}"]
        listened |= {
            p["containerPort"]
            for p in container(deployment).get("ports", [])
            if p.get("name") != "metrics"
        }
    internal = policies["internal"]
    assert listened <= ports(internal), listened - ports(internal)
    assert listened <= ports(internal, "egress")

    frontend_grpc = config["services"]["frontend"]["rpc"]["grpcPort"]
    assert ports(policies["frontend"]) == {frontend_grpc}
    web = container(objects(docs, "Deployment")["temporal-web"])
    assert ports(policies["web"]) == {p["containerPort"] for p in web["ports"]}
