"""Why pods are not ready, in kubelet's words, for error messages and progress.

`kubectl describe pod` is what an operator would run: the container's waiting reason and
message (`CreateContainerConfigError: secret "temporal-db-secret" not found`), or, for a pod
stuck creating, the latest Warning Event about it (`FailedMount: MountVolume.SetUp failed for
volume "rds-ca" : configmap "rds-ca-certs" not found`). Used by the port-forward (no ready pod
behind the frontend Service) and by install_chart (what helm is waiting for).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s


def is_ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def why_not_ready(core: k8s.CoreV1Api, pod: Any) -> str:
    """`<pod>: <phase>, <reason>: <message>` for a pod that is not Ready."""
    name, status = pod.metadata.name, pod.status
    phase = (status.phase if status else None) or "Pending"
    reasons = []
    for c in (status.container_statuses if status else None) or []:
        waiting = c.state.waiting if c.state else None
        if waiting is not None and waiting.reason:
            reasons.append(
                f"{waiting.reason}: {waiting.message}" if waiting.message else waiting.reason
            )
    warning = _latest_warning(core, pod)
    if warning and (not reasons or reasons == ["ContainerCreating"]):
        reasons = [warning]
    if not reasons:
        reasons = ["running, not ready (readiness)"] if phase == "Running" else []
    return f"{name}: {phase}" + (f", {'; '.join(dict.fromkeys(reasons))}" if reasons else "")


def _latest_warning(core: k8s.CoreV1Api, pod: Any) -> str | None:
    events: list[Any] = core.list_namespaced_event(
        pod.metadata.namespace, field_selector=f"involvedObject.name={pod.metadata.name}"
    ).items
    warnings = [e for e in events if e.type == "Warning" and e.message]
    if not warnings:
        return None
    latest = max(
        warnings, key=lambda e: str(e.last_timestamp or e.metadata.creation_timestamp or "")
    )
    return f"{latest.reason}: {latest.message}"


PULL_FAILED = ("ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")
"""Waiting reasons that mean the image will not come by waiting (ErrImagePull alone may be a
passing registry hiccup; kubelet turns a repeated one into ImagePullBackOff within seconds)."""


def pull_failures(core: k8s.CoreV1Api, namespace: str, selector: str) -> list[str]:
    """`<pod>: container <name> cannot pull <image>: <reason>: <message>` for every container
    of the pods matching `selector` whose image cannot be pulled."""
    pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector).items
    found = []
    for pod in pods:
        status = pod.status
        for c in [
            *((status.init_container_statuses if status else None) or []),
            *((status.container_statuses if status else None) or []),
        ]:
            waiting = c.state.waiting if c.state else None
            if waiting is not None and waiting.reason in PULL_FAILED:
                found.append(
                    f"{pod.metadata.name}: container {c.name} cannot pull {c.image}: "
                    f"{waiting.reason}" + (f": {waiting.message}" if waiting.message else "")
                )
    return found


def unready_pods(core: k8s.CoreV1Api, namespace: str, selector: str) -> list[str]:
    """`why_not_ready` of every pod matching `selector` that is not Ready."""
    pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [why_not_ready(core, p) for p in pods if not is_ready(p)]


def refused_pods(core: k8s.CoreV1Api, namespace: str, selector: str) -> list[str]:
    """`ReplicaSet <name>: FailedCreate: <message>` for each of the release's ReplicaSets whose
    pods the API server refuses (the ReplicaSet controller's `ReplicaFailure` condition), e.g.
    Pod Security admission: `... violates PodSecurity "restricted:latest": ...`. Such pods are
    never created, so `unready_pods` cannot see them, and no wait ends them."""
    apps = k8s.AppsV1Api(core.api_client)
    sets: list[Any] = apps.list_namespaced_replica_set(namespace, label_selector=selector).items
    found = []
    for rs in sets:
        if not (rs.spec.replicas or 0):
            continue  # an old template scaled away: its refusals are history
        for c in (rs.status.conditions if rs.status else None) or []:
            if c.type == "ReplicaFailure" and c.status == "True" and c.reason == "FailedCreate":
                found.append(f"ReplicaSet {rs.metadata.name}: FailedCreate: {c.message}")
    return found
