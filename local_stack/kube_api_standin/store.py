"""The stand-in's object store: bookkeeping, resourceVersions, events for watches, cascades."""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import datetime
import ipaddress
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import defaulting, rbac, validation
from .errors import ApiError, already_exists, conflict, invalid, not_found
from .ownership import Ownership
from .resources import Registry, Resource
from .selectors import Requirement, fields_match, labels_match

Obj = dict[str, Any]
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# batch/v1 keeps its old default: deleting a Job without a propagationPolicy orphans its
# pods (kubectl and helm send Background; the Python client sends nothing by default).
ORPHANED_BY_DEFAULT = ("Job", "CronJob")


def prune_nulls(value: Any) -> Any:
    """Nulls vanish as the real server decodes into typed structs (`annotations: null`)."""
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    res: Resource
    obj: Obj
    old: Obj | None = None


@dataclass(eq=False)  # identity-hashed: kept in a set
class Watch:
    res: Resource
    namespace: str | None
    labels: list[Requirement]
    fields: list[Requirement]
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return labels_match(meta.get("labels"), self.labels) and fields_match(obj, self.fields)

    def translate(self, ev: Event) -> str | None:
        """The event type this watcher sees: an object leaving its selector is DELETED to it."""
        now_in = self.matches(ev.obj)
        if ev.type != "MODIFIED":
            return ev.type if now_in else None
        was_in = self.matches(ev.old)
        return {(True, True): "MODIFIED", (True, False): "ADDED", (False, True): "DELETED"}.get(
            (now_in, was_in)
        )


