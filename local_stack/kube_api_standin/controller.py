"""Stand-in for kube-controller-manager and kubelet: workloads report themselves ready.

Without it nothing would ever become ready and `helm --wait` could only time out. Objects can
be held back (`never_ready`) to exercise timeouts, rollbacks and health failures.

Deployments are ready through their pods, as on a cluster: a Deployment owns a ReplicaSet per
pod template, the ReplicaSet owns pods (pods.py), and the Deployment is available once the
current ReplicaSet's pods are all Ready. Each new template gets the next revision, written
as `deployment.kubernetes.io/revision` on its ReplicaSet and on the Deployment (a template
that becomes current again, a rollback, gets the next one too). A pod is not Ready while a Secret or ConfigMap it
references is missing, or while the stand-in holds it (`never_ready` on the pod, its
ReplicaSet or its Deployment). Other workloads (StatefulSets, DaemonSets, bare pods)
report themselves ready unless held. Jobs and their pods are played by the job controller
(jobs.py), which registers in `skip`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

from .pods import Pods
from .store import Event, Obj, Store, now

WORKLOADS = {
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "Pod",
    "PersistentVolumeClaim",
    "Service",
}


REVISION = "deployment.kubernetes.io/revision"
MANAGER = "kube-controller-manager"


def _revision(obj: Obj) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def template_hash(template: Any) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return "".join(c for c in digest if c.isalnum())[:10]


def _conditions(old: Obj | None, wanted: list[tuple[str, str, str, str]]) -> list[Obj]:
    """Conditions that keep their timestamps while unchanged, so reconciling converges."""
    prev = {c.get("type"): c for c in (old or {}).get("conditions") or []}
    out = []
    for type_, status, reason, message in wanted:
        p = prev.get(type_)
        if p and (p.get("status"), p.get("reason"), p.get("message")) == (status, reason, message):
            out.append(p)
        else:
            t = now()
            cond = {"type": type_, "status": status, "reason": reason, "message": message}
            out.append({**cond, "lastTransitionTime": t, "lastUpdateTime": t})
    return out


def _with_replica_failure(conditions: list[Obj], old: Obj | None, message: str) -> list[Obj]:
    """`conditions` plus `ReplicaFailure: FailedCreate` carrying the refusal."""
    failure = _conditions(
        old, [("ReplicaFailure", "True", "FailedCreate", f"Error creating: {message}")]
    )
    return [*[c for c in conditions if c.get("type") != "ReplicaFailure"], *failure]


class Controller:
    def __init__(self, store: Store, delay: float = 0.05) -> None:
        self.store, self.delay = store, delay
        self.enabled = True
        self.never_ready: set[tuple[str | None, str]] = set()  # (namespace or None for any, name)
        self.pods = Pods(store, self.chain)
        self.pods.resync = self._resync_pod
        # Objects another controller plays: (kind, object) -> True to leave it alone.
        self.skip: list[Callable[[str, Obj], bool]] = []
        store.hooks.append(self._on_event)

    def _on_event(self, ev: Event) -> None:
        kind, meta = ev.res.kind, ev.obj["metadata"]
        ns = meta.get("namespace")
        if kind == "Pod" and ev.type == "DELETED":
            self.pods.gone(ev.obj)  # even with the controller off: its processes end
        if not self.enabled:
            return
        later = asyncio.get_running_loop().call_later
        if ev.type != "DELETED" and kind in WORKLOADS:
            later(self.delay, self.reconcile, kind, ns, meta["name"])
        if kind in ("Pod", "ReplicaSet"):
            # A pod's readiness is its ReplicaSet's, a ReplicaSet's its Deployment's.
            for ref in meta.get("ownerReferences") or []:
                if ref.get("controller") and ref.get("kind") in ("ReplicaSet", "Deployment"):
                    later(self.delay, self.reconcile, ref["kind"], ns, ref.get("name"))
        if kind in ("Secret", "ConfigMap") and ns:
            # What pods reference may have appeared or gone: kubelet checks again.
            later(self.delay, self.reconcile_namespace, ns)

    def _resync_pod(self, pod: Obj) -> None:
        """kubelet looks at a pod again (an image pull back-off ended): its owner syncs."""
        meta = pod["metadata"]
        ref = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        if ref is None:
            self.reconcile("Pod", meta.get("namespace"), meta["name"])
        elif ref.get("kind") == "ReplicaSet":
            self.reconcile("ReplicaSet", meta.get("namespace"), ref["name"])

    def chain(self, obj: Obj) -> list[str]:
        """The names of `obj` and of its controllers up to the root (pod, ReplicaSet,
        Deployment), whether or not those still exist."""
        names: list[str] = []
        current: Obj | None = obj
        for _ in range(4):
            if current is None:
                break
            meta = current["metadata"]
            names.append(meta["name"])
            ref = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
            if ref is None:
                break
            names.append(ref["name"])
            res = self.store.registry.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
            current = self.store.raw(res, meta.get("namespace"), ref["name"]) if res else None
        return names

    def blocked(self, obj: Obj) -> bool:
        ns = obj["metadata"].get("namespace")
        marks = self.never_ready
        return any((ns, n) in marks or (None, n) in marks for n in self.chain(obj))

    def reconcile_namespace(self, ns: str) -> None:
        for res, objs in list(self.store.objects.items()):
            if res.kind in ("ReplicaSet", "Pod"):
                for obj in list(objs.values()):
                    if obj["metadata"].get("namespace") == ns:
                        self.reconcile(res.kind, ns, obj["metadata"]["name"])

    def reconcile_all(self) -> None:
        for res, objs in list(self.store.objects.items()):
            if res.kind in WORKLOADS:
                for obj in list(objs.values()):
                    self.reconcile(
                        res.kind, obj["metadata"].get("namespace"), obj["metadata"]["name"]
                    )

    def reconcile(self, kind: str, ns: str | None, name: str) -> None:
        if not self.enabled:
            return
        res = next(r for r in self.store.registry.resources if r.kind == kind)
        obj = self.store.raw(res, ns, name)
        if obj is None or any(skip(kind, obj) for skip in self.skip):
            return
        ready = not self.blocked(obj)
        old = obj.get("status") or {}
        if kind == "Deployment":
            rs = self._ensure_replica_set(obj)
            status = self._status_deployment(obj, len(self._ready_pods(rs)), old)
            refused = self.pods.refused.get(rs["metadata"]["uid"]) if rs else None
            if refused is not None:
                status["conditions"] = _with_replica_failure(status["conditions"], old, refused)
        elif kind == "ReplicaSet":
            status = self._status_replicaset(obj, self.pods.sync(obj, not ready), old)
        elif kind == "Pod":
            if not any(r.get("controller") for r in obj["metadata"].get("ownerReferences") or []):
                self.pods.kubelet(obj, not ready)  # a bare pod; owned ones sync with their owner
            return
        else:
            status = getattr(self, f"_status_{kind.lower()}")(obj, ready, old)
        if status is not None and status != obj.get("status"):
            self.store.update(res, ns, name, {"status": status}, subresource="status")

    # -- per kind: the status a healthy (or held back) object reports --------------------
    def _ready_pods(self, rs: Obj | None) -> list[Obj]:
        if rs is None:
            return []
        return [
            p
            for p in self.pods.owned(rs)
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        ]

    def _status_deployment(self, obj: Obj, ready_pods: int, old: Obj) -> Obj:
        n, gen = obj["spec"].get("replicas", 1), obj["metadata"].get("generation", 1)
        rs = f'ReplicaSet "{obj["metadata"]["name"]}-{template_hash(obj["spec"].get("template"))}"'
        if ready_pods >= n:
            counts = {
                "replicas": n,
                "updatedReplicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
            }
            conds = [
                (
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                ),
                (
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f"{rs} has successfully progressed.",
                ),
            ]
        else:
            counts = {"replicas": n, "updatedReplicas": n, "unavailableReplicas": n - ready_pods}
            if ready_pods:
                counts.update(readyReplicas=ready_pods, availableReplicas=ready_pods)
            conds = [
                (
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                ),
                ("Progressing", "True", "ReplicaSetUpdated", f"{rs} is progressing."),
            ]
        return {"observedGeneration": gen, **counts, "conditions": _conditions(old, conds)}

    def _status_replicaset(self, obj: Obj, ready_pods: int, old: Obj) -> Obj:
        n = obj["spec"].get("replicas", 1)
        out: Obj = {
            "replicas": n,
            "fullyLabeledReplicas": n,
            "observedGeneration": obj["metadata"].get("generation", 1),
        }
        refused = self.pods.refused.get(obj["metadata"]["uid"])
        if refused is not None:
            # As the ReplicaSet controller reports a pod the API server refused.
            out["replicas"] = out["fullyLabeledReplicas"] = 0
            out["conditions"] = _with_replica_failure([], old, refused)
        return (
            {**out, "readyReplicas": ready_pods, "availableReplicas": ready_pods}
            if ready_pods
            else out
        )

    def _status_statefulset(self, obj: Obj, ready: bool, old: Obj) -> Obj:
        n = obj["spec"].get("replicas", 1)
        revision = f"{obj['metadata']['name']}-{template_hash(obj['spec'].get('template'))}"
        out = {
            "observedGeneration": obj["metadata"].get("generation", 1),
            "replicas": n,
            "updateRevision": revision,
        }
        if not ready:
            return {**out, "currentRevision": old.get("currentRevision", revision)}
        counts = {
            "readyReplicas": n,
            "currentReplicas": n,
            "updatedReplicas": n,
            "availableReplicas": n,
        }
        return {**out, **counts, "currentRevision": revision}

    def _status_daemonset(self, obj: Obj, ready: bool, old: Obj) -> Obj:
        n = 1 if ready else 0
        return {
            "observedGeneration": obj["metadata"].get("generation", 1),
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "updatedNumberScheduled": 1,
            "numberReady": n,
            "numberAvailable": n,
            "numberMisscheduled": 0,
        }

    def _status_persistentvolumeclaim(self, obj: Obj, ready: bool, old: Obj) -> Obj:
        spec = obj.get("spec") or {}
        capacity = (spec.get("resources") or {}).get("requests") or {}
        return {
            "phase": "Bound" if ready else "Pending",
            "accessModes": spec.get("accessModes") or [],
            "capacity": capacity,
        }

    def _status_service(self, obj: Obj, ready: bool, old: Obj) -> Obj | None:
        if (obj.get("spec") or {}).get("type") != "LoadBalancer":
            return None
        return {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]} if ready else {}}

    def _ensure_replica_set(self, dep: Obj) -> Obj | None:
        """The ReplicaSet helm v3 `--wait` looks up: owned by the Deployment, same template."""
        meta, spec = dep["metadata"], dep.get("spec") or {}
        ns, h = meta.get("namespace"), template_hash(spec.get("template"))
        rs_res = next(r for r in self.store.registry.resources if r.kind == "ReplicaSet")
        owned = [
            o
            for o in self.store.objects[rs_res].values()
            if o["metadata"].get("namespace") == ns
            and any(r.get("uid") == meta["uid"] for r in o["metadata"].get("ownerReferences") or [])
        ]
        for old in owned:
            if old["metadata"]["name"] != f"{meta['name']}-{h}" and old["spec"].get("replicas"):
                self.store.update(
                    rs_res,
                    ns,
                    old["metadata"]["name"],
                    {**copy.deepcopy(old), "spec": {**old["spec"], "replicas": 0}},
                )
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = h
        rs = {
            "metadata": {
                "name": f"{meta['name']}-{h}",
                "labels": template["metadata"]["labels"],
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "replicas": spec.get("replicas", 1),
                "selector": selector,
                "template": template,
            },
        }
        current = self.store.raw(rs_res, ns, rs["metadata"]["name"])
        revisions = [_revision(o) for o in owned if o["metadata"]["name"] != rs["metadata"]["name"]]
        newest = max(revisions, default=0)
        if current is None:
            rs["metadata"]["annotations"] = {REVISION: str(newest + 1)}
            self.store.create(rs_res, ns, rs, manager=MANAGER)
        elif current["spec"] != rs["spec"] or _revision(current) <= newest:
            # A template that becomes current again (a rollback) gets the next revision.
            meta_now = copy.deepcopy(current["metadata"])
            if _revision(current) <= newest:
                meta_now.setdefault("annotations", {})[REVISION] = str(newest + 1)
            self.store.update(
                rs_res,
                ns,
                rs["metadata"]["name"],
                {**copy.deepcopy(current), "metadata": meta_now, "spec": rs["spec"]},
                manager=MANAGER,
            )
        current = self.store.raw(rs_res, ns, rs["metadata"]["name"])
        assert current is not None
        revision = str(_revision(current))
        if (meta.get("annotations") or {}).get(REVISION) != revision:
            # The deployment controller writes the current revision onto the Deployment.
            updated = copy.deepcopy(dep)
            updated["metadata"].setdefault("annotations", {})[REVISION] = revision
            dep_res = next(r for r in self.store.registry.resources if r.kind == "Deployment")
            self.store.update(dep_res, ns, meta["name"], updated, manager=MANAGER)
        # Settle the ReplicaSet before the Deployment reports available, as helm v3 reads both.
        self.reconcile("ReplicaSet", ns, rs["metadata"]["name"])
        return self.store.raw(rs_res, ns, rs["metadata"]["name"])
