"""Contract tests of the stand-in's Pod Security admission with the real kubernetes client:
a namespace labelled `pod-security.kubernetes.io/enforce` refuses the ReplicaSet's pods that
violate its level, with the PodSecurity plugin's message (the expected strings below are
written from the wording of k8s.io/pod-security-admission's checks, not from the stand-in),
the ReplicaSet and its Deployment report `FailedCreate`, and a compliant pod is admitted."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from local_stack.kube_api_standin import KubeApiStandIn

from .conftest import NS, deployment, pods_of, ready

HARDENED_CONTAINER = {
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
}


def label(core: client.CoreV1Api, level: str) -> None:
    core.patch_namespace(
        NS, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": level}}}
    )


def failed_create(core: client.CoreV1Api, apps: client.AppsV1Api, name: str) -> Any:
    """The ReplicaSet's FailedCreate Event and ReplicaFailure condition, once both exist."""
    sets = apps.list_namespaced_replica_set(NS, label_selector=f"app={name}").items
    if not sets:
        return None
    rs = sets[0]
    events = [
        e
        for e in core.list_namespaced_event(
            NS, field_selector=f"involvedObject.name={rs.metadata.name}"
        ).items
        if e.reason == "FailedCreate"
    ]
    conditions = [c for c in (rs.status.conditions or []) if c.type == "ReplicaFailure"]
    return (rs, events, conditions) if events and conditions else None


def test_restricted_namespace_refuses_an_unhardened_pod_with_the_plugin_message(
    standin: KubeApiStandIn, core, apps, wait_for
) -> None:
    label(core, "restricted")
    try:
        apps.create_namespaced_deployment(NS, deployment("loose"))
        rs, (event,), (condition,) = wait_for(
            lambda: failed_create(core, apps, "loose"), what="FailedCreate"
        )
        assert not pods_of(core, "loose")
        assert event.type == "Warning" and event.involved_object.kind == "ReplicaSet"
        prefix = f'Error creating: pods "{rs.metadata.name}-'
        assert event.message.startswith(prefix)
        expected = (
            '" is forbidden: violates PodSecurity "restricted:latest": '
            "allowPrivilegeEscalation != false "
            '(container "app" must set securityContext.allowPrivilegeEscalation=false), '
            "unrestricted capabilities "
            '(container "app" must set securityContext.capabilities.drop=["ALL"]), '
            "runAsNonRoot != true "
            '(pod or container "app" must set securityContext.runAsNonRoot=true), '
            "seccompProfile "
            '(pod or container "app" must set securityContext.seccompProfile.type to '
            '"RuntimeDefault" or "Localhost")'
        )
        assert event.message.endswith(expected), event.message
        assert (condition.status, condition.reason) == ("True", "FailedCreate")
        assert condition.message == event.message
        dep = wait_for(
            lambda: (
                (d := apps.read_namespaced_deployment("loose", NS)).status.conditions
                and any(c.type == "ReplicaFailure" for c in d.status.conditions)
                and d
            ),
            what="the Deployment's ReplicaFailure",
        )
        (dep_failure,) = [c for c in dep.status.conditions if c.type == "ReplicaFailure"]
        assert dep_failure.reason == "FailedCreate" and dep_failure.message == event.message

        # The same pod, hardened, is admitted and becomes ready.
        apps.create_namespaced_deployment(NS, deployment("tight", container=HARDENED_CONTAINER))
        wait_for(lambda: (p := pods_of(core, "tight")) and all(map(ready, p)), what="pods")
    finally:
        label(core, "privileged")


def test_baseline_admits_an_unhardened_pod_and_refuses_a_privileged_one(
    standin: KubeApiStandIn, core, apps, wait_for
) -> None:
    label(core, "baseline")
    try:
        apps.create_namespaced_deployment(NS, deployment("plain"))
        wait_for(lambda: (p := pods_of(core, "plain")) and all(map(ready, p)), what="pods")
        privileged = {
            "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}
        }
        apps.create_namespaced_deployment(
            NS, deployment("root", container=privileged, hostNetwork=True)
        )
        _, (event,), _ = wait_for(lambda: failed_create(core, apps, "root"), what="FailedCreate")
        assert event.message.endswith(
            '" is forbidden: violates PodSecurity "baseline:latest": '
            'non-default capabilities (container "app" must not include "SYS_ADMIN" in '
            "securityContext.capabilities.add), "
            "host namespaces (hostNetwork=true), "
            'privileged (container "app" must not set securityContext.privileged=true)'
        ), event.message
    finally:
        label(core, "privileged")
