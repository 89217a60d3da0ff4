"""How the worker reaches a frontend (`frontend.connect`), and the port-forward's failures
named by Service and port, against the Kubernetes API stand-in with the real client."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes import client as k8s
from pydantic import ValidationError

from adapters.temporal_target import FrontendUnreachable, TargetTemporalClients
from declared_state.models import Environment, FrontendConnect, FrontendSpec


def in_namespace(env: Environment, ns: str) -> Environment:
    return env.model_copy(
        update={"kubernetes": env.kubernetes.model_copy(update={"namespace": ns})}
    )


def test_connect_defaults_by_where_the_worker_runs(local_env: Environment) -> None:
    outside, inside = (
        TargetTemporalClients(in_cluster=False),
        TargetTemporalClients(in_cluster=True),
    )
    assert outside.mode(local_env) == FrontendConnect.PORT_FORWARD
    assert inside.mode(local_env) == FrontendConnect.DIRECT
    assert inside.target(local_env) == "temporal-frontend.my-app-local.svc.cluster.local:7233"
    addressed = local_env.model_copy(update={"frontend": FrontendSpec(address="10.0.0.1:7233")})
    assert outside.mode(addressed) == FrontendConnect.DIRECT
    forced = local_env.model_copy(update={"frontend": FrontendSpec(connect="port-forward")})
    assert inside.mode(forced) == FrontendConnect.PORT_FORWARD


def test_port_forward_with_an_address_is_refused() -> None:
    with pytest.raises(ValidationError, match="address: only used with connect: direct"):
        FrontendSpec(connect="port-forward", address="10.0.0.1:7233")


async def test_missing_service_and_unready_pods_are_named(
    local_env: Environment, kube_clients, kube_standin
) -> None:
    env = in_namespace(local_env, "reach-missing")
    clients = TargetTemporalClients(kube_clients, in_cluster=False)
    async with clients.connect(env) as frontend:
        with pytest.raises(FrontendUnreachable) as missing:
            await frontend.client(timeout=10)
    assert "Service reach-missing/temporal-frontend port 7233" in missing.value.reason
    assert "the Service does not exist" in missing.value.reason

    # The Service and a pod behind it that cannot start: its DB Secret is missing.
    core = kube_clients.core_v1("standin")
    apps = kube_clients.apps_v1("standin")
    ns, labels = "reach-missing", {"app.kubernetes.io/component": "frontend"}
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "temporal-frontend"},
            "spec": {"selector": labels, "ports": [{"port": 7233, "targetPort": "rpc"}]},
        },
    )
    secret_ref = {"secretKeyRef": {"name": "temporal-db-secret", "key": "password"}}
    container = {
        "name": "frontend",
        "image": "temporalio/server:1.25.2",  # pullable: the config error comes after the pull
        "ports": [{"name": "rpc", "containerPort": 7233}],
        "env": [{"name": "P", "valueFrom": secret_ref}],
    }
    apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "temporal-frontend"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        },
    )
    async with clients.connect(env) as frontend:
        for _ in range(50):
            try:
                await frontend.client(timeout=10)
            except FrontendUnreachable as exc:
                if "CreateContainerConfigError" in exc.reason:
                    break
            await asyncio.sleep(0.1)
        with pytest.raises(FrontendUnreachable) as unready:
            await frontend.client(timeout=10)
    reason = unready.value.reason
    assert "no ready pod matches app.kubernetes.io/component=frontend" in reason, reason
    assert 'CreateContainerConfigError: secret "temporal-db-secret" not found' in reason, reason
