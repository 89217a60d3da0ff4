"""Pods: what the ReplicaSet controller and the kubelet do for them in the stand-in.

The ReplicaSet controller part: a ReplicaSet owns `spec.replicas` pods named
`<replicaset>-<5 random characters>`, with the template's labels (so a Service's selector
finds them), its spec, an ownerReference to the ReplicaSet and a node. Pods beyond the count
are deleted (scaled down, or an old ReplicaSet after a rollout); a deleted pod is replaced.

The kubelet part, per pod, in the order kubelet checks it:
- a volume whose Secret or ConfigMap (or one of its `items` keys) is missing keeps the pod
  `Pending` with its containers waiting in `ContainerCreating`, and a `FailedMount` Event says
  which (`MountVolume.SetUp failed for volume "v" : configmap "x" not found`);
- an env `secretKeyRef` / `configMapKeyRef` or an `envFrom` whose object or key is missing
  leaves the containers waiting with reason `CreateContainerConfigError` and kubelet's message
  (`secret "x" not found`, `couldn't find key k in Secret ns/x`);
- otherwise the containers run; the pod is Ready unless the stand-in holds it back
  (`never_ready`, which acts as a readiness probe that never passes).
`optional: true` references never block. The check is repeated whenever a Secret or ConfigMap
in the namespace changes, so a pod recovers once what it needs appears, as with a real kubelet
(which retries). Deployments count only Ready pods (controller.py).

Processes: a pod that is Ready has its containers "run" by the registered container runtimes
(`ContainerRuntime`): the local stack starts a Temporal dev server for a frontend pod, say.
When the pod goes away (deleted, scaled down, its Deployment deleted) the runtime stops them.
`never_serving` marks pods whose containers count as started (so the pod is Ready, as the
chart's probe-less Temporal pods are) while their processes are never started: the state of a
frontend that runs but never serves. Port-forward (portforward.py) reaches a pod's port at the
address its runtime reports.

Images (images.py): a container whose image the linked registry does not have keeps the
pod `Pending`, the container waiting in `ErrImagePull` and then `ImagePullBackOff`, with the
Events kubelet writes (`Pulling`, `Failed`, `BackOff`); kubelet runs again when the back-off
ends, and a pod whose image has appeared starts. Volumes are mounted before images are
pulled, images pulled before the container's config is resolved, as kubelet does.

Simplifications: init containers are checked together with the containers (their errors show
on `containerStatuses`); probes, restarts, resource limits and scheduling are not
modelled; pods of StatefulSets, DaemonSets and Jobs are not created.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import ipaddress
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from . import pod_security
from .images import ImagePulls
from .store import Obj, Store, now

NODE = "standin-node"
NODE_IP = "127.0.0.1"
POD_NETWORK = ipaddress.ip_address("10.244.0.0")


class ContainerRuntime(Protocol):
    """Runs the processes of Ready pods (the local stack's, or a test's). Called on the
    stand-in's event loop: `start` and `stop` must not block (start work on a thread)."""

    def start(self, pod: Obj, files: Mapping[str, bytes]) -> None:
        """The pod became Ready: start what runs in it (ignore pods that are not yours).
        `files`: what its containers see mounted from ConfigMap and Secret volumes, path ->
        content, as it was at the start (subPath mounts never change afterwards)."""

    def stop(self, pod: Obj) -> None:
        """The pod is gone: stop what was started for it."""

    def address(self, pod: Obj, port: int) -> tuple[str, int] | None:
        """Where the pod's `port` is served now; None when nothing listens there."""


def _data_keys(obj: Obj) -> set[str]:
    return set(obj.get("data") or {}) | set(obj.get("binaryData") or {})


