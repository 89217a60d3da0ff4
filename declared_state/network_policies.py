"""The NetworkPolicies the bootstrap keeps for the release's pods (#23.3), built from the
environment: pure, no I/O (adapters/kube_objects.py writes them, install_chart applies them,
check_live_objects compares them with what is live).

Why the tool's own objects and not the chart's `extraObjects`: only the 1.x charts have
`extraObjects` (the 0.x charts, 0.52 to 0.74, render nothing extra), and one mechanism for
both layouts keeps one code path, one drift rule and one repair. They are written before helm
runs (install_chart), so the pods never run without them, and they survive a chart upgrade
untouched, since helm does not own them. Their cost: a repair of a hand-edited policy comes
with the helm revision the drift check's repair makes anyway (install_chart `reapply`).

The objects, all labelled `app.kubernetes.io/managed-by: temporal-bootstrap` and
`temporal-bootstrap/release: <release>` (how a policy no longer declared is found and
deleted), all selecting the release's pods by the chart's labels
(`app.kubernetes.io/name: temporal`, `app.kubernetes.io/instance: <release>`):

- `<release>-default-deny`: every pod of the release, ingress and egress, no rule: nothing in
  or out but what the others allow (NetworkPolicies add up);
- `<release>-internal`: among the release's pods, the services' gRPC and membership ports
  (frontend 7233/6933 and its HTTP API 7243, history 7234/6934, matching 7235/6935, worker
  7239/6939: the same in both layouts, where the 0.x charts set the membership ports in the
  server config without declaring them as container ports), in and out;
- `<release>-egress`: DNS (53, UDP and TCP, any address: cluster DNS or a node-local cache),
  the database on the RDS port (`database_cidr`; an RDS endpoint that is an IP; otherwise any
  address, since a NetworkPolicy cannot name a host), and each `egress_to` (archival, S3);
- `<release>-frontend`: the frontend's gRPC port from `frontend_from` (the applications) and
  `bootstrap_worker` (this tool's worker in a pod: its register_namespaces and checks; a worker
  outside the cluster comes through port-forward, which enters the pod through the kubelet and
  is not subject to NetworkPolicy);
- `<release>-web`: the Web UI's port (8080) from `web_from` (its ingress controller);
- `<release>-metrics` (only when `metrics_from` is declared): the metrics port (9090).

Every field the API server would default is written out (`policyTypes`, `protocol`), so the
drift check sees every one of them as the manifest's.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from declared_state.models import Environment, PolicyPeer

RELEASE_LABEL = "temporal-bootstrap/release"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "temporal-bootstrap"
CHART_NAME = "temporal"  # the charts' `app.kubernetes.io/name` (no nameOverride is set)

FRONTEND_GRPC = 7233
WEB_HTTP = 8080
METRICS = 9090
DNS = 53
# (gRPC, membership) of each service, as both values layouts default them; the frontend's
# HTTP API besides.
SERVICE_PORTS: dict[str, tuple[int, ...]] = {
    "frontend": (FRONTEND_GRPC, 6933, 7243),
    "history": (7234, 6934),
    "matching": (7235, 6935),
    "worker": (7239, 6939),
}


def release_pods(release: str, component: str | None = None) -> dict[str, Any]:
    """The chart's pod selector for the release (one service's pods with `component`)."""
    labels = {"app.kubernetes.io/name": CHART_NAME, "app.kubernetes.io/instance": release}
    if component:
        labels["app.kubernetes.io/component"] = component
    return {"matchLabels": labels}


def owned_labels(release: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, RELEASE_LABEL: release}


def owned_selector(release: str) -> str:
    """The label selector that lists every policy the bootstrap keeps for `release`."""
    return ",".join(f"{k}={v}" for k, v in owned_labels(release).items())


def _peer(peer: PolicyPeer) -> dict[str, Any]:
    if peer.cidr is not None:
        return {"ipBlock": {"cidr": peer.cidr}}
    out: dict[str, Any] = {}
    if peer.namespace_selector is not None:
        out["namespaceSelector"] = {"matchLabels": dict(peer.namespace_selector)}
    if peer.pod_selector is not None:
        out["podSelector"] = {"matchLabels": dict(peer.pod_selector)}
    return out


def _ports(ports: tuple[int, ...] | list[int], protocol: str = "TCP") -> list[dict[str, Any]]:
    return [{"protocol": protocol, "port": port} for port in ports]


def _policy(
    env: Environment,
    suffix: str,
    selector: dict[str, Any],
    *,
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    release = env.kubernetes.release
    types = [t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules is not None]
    spec: dict[str, Any] = {"podSelector": selector, "policyTypes": types}
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": f"{release}-{suffix}",
            "namespace": env.kubernetes.namespace,
            "labels": owned_labels(release),
        },
        "spec": spec,
    }


def _database_peers(env: Environment) -> list[dict[str, Any]]:
    declared = env.network_policy.database_cidr
    if declared:
        return [{"ipBlock": {"cidr": declared}}]
    try:
        address = ipaddress.ip_address(env.rds.endpoint)
    except ValueError:
        return []  # a host name: any address on the port
    return [{"ipBlock": {"cidr": f"{address}/{address.max_prefixlen}"}}]


def network_policies(env: Environment) -> list[dict[str, Any]]:
    """The NetworkPolicy objects `env` declares, in the order they are applied; [] when
    `network_policy.enabled` is false (the bootstrap then deletes those it kept)."""
    spec = env.network_policy
    if not spec.enabled:
        return []
    release = env.kubernetes.release
    everyone = release_pods(release)
    internal_ports = sorted({p for ports in SERVICE_PORTS.values() for p in ports})
    among = [{"podSelector": everyone}]
    egress: list[dict[str, Any]] = [
        {"ports": [*_ports([DNS], "UDP"), *_ports([DNS])]},
        {"ports": _ports([env.rds.port]), **({"to": p} if (p := _database_peers(env)) else {})},
        *(
            {"to": [{"ipBlock": {"cidr": t.cidr}}], "ports": _ports(t.ports)}
            for t in spec.egress_to
        ),
    ]
    policies = [
        _policy(env, "default-deny", everyone, ingress=[], egress=[]),
        _policy(
            env,
            "internal",
            everyone,
            ingress=[{"from": among, "ports": _ports(internal_ports)}],
            egress=[{"to": among, "ports": _ports(internal_ports)}],
        ),
        _policy(env, "egress", everyone, egress=egress),
    ]
    frontend_peers = [_peer(p) for p in (*spec.frontend_from, *spec.bootstrap_worker)]
    if frontend_peers:
        policies.append(
            _policy(
                env,
                "frontend",
                release_pods(release, "frontend"),
                ingress=[{"from": frontend_peers, "ports": _ports([FRONTEND_GRPC])}],
            )
        )
    if spec.web_from:
        policies.append(
            _policy(
                env,
                "web",
                release_pods(release, "web"),
                ingress=[{"from": [_peer(p) for p in spec.web_from], "ports": _ports([WEB_HTTP])}],
            )
        )
    if spec.metrics_from:
        policies.append(
            _policy(
                env,
                "metrics",
                everyone,
                ingress=[
                    {"from": [_peer(p) for p in spec.metrics_from], "ports": _ports([METRICS])}
                ],
            )
        )
    return policies