class Store:
    def __init__(
        self, registry: Registry, history: int = 20000, namespace_delay: float = 0.5
    ) -> None:
        self.registry = registry
        self.namespace_delay = namespace_delay
        self.history_size = history
        self.hooks: list[Callable[[Event], None]] = []
        self.reset()

    def reset(self) -> None:
        for w in getattr(self, "watches", ()):
            w.queue.put_nowait(None)
        self.rv = getattr(self, "rv", 0)  # keeps growing so clients never see one reused
        self.objects: dict[Resource, dict[tuple[str, str], Obj]] = collections.defaultdict(dict)
        self.history: collections.deque[Event] = collections.deque(maxlen=self.history_size)
        self.compacted = self.rv
        self.watches: set[Watch] = set()
        self.last_applied: dict[tuple[str, str], Obj] = {}
        self.ownership = Ownership()
        self._ips = 0
        for ns in SYSTEM_NAMESPACES:
            self.create(self.registry.namespace, None, {"metadata": {"name": ns}})
        for kind, obj in rbac.bootstrap_policy():
            res = self.registry.by_kind(rbac.RBAC, kind)
            assert res is not None
            self.create(res, None, obj)

    def of_kind(self, api_version: str, kind: str) -> list[Obj]:
        """The stored objects of a kind (not copies: for read-only lookups on the loop)."""
        res = self.registry.by_kind(api_version, kind)
        return list(self.objects[res].values()) if res is not None else []

    # -- reads ---------------------------------------------------------------------------
    def raw(self, res: Resource, ns: str | None, name: str) -> Obj | None:
        return self.objects[res].get((ns or "", name))

    def get(self, res: Resource, ns: str | None, name: str) -> Obj:
        obj = self.raw(res, ns, name)
        if obj is None:
            raise not_found(res.qualified, name)
        return copy.deepcopy(obj)

    def select(
        self, res: Resource, ns: str | None, labels: list[Requirement], fields: list[Requirement]
    ) -> list[Obj]:
        probe = Watch(res, ns, labels, fields, queue=None)  # type: ignore[arg-type]
        items = [o for o in self.objects[res].values() if probe.matches(o)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return copy.deepcopy(items)

    def watch(
        self,
        res: Resource,
        ns: str | None,
        labels: list[Requirement],
        fields: list[Requirement],
        since: int | None,
    ) -> tuple[Watch, list[tuple[str, Obj]]]:
        """Register a watch; returns it with the events that precede live ones: the current
        objects as ADDED when `since` is None, else the history after `since`."""
        w = Watch(res, ns, labels, fields)
        if since is None:
            first = [("ADDED", o) for o in self.select(res, ns, labels, fields)]
        elif since < self.compacted:
            raise ApiError(410, "Expired", f"too old resource version: {since} ({self.compacted})")
        else:
            first = []
            for ev in self.history:
                kind = w.translate(ev) if ev.rv > since and ev.res is res else None
                if kind:
                    first.append((kind, copy.deepcopy(ev.obj)))
        self.watches.add(w)
        return w, first

    # -- writes --------------------------------------------------------------------------
    def _emit(self, type_: str, res: Resource, obj: Obj, old: Obj | None = None) -> None:
        if len(self.history) == self.history.maxlen:
            self.compacted = self.history[0].rv
        ev = Event(int(obj["metadata"]["resourceVersion"]), type_, res, copy.deepcopy(obj), old)
        self.history.append(ev)
        for w in self.watches:
            if w.res is res:
                w.queue.put_nowait(ev)
        for hook in self.hooks:
            hook(ev)

    def _bump(self, obj: Obj) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def _check_namespace(self, res: Resource, ns: str | None, name: str) -> None:
        if not res.namespaced:
            return
        namespace = self.raw(self.registry.namespace, None, ns or "")
        if namespace is None:
            raise not_found("namespaces", ns or "")
        if "deletionTimestamp" in namespace["metadata"]:
            why = f"unable to create new content in namespace {ns} because it is being terminated"
            raise ApiError(403, "Forbidden", f'{res.qualified} "{name}" is forbidden: {why}')

    def create(
        self,
        res: Resource,
        ns: str | None,
        obj: Obj,
        dry_run: bool = False,
        manager: str | None = None,
    ) -> Obj:
        """Create `obj`; `manager` (None: ownership is recorded by the caller, as apply does)
        owns the fields it set."""
        obj = prune_nulls(obj)
        sent = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise invalid("metadata must be an object")
        if res.namespaced:
            if meta.get("namespace") not in (None, "", ns):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        name = meta.get("name")
        if not name:
            raise invalid(
                f"{res.kind}: metadata.name: Required value: name or generateName is required"
            )
        self._check_namespace(res, ns, name)
        if self.raw(res, ns, name) is not None:
            raise already_exists(res.qualified, name)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        for key in ("deletionTimestamp", "resourceVersion", "managedFields", "selfLink"):
            meta.pop(key, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
        if res.generation:
            meta["generation"] = 1
        if res.status:
            obj.pop("status", None)
        self._defaults(res, obj, None)
        if dry_run:
            return obj
        self._bump(obj)
        self.objects[res][(ns or "", name)] = obj
        if manager is not None:
            self.ownership.written(meta["uid"], manager, None, sent)
        self._emit("ADDED", res, obj)
        return copy.deepcopy(obj)

    def update(
        self,
        res: Resource,
        ns: str | None,
        name: str,
        new: Obj,
        subresource: str | None = None,
        dry_run: bool = False,
        manager: str | None = None,
    ) -> Obj:
        """Replace the object (or its status); `manager` takes the fields it changed (None:
        the caller records ownership, as apply does)."""
        cur = self.raw(res, ns, name)
        if cur is None:
            raise not_found(res.qualified, name)
        meta = new.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        if meta.get("resourceVersion") not in (None, "", cur["metadata"]["resourceVersion"]):
            why = "the object has been modified; please apply your changes to the latest version and try again"
            raise conflict(res.qualified, name, why)
        if subresource == "status":
            merged = copy.deepcopy(cur)
            merged["status"] = copy.deepcopy(new.get("status"))
        else:
            merged = prune_nulls(new)
            merged["apiVersion"], merged["kind"] = res.api_version, res.kind
            mmeta = merged.setdefault("metadata", {})
            for key in ("uid", "creationTimestamp", "generation", "name", "namespace"):
                if key in cur["metadata"]:
                    mmeta[key] = cur["metadata"][key]
            mmeta.pop("managedFields", None)
            if res.status:
                merged.pop("status", None)
                if "status" in cur:
                    merged["status"] = copy.deepcopy(cur["status"])
            self._defaults(res, merged, cur)
            if res.generation and merged.get("spec") != cur.get("spec"):
                mmeta["generation"] = cur["metadata"].get("generation", 1) + 1
        merged["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        if merged == cur or dry_run:  # a no-op write keeps its resourceVersion and emits nothing
            return copy.deepcopy(merged)
        self._bump(merged)
        self.objects[res][(ns or "", name)] = merged
        if manager is not None and subresource != "status":
            self.ownership.written(merged["metadata"]["uid"], manager, cur, merged)
        self._emit("MODIFIED", res, merged, cur)
        return copy.deepcopy(merged)

    def delete(
        self,
        res: Resource,
        ns: str | None,
        name: str,
        options: Obj | None = None,
        dry_run: bool = False,
    ) -> Obj:
        options = options or {}
        cur = self.raw(res, ns, name)
        if cur is None:
            raise not_found(res.qualified, name)
        pre = options.get("preconditions") or {}
        for key in ("uid", "resourceVersion"):
            if pre.get(key) and pre[key] != cur["metadata"].get(key):
                raise conflict(res.qualified, name, f"Precondition failed: {key} mismatch")
        if dry_run:
            return copy.deepcopy(cur)
        if res is self.registry.namespace:
            return self._terminate_namespace(cur)
        self._remove(res, cur)
        orphan = options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents")
        if "propagationPolicy" not in options and res.kind in ORPHANED_BY_DEFAULT:
            orphan = options.get("orphanDependents", True)
        if not orphan:
            self._collect(cur)
        return copy.deepcopy(cur)

    def _terminate_namespace(self, ns: Obj) -> Obj:
        """Like the namespace controller: Terminating first, emptied and gone a moment later,
        so clients that delete a namespace and then its contents (kubectl delete -f) work."""
        if "deletionTimestamp" not in ns["metadata"]:
            old = copy.deepcopy(ns)
            ns["metadata"]["deletionTimestamp"] = now()
            ns["status"] = {"phase": "Terminating"}
            self._bump(ns)
            self._emit("MODIFIED", self.registry.namespace, ns, old)
            try:
                loop = asyncio.get_running_loop()
                loop.call_later(
                    self.namespace_delay, self._finalize_namespace, ns["metadata"]["uid"]
                )
            except RuntimeError:
                self._finalize_namespace(ns["metadata"]["uid"])
        return copy.deepcopy(ns)

    def _finalize_namespace(self, uid: str) -> None:
        ns = next(
            (
                o
                for o in self.objects[self.registry.namespace].values()
                if o["metadata"]["uid"] == uid
            ),
            None,
        )
        if ns is None:
            return
        name = ns["metadata"]["name"]
        for res, objs in list(self.objects.items()):
            if res.namespaced:
                for ident in [k for k in objs if k[0] == name]:
                    self._remove(res, objs[ident])
        self._remove(self.registry.namespace, ns)

    def _remove(self, res: Resource, obj: Obj) -> None:
        meta = obj["metadata"]
        if self.objects[res].pop((meta.get("namespace", ""), meta["name"]), None) is None:
            return
        self.last_applied = {k: v for k, v in self.last_applied.items() if k[0] != meta["uid"]}
        self.ownership.forget(meta["uid"])
        self._bump(obj)
        self._emit("DELETED", res, obj)

    def _collect(self, owner: Obj) -> None:
        """Garbage collection by ownerReferences, which the stand-in does inline."""
        uid, ns = owner["metadata"]["uid"], owner["metadata"].get("namespace")
        for res, objs in list(self.objects.items()):
            for obj in list(objs.values()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs) and (
                    ns is None or obj["metadata"].get("namespace") == ns
                ):
                    self._remove(res, obj)
                    self._collect(obj)

    def _defaults(self, res: Resource, obj: Obj, cur: Obj | None) -> None:
        """The API server's defaulting and allocation that clients depend on (the field
        defaults of the workload and Service kinds are defaulting.py's)."""
        meta, spec = obj["metadata"], obj.get("spec")
        if res.kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["status"] = {"phase": "Active"}
        elif res.kind == "Secret":
            data = obj.setdefault("data", {}) or {}
            for k, v in (obj.pop("stringData", None) or {}).items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
            obj.setdefault("type", "Opaque")
        elif res.kind in ("Deployment", "StatefulSet", "ReplicaSet") and isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            defaulting.workload(res.kind, obj)
            if res.kind == "Deployment":
                surge = {"maxUnavailable": "25%", "maxSurge": "25%"}
                spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": surge})
                spec.setdefault("revisionHistoryLimit", 10)
                spec.setdefault("progressDeadlineSeconds", 600)
        elif res.kind in ("DaemonSet", "Job", "Pod"):
            defaulting.workload(res.kind, obj)
            if res.kind == "Pod" and cur is None:  # the pod strategy's PrepareForCreate
                status = obj.get("status")
                status = status if isinstance(status, dict) else {}
                obj["status"] = {**status, "phase": status.get("phase") or "Pending"}
        elif res.kind == "Service" and isinstance(spec, dict):
            spec.setdefault("type", "ClusterIP")
            defaulting.service(spec)
            validation.service(meta["name"], spec)
            old = (cur or {}).get("spec") or {}
            if spec["type"] != "ExternalName":
                ip = spec.get("clusterIP") or old.get("clusterIP") or self._allocate_ip()
                spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        elif res.kind == "NetworkPolicy" and isinstance(spec, dict):
            defaulting.network_policy(spec)

    def _allocate_ip(self) -> str:
        self._ips += 1
        return str(ipaddress.ip_address("10.96.0.10") + self._ips)