class Pods:
    def __init__(self, store: Store, chain: Callable[[Obj], list[str]]) -> None:
        self.store = store
        self._chain = chain  # the names of an object and its controllers, up to the root
        self.never_serving: set[tuple[str | None, str]] = set()
        self.runtimes: list[ContainerRuntime] = []
        self.images = ImagePulls()
        # Runs kubelet for the pod again (its owner's sync): set by the controller.
        self.resync: Callable[[Obj], None] | None = None
        self._started: dict[str, Obj] = {}  # pod uid -> pod whose runtimes were started
        self._ips = 0
        reg = store.registry
        self.res = next(r for r in reg.resources if r.kind == "Pod")
        self._secrets = next(r for r in reg.resources if r.kind == "Secret")
        self._config_maps = next(r for r in reg.resources if r.kind == "ConfigMap")
        self._events = next(r for r in reg.resources if r.kind == "Event")
        self._namespaces = next(r for r in reg.resources if r.kind == "Namespace")
        # ReplicaSet uid -> the PodSecurity refusal of its latest pod creation.
        self.refused: dict[str, str] = {}

    # -- the ReplicaSet controller ---------------------------------------------------------
    def owned(self, owner: Obj) -> list[Obj]:
        uid, ns = owner["metadata"]["uid"], owner["metadata"].get("namespace")
        return sorted(
            (
                p
                for p in self.store.objects[self.res].values()
                if p["metadata"].get("namespace") == ns
                and any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
            ),
            key=lambda p: p["metadata"]["creationTimestamp"] + p["metadata"]["name"],
        )

    def sync(self, rs: Obj, held: bool) -> int:
        """Make the ReplicaSet's pods match its `spec.replicas`, bring each one's status up to
        date, and return how many are Ready."""
        want = int((rs.get("spec") or {}).get("replicas", 1) or 0)
        pods = self.owned(rs)
        for extra in pods[want:]:
            self.store.delete(
                self.res, extra["metadata"].get("namespace"), extra["metadata"]["name"]
            )
        for _ in range(want - len(pods)):
            self._create(rs)
        ready = 0
        for pod in self.owned(rs):
            ready += self.kubelet(pod, held)
        return ready

    def _create(self, rs: Obj) -> None:
        meta, template = rs["metadata"], copy.deepcopy(rs["spec"].get("template") or {})
        spec = template.get("spec") or {}
        spec.setdefault("nodeName", NODE)
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        pod = {
            "metadata": {
                "name": f"{meta['name']}-{secrets.token_hex(3)[:5]}",
                "labels": (template.get("metadata") or {}).get("labels") or {},
                "annotations": (template.get("metadata") or {}).get("annotations") or {},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }
        ns = meta.get("namespace")
        refused = pod_security.refusal(
            self.store.raw(self._namespaces, None, ns), str(pod["metadata"]["name"]), spec
        )
        if refused is not None:
            # The API server refuses the pod; the ReplicaSet controller reports it.
            # One Event and one message per ReplicaSet while refused (the real controller
            # backs off between tries; each try's message names another pod).
            if meta["uid"] not in self.refused:
                self.refused[meta["uid"]] = refused
                self._event(rs, "FailedCreate", f"Error creating: {refused}", "Warning")
            return
        self.refused.pop(meta["uid"], None)
        self.store.create(self.res, ns, pod)

    # -- the kubelet -----------------------------------------------------------------------
    def kubelet(self, pod: Obj, held: bool) -> bool:
        """Set the pod's status from what it references and the stand-in's marks; start or
        stop its processes; True when it is Ready."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        ns = meta.get("namespace")
        held = held or self._marked(pod, None)
        mount = self._volume_problem(ns, spec)
        pulls = {} if mount else self._pull_problems(pod, spec)
        config = None if mount or pulls else self._env_problem(ns, spec)
        if mount:
            self._event(pod, "FailedMount", mount, "Warning")
        started = not (mount or config or pulls)
        ready = started and not held
        old = pod.get("status") or {}
        waiting: dict[str, tuple[str, str | None]] = dict(pulls)
        if config:
            waiting = {
                str(c.get("name")): ("CreateContainerConfigError", config) for c in _all(spec)
            }
        status = self._status(pod, old, started, ready, waiting)
        if status != old:
            self.store.update(self.res, ns, meta["name"], {"status": status}, subresource="status")
        serving = ready and not self._marked(pod, self.never_serving)
        uid = meta["uid"]
        if serving and uid not in self._started:
            self._started[uid] = copy.deepcopy(pod)
            files = self._mounted_files(ns, spec)
            for runtime in self.runtimes:
                runtime.start(pod, files)
        elif not serving and uid in self._started:
            self._stop(uid)
        return ready

    def _pull_problems(self, pod: Obj, spec: Obj) -> dict[str, tuple[str, str]]:
        """container name -> (ErrImagePull / ImagePullBackOff, message) for the containers
        whose image the registry does not have; a pull again once the back-off ends."""

        def event(reason: str, message: str, type_: str) -> None:
            self._event(pod, reason, message, type_)

        problems = {}
        for container in _all(spec):
            found = self.images.pull(pod, str(container.get("image")), event)
            if found is not None:
                problems[str(container.get("name"))] = found
        retry = self.images.retry_in(pod) if problems else None
        if retry is not None and self.resync is not None:
            resync = self.resync
            asyncio.get_running_loop().call_later(retry, resync, pod)
        return problems

    def _marked(self, pod: Obj, marks: set[tuple[str | None, str]] | None) -> bool:
        if marks is None:
            return False
        ns = pod["metadata"].get("namespace")
        return any((ns, n) in marks or (None, n) in marks for n in self._chain(pod))

    def gone(self, pod: Obj) -> None:
        """The pod was deleted (by anyone): its processes stop."""
        self.images.forget(pod)
        if pod["metadata"]["uid"] in self._started:
            self._stop(pod["metadata"]["uid"])

    def _stop(self, uid: str) -> None:
        pod = self._started.pop(uid)
        for runtime in self.runtimes:
            runtime.stop(pod)

    def stop_all(self) -> None:
        for uid in list(self._started):
            self._stop(uid)

    def address(self, pod: Obj, port: int) -> tuple[str, int] | None:
        if pod["metadata"]["uid"] not in self._started:
            return None
        for runtime in self.runtimes:
            found = runtime.address(pod, port)
            if found is not None:
                return found
        return None

    def _status(
        self,
        pod: Obj,
        old: Obj,
        started: bool,
        ready: bool,
        waiting: Mapping[str, tuple[str, str | None]],
    ) -> Obj:
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or []]
        since = old.get("startTime") or now()
        containers = []
        for c in spec.get("containers") or []:
            prev: Obj = next(
                (s for s in old.get("containerStatuses") or [] if s.get("name") == c.get("name")),
                {},
            )
            if started:
                running = (prev.get("state") or {}).get("running") or {"startedAt": now()}
                state: Obj = {"running": running}
            elif c.get("name") in waiting:
                reason, message = waiting[c.get("name")]
                state = {"waiting": {"reason": reason, "message": message}}
            else:
                state = {"waiting": {"reason": "ContainerCreating"}}
            uid = pod["metadata"]["uid"]
            containers.append(
                {
                    "name": c.get("name"),
                    "image": c.get("image"),
                    "imageID": "",
                    "ready": ready,
                    "started": started,
                    "restartCount": 0,
                    "state": state,
                    **({"containerID": f"standin://{uid[:8]}-{c.get('name')}"} if started else {}),
                }
            )
        unready = "" if ready else f"containers with unready status: [{' '.join(map(str, names))}]"
        wanted = [
            ("PodReadyToStartContainers", "True" if started or waiting else "False", "", ""),
            ("Initialized", "True", "", ""),
            ("Ready", "True" if ready else "False", "" if ready else "ContainersNotReady", unready),
            (
                "ContainersReady",
                "True" if ready else "False",
                "" if ready else "ContainersNotReady",
                unready,
            ),
            ("PodScheduled", "True", "", ""),
        ]
        prev_conds = {c.get("type"): c for c in old.get("conditions") or []}
        conditions = []
        for type_, flag, reason, message in wanted:
            p = prev_conds.get(type_)
            if p and (p.get("status"), p.get("reason", ""), p.get("message", "")) == (
                flag,
                reason,
                message,
            ):
                conditions.append(p)
                continue
            cond = {"type": type_, "status": flag, "lastTransitionTime": now()}
            conditions.append(
                {**cond, **({"reason": reason, "message": message} if reason else {})}
            )
        return {
            "phase": "Running" if started else "Pending",
            "conditions": conditions,
            "containerStatuses": containers,
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": old.get("podIP") or self._allocate_ip(),
            "startTime": since,
            "qosClass": "Burstable",
        }

    def _allocate_ip(self) -> str:
        self._ips += 1
        return str(POD_NETWORK + 10 + self._ips)

    # -- what a pod references -------------------------------------------------------------
    def _lookup(self, ns: str | None, kind: str, name: str) -> Obj | None:
        res = self._secrets if kind == "Secret" else self._config_maps
        return self.store.raw(res, ns, name)

    def _volume_problem(self, ns: str | None, spec: Obj) -> str | None:
        for vol in spec.get("volumes") or []:
            for kind, name, items, optional in _volume_sources(vol):
                found = self._lookup(ns, kind, name)
                what = "secret" if kind == "Secret" else "configmap"
                why = None
                if found is None and not optional:
                    why = f'{what} "{name}" not found'
                elif found is not None:
                    missing = [k for k in items if k not in _data_keys(found)]
                    if missing and not optional:
                        why = f"{what} references non-existent config key: {missing[0]}"
                if why:
                    return f'MountVolume.SetUp failed for volume "{vol.get("name")}" : {why}'
        return None

    def _mounted_files(self, ns: str | None, spec: Obj) -> dict[str, bytes]:
        """Path -> content of every file the containers mount from a ConfigMap or a Secret
        (`items` and `subPath` honoured; Secret data decoded)."""
        volumes = {v.get("name"): v for v in spec.get("volumes") or [] if isinstance(v, dict)}
        files: dict[str, bytes] = {}
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            for mount in c.get("volumeMounts") or []:
                content = self._volume_files(ns, volumes.get(mount.get("name")) or {})
                base = str(mount.get("mountPath") or "").rstrip("/")
                sub = mount.get("subPath")
                if sub:
                    if sub in content:
                        files[base] = content[sub]
                    continue
                for path, data in content.items():
                    files[f"{base}/{path}"] = data
        return files

    def _volume_files(self, ns: str | None, vol: Obj) -> dict[str, bytes]:
        """Path inside the volume -> content, for a ConfigMap or Secret volume."""
        for kind, src in (("ConfigMap", vol.get("configMap")), ("Secret", vol.get("secret"))):
            if not isinstance(src, dict):
                continue
            found = self._lookup(ns, kind, str(src.get("name") or src.get("secretName") or ""))
            if found is None:
                return {}
            data: dict[str, bytes] = {
                k: (base64.b64decode(v) if kind == "Secret" else str(v).encode())
                for k, v in (found.get("data") or {}).items()
            }
            data.update(
                {k: base64.b64decode(v) for k, v in (found.get("binaryData") or {}).items()}
            )
            items = src.get("items")
            if items:
                return {i["path"]: data[i["key"]] for i in items if i.get("key") in data}
            return data
        return {}

    def _env_problem(self, ns: str | None, spec: Obj) -> str | None:
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            for kind, name, key, optional in _env_references(c):
                if optional:
                    continue
                found = self._lookup(ns, kind, name)
                if found is None:
                    return f'{"secret" if kind == "Secret" else "configmap"} "{name}" not found'
                if key is not None and key not in _data_keys(found):
                    return f"couldn't find key {key} in {kind} {ns}/{name}"
        return None

    def _event(self, pod: Obj, reason: str, message: str, type_: str) -> None:
        """One Event per distinct message, as `kubectl describe pod` shows them (also for a
        ReplicaSet, whose pod creations the controller reports)."""
        meta = pod["metadata"]
        kind = pod.get("kind") or "Pod"
        digest = hashlib.sha256(f"{meta['uid']}{reason}{message}".encode()).hexdigest()[:10]
        name = f"{meta['name']}.{digest}"
        if self.store.raw(self._events, meta.get("namespace"), name) is not None:
            return
        stamp = now()
        self.store.create(
            self._events,
            meta.get("namespace"),
            {
                "metadata": {"name": name},
                "involvedObject": {
                    "kind": kind,
                    "apiVersion": "v1" if kind == "Pod" else "apps/v1",
                    "namespace": meta.get("namespace"),
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "source": (
                    {"component": "kubelet", "host": NODE}
                    if kind == "Pod"
                    else {"component": "replicaset-controller"}
                ),
                "count": 1,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
            },
        )


def _all(spec: Obj) -> list[Obj]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _volume_sources(vol: Obj) -> Iterator[tuple[str, str, list[str], bool]]:
    """(kind, name, item keys, optional) of each Secret / ConfigMap a volume mounts."""
    sources: list[tuple[str, Obj]] = []
    if isinstance(vol.get("secret"), dict):
        sources.append(("Secret", {**vol["secret"], "name": vol["secret"].get("secretName")}))
    if isinstance(vol.get("configMap"), dict):
        sources.append(("ConfigMap", vol["configMap"]))
    for src in (vol.get("projected") or {}).get("sources") or []:
        if isinstance(src.get("secret"), dict):
            sources.append(("Secret", src["secret"]))
        if isinstance(src.get("configMap"), dict):
            sources.append(("ConfigMap", src["configMap"]))
    for kind, src in sources:
        if src.get("name"):
            keys = [i.get("key") for i in src.get("items") or [] if i.get("key")]
            yield kind, str(src["name"]), keys, bool(src.get("optional"))


def _env_references(container: Obj) -> Iterator[tuple[str, str, str | None, bool]]:
    """(kind, name, key or None for a whole object, optional) of each env reference."""
    for env in container.get("env") or []:
        source: Any = (env or {}).get("valueFrom") or {}
        for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            ref = source.get(field)
            if isinstance(ref, dict) and ref.get("name"):
                yield kind, str(ref["name"]), ref.get("key"), bool(ref.get("optional"))
    for env_from in container.get("envFrom") or []:
        for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            ref = (env_from or {}).get(field)
            if isinstance(ref, dict) and ref.get("name"):
                yield kind, str(ref["name"]), None, bool(ref.get("optional"))
