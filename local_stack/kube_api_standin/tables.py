"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;
v=v1beta1;g=meta.k8s.io,application/json` and prints the columns the server chose; given a
plain list it can only print NAME and AGE. The API server fills the Table from the printers in
kubernetes `pkg/printers/internalversion/printers.go`, always with `Wide: true` (columns of
priority 1 are sent and kubectl shows them for `-o wide` only); this follows them for:
- pods (`printPod`): NAME, READY (ready/total containers, restartable init containers
  counted), STATUS (the phase, or `status.reason`, or `SchedulingGated` from the PodScheduled
  condition; overridden by an init container's `Init:<reason>` / `Init:i/n`, then by the
  first container (they are read last to first) whose state is waiting/terminated with a
  reason: `ContainerCreating`, `CreateContainerConfigError`, ...; `Terminating` once
  deleted), RESTARTS, AGE; wide: IP, NODE, NOMINATED NODE, READINESS GATES;
- deployments (`printDeployment`): NAME, READY (readyReplicas/spec.replicas), UP-TO-DATE,
  AVAILABLE, AGE; wide: CONTAINERS, IMAGES, SELECTOR.
Each row carries the object as the query's `includeObject` says (`apimachinery` handlers,
`transformObject`/`asTable`): `Metadata` (the default) a `PartialObjectMetadata`, `Object` the
whole object, `None` nothing. AGE is `duration.HumanDuration` of the time since creation. A
watch asked for as a Table (`kubectl get -w`) carries a one-row Table per event.

Simplifications: kinds without a printer here are answered with the plain list (kubectl then
prints NAME and AGE itself), where the real server has a printer for every built-in kind
(ConfigMap's DATA, Service's TYPE/CLUSTER-IP, ...) and the default NAME / Created At table for
custom resources; every watch event repeats the column definitions; restarts are never shown with their "(5m ago)" suffix since the
stand-in never restarts a container.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from .store import Obj

TABLE_MEDIA = "as=Table"
_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_AGE_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def _column(name: str, type_: str, description: str, priority: int = 0, fmt: str = "") -> Obj:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


_NAME = _column("Name", "string", _NAME_DOC, fmt="name")
_AGE = _column("Age", "string", _AGE_DOC)

POD_COLUMNS = [
    _NAME,
    _column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    _column("Status", "string", "The aggregate status of the containers in this pod."),
    _column(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the "
        "last container in this pod has restarted.",
    ),
    _AGE,
    _column("IP", "string", "podIP address allocated to the pod.", 1),
    _column("Node", "string", "NodeName indicates in which node this pod is scheduled.", 1),
    _column("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts.", 1),
    _column("Readiness Gates", "string", "If specified, all readiness gates will be evaluated.", 1),
]
DEPLOYMENT_COLUMNS = [
    _NAME,
    _column("Ready", "string", "Number of the pod with ready state"),
    _column(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this "
        "deployment that have the desired template spec.",
    ),
    _column(
        "Available",
        "string",
        "Total number of available pods (ready for at least "
        "minReadySeconds) targeted by this deployment.",
    ),
    _AGE,
    _column("Containers", "string", "Names of each container in the template.", 1),
    _column("Images", "string", "Images referenced by each container in the template.", 1),
    _column("Selector", "string", "Label selector for pods.", 1),
]


def wants_table(accept: str) -> bool:
    """Whether the client asked for a Table first (kubectl's human-readable `get`)."""
    first = accept.split(",")[0]
    params = {p.strip() for p in first.split(";")[1:]}
    return "as=Table" in params and "g=meta.k8s.io" in params


def human_duration(seconds: float) -> str:
    """apimachinery `duration.HumanDuration`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(obj: Obj) -> str:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return human_duration((datetime.datetime.now(datetime.UTC) - created).total_seconds())


def _restartable(container: Obj | None) -> bool:
    return (container or {}).get("restartPolicy") == "Always"  # a sidecar init container


def _pod_cells(pod: Obj) -> tuple[list[Any], list[Obj]]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    if any(
        c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
        for c in status.get("conditions") or []
    ):
        reason = "SchedulingGated"
    conditions: list[Obj] = []
    if phase == "Succeeded":
        conditions = [_row_condition("Succeeded", "The pod has completed successfully.")]
    elif phase == "Failed":
        conditions = [_row_condition("Failed", "The pod failed.")]
    inits = {c["name"]: c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(map(_restartable, inits.values()))
    ready = restarts = sidecar_restarts = 0
    initializing = False
    for i, c in enumerate(status.get("initContainerStatuses") or []):
        restarts += c.get("restartCount", 0)
        state = c.get("state") or {}
        sidecar = _restartable(inits.get(c.get("name", "")))
        if sidecar:
            sidecar_restarts += c.get("restartCount", 0)
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and c.get("started"):
            ready += bool(c.get("ready"))
            continue
        if terminated:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(inits)}"
        initializing = True
        break
    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    if not initializing or initialized:
        restarts = sidecar_restarts
        running = False
        for c in reversed(status.get("containerStatuses") or []):
            restarts += c.get("restartCount", 0)
            state = c.get("state") or {}
            waiting, terminated = state.get("waiting") or {}, state.get("terminated")
            if waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                code, signal = terminated.get("exitCode", 0), terminated.get("signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{code}"
            elif c.get("ready") and state.get("running") is not None:
                running = True
                ready += 1
        if reason == "Completed" and running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            reason = "Running" if pod_ready else "NotReady"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    # The printer reads the internal type's podIPs, which conversion fills from podIP.
    ips = status.get("podIPs") or ([{"ip": status["podIP"]}] if status.get("podIP") else [])
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
        gates_cell = f"{sum(g.get('conditionType') in true for g in gates)}/{len(gates)}"
    cells = [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        str(restarts),
        _age(pod),
        (ips[0].get("ip") if ips else "") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_cell,
    ]
    return cells, conditions


def _row_condition(reason: str, message: str) -> Obj:
    return {"type": "Completed", "status": "True", "reason": reason, "message": message}


def _selector_string(selector: Obj | None) -> str:
    """metav1.LabelSelectorAsSelector(...).String(): requirements sorted by key."""
    if not selector:
        return "<none>"
    parts: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        parts.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        text = {
            "In": f"{key} in ({','.join(sorted(values))})",
            "NotIn": f"{key} notin ({','.join(sorted(values))})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(op, key)
        parts.append((key, text))
    return ",".join(text for _, text in sorted(parts)) or "<none>"


def _deployment_cells(dep: Obj) -> tuple[list[Any], list[Obj]]:
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [
        dep["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(dep),
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        _selector_string(spec.get("selector")),
    ], []


PRINTERS: dict[tuple[str, str], tuple[list[Obj], Callable[[Obj], tuple[list[Any], list[Obj]]]]] = {
    ("v1", "Pod"): (POD_COLUMNS, _pod_cells),
    ("apps/v1", "Deployment"): (DEPLOYMENT_COLUMNS, _deployment_cells),
}


def table(
    api_version: str, kind: str, items: list[Obj], resource_version: str, include: str | None
) -> Obj | None:
    """The Table for `items` of `kind`, or None when the stand-in has no printer for it."""
    printer = PRINTERS.get((api_version, kind))
    if printer is None:
        return None
    columns, cells_of = printer
    rows = []
    for obj in items:
        cells, conditions = cells_of(obj)
        row: Obj = {"cells": cells}
        if conditions:
            row["conditions"] = conditions
        if include == "Object":
            row["object"] = obj
        elif include in (None, "", "Metadata"):
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    }
