"""The aiohttp application of the Kubernetes API stand-in: discovery, resource CRUD, watches,
and the `/_standin/...` admin endpoints that tests use to steer it.

Besides the bounded request log (`requests`), the stand-in keeps a log of every write
(`writes`): each POST/PUT/PATCH/DELETE it answered, in order, with the images of the
workload it wrote, and each database write of the job controller (jobs.py), so a test can
show what happened before what (no Deployment written before the schema moved)."""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime
import json
import re
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import yaml
from aiohttp import web

from . import patches, portforward, protobuf, rbac, tables
from .controller import Controller
from .errors import ApiError, invalid, not_found
from .identity import DEFAULT_TOKEN_SECONDS, RequestInfo, Tokens, User, request_info
from .jobs import JobController
from .ownership import manager_of
from .resources import RESOURCES, SCALABLE, Registry, Resource
from .selectors import parse_fields, parse_labels
from .store import Obj, Store, now

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "kube-api-standin",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
FAULT_REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class Fault:
    path_regex: str
    status: int = 500
    count: int = 1
    retry_after: int | None = None
    method: str | None = None

    def hits(self, method: str, path: str) -> bool:
        if self.count <= 0 or (self.method and self.method.upper() != method):
            return False
        return re.search(self.path_regex, path) is not None


def _scale_of(obj: Obj) -> Obj:
    """A workload's autoscaling/v1 Scale, as the API server derives it."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    match = (spec.get("selector") or {}).get("matchLabels") or {}
    keep = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in keep if k in meta},
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(match.items())),
        },
    }


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


class ApiServer:
    def __init__(self, controller: bool = True) -> None:
        self.registry = Registry(RESOURCES)
        self.store = Store(self.registry)
        self.controller = Controller(self.store)
        self.controller.enabled = controller
        self.faults: list[Fault] = []
        self.tokens = Tokens()
        self.authorizer = rbac.Authorizer(lambda kind: self.store.of_kind(rbac.RBAC, kind))
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=20000)
        self.writes: collections.deque[dict[str, Any]] = collections.deque(maxlen=50000)
        self.jobs = JobController(self.store, self.controller, self.record_write)
        self.app = web.Application(client_max_size=256 * 1024**2, middlewares=[self._middleware])
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)

    # -- controls (run on the server's loop) ---------------------------------------------
    def set_never_ready(self, name: str, namespace: str | None = None, never: bool = True) -> None:
        (self.controller.never_ready.add if never else self.controller.never_ready.discard)(
            (namespace, name)
        )
        self.controller.reconcile_all()

    def set_never_serving(
        self, name: str, namespace: str | None = None, never: bool = True
    ) -> None:
        marks = self.controller.pods.never_serving
        (marks.add if never else marks.discard)((namespace, name))
        self.controller.reconcile_all()

    def add_fault(self, fault: Fault) -> None:
        re.compile(fault.path_regex)
        self.faults.append(fault)

    def reset(self) -> None:
        self.jobs.reset()
        self.controller.pods.stop_all()  # the pods vanish with the store, their processes too
        self.store.reset()
        self.faults.clear()
        self.controller.never_ready.clear()
        self.controller.pods.never_serving.clear()
        self.controller.enabled = True
        self.requests.clear()
        self.writes.clear()

    def record_write(self, entry: dict[str, Any]) -> None:
        """Add a write (an API request or a database write of the job controller)."""
        self.writes.append({"time": time.time(), **entry})

    def _log_write(self, request: web.Request, resp: web.StreamResponse) -> None:
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path_qs,
            "status": resp.status,
        }
        text = resp.text if isinstance(resp, web.Response) else None
        if (
            resp.status < 400
            and text
            and ("/deployments" in request.path or "/jobs" in request.path)
        ):
            try:
                obj = json.loads(text)
                spec = obj.get("spec", {}).get("template", {}).get("spec", {})
                containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
                entry["kind"] = obj.get("kind")
                entry["name"] = obj.get("metadata", {}).get("name")
                entry["images"] = [c.get("image") for c in containers]
            except (ValueError, AttributeError):
                pass
        self.record_write(entry)

    # -- plumbing ------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        resp: web.StreamResponse
        fault = None
        admin = request.path.startswith("/_standin/")
        user = ""
        checked: list[str] = []
        info = request_info(request.method, request.path, dict(request.query))
        if not admin:
            fault = next((f for f in self.faults if f.hits(request.method, request.path)), None)
        try:
            if not admin:
                who = self.tokens.user(
                    request.headers.get("Authorization"), self._service_account_uid
                )
                user = who.name
                self._authorize(who, info, request, checked)
        except ApiError as e:
            resp = _json(e.status(), e.code)
        else:
            resp = await self._handle(request, handler, fault)
        entry = {"method": request.method, "path": request.path_qs, "status": resp.status}
        self.requests.append(
            {
                **entry,
                "content_type": request.headers.get("Content-Type", ""),
                "user": user,
                **info.as_log(),
                "authorized": checked,
            }
        )
        if request.method in WRITE_METHODS and not admin:
            self._log_write(request, resp)
        return resp

    def _service_account_uid(self, namespace: str, name: str) -> str | None:
        res = self.registry.by_kind("v1", "ServiceAccount")
        found = self.store.raw(res, namespace, name) if res is not None else None
        return found["metadata"]["uid"] if found is not None else None

    def _authorize(
        self, user: User, info: RequestInfo, request: web.Request, checked: list[str]
    ) -> None:
        """Authorize the request (rbac.py), adding each verb asked about to `checked`; a
        denial raises 403."""
        verbs = [info.verb]
        websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        if rbac.connect_needs_create(request.method, info, websocket):
            verbs.append("create")
        for verb in verbs:
            checked.append(verb)
            attributes = replace(info, verb=verb)
            decision = self.authorizer.authorize(user, attributes, request.path)
            if not decision.allowed:
                raise rbac.forbidden(user, attributes, request.path, decision.reason)

    async def _handle(
        self, request: web.Request, handler: Any, fault: Fault | None
    ) -> web.StreamResponse:
        resp: web.StreamResponse
        if fault is not None:
            fault.count -= 1
            self.faults = [f for f in self.faults if f.count > 0]
            reason = FAULT_REASONS.get(fault.status, "InternalError")
            resp = _json(
                ApiError(fault.status, reason, "injected by the stand-in").status(), fault.status
            )
            if fault.retry_after is not None:
                resp.headers["Retry-After"] = str(fault.retry_after)
        else:
            try:
                resp = await handler(request)
            except ApiError as e:
                resp = _json(e.status(), e.code)
        return resp

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        ctype = request.content_type
        try:
            if ctype == protobuf.CONTENT_TYPE:
                return protobuf.decode(raw)
            if not raw.strip():
                return None
            if "yaml" in ctype:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise ApiError(400, "BadRequest", f"cannot decode request body: {e}") from e

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path.startswith("/_standin/"):
            return await self._admin(request, path[len("/_standin/") :])
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if path == "/version":
            return _json(VERSION)
        if path == "/openapi/v2":
            if "protobuf" in request.headers.get("Accept", ""):
                return web.Response(
                    body=protobuf.openapi_v2(), content_type=protobuf.OPENAPI_V2_TYPE
                )
            return _json(
                {
                    "swagger": "2.0",
                    "info": {"title": "Kubernetes API stand-in", "version": "v1.32.0"},
                    "paths": {},
                }
            )
        parts = path.strip("/").split("/")
        groups = self.registry.group_versions()
        if parts == ["api"]:
            addr = [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]
            return _json(
                {"kind": "APIVersions", "versions": groups[""], "serverAddressByClientCIDRs": addr}
            )
        if parts == ["apis"]:
            docs = [self._group(g, vs) for g, vs in groups.items() if g]
            return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": docs})
        if parts[0] == "apis" and len(parts) == 2 and parts[1] in groups:
            return _json(
                {"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], groups[parts[1]])}
            )
        if parts[0] in ("api", "apis"):
            group, rest = (
                ("", parts[1:])
                if parts[0] == "api"
                else (parts[1] if len(parts) > 1 else "", parts[2:])
            )
            if rest and rest[0] in groups.get(group, []):
                version, rest = rest[0], rest[1:]
                if not rest:
                    resources = [
                        d
                        for r in self.registry.in_group_version(group, version)
                        for d in r.discovery()
                    ]
                    gv = f"{group}/{version}" if group else version
                    return _json(
                        {
                            "kind": "APIResourceList",
                            "apiVersion": "v1",
                            "groupVersion": gv,
                            "resources": resources,
                        }
                    )
                return await self._resource_route(request, group, version, rest)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    @staticmethod
    def _group(group: str, versions: list[str]) -> dict[str, Any]:
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": listed, "preferredVersion": listed[0]}

    async def _resource_route(
        self, request: web.Request, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        watch = rest[0] == "watch"  # the deprecated /watch/ prefix
        rest = rest[1:] if watch else rest
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            inner = self.registry.lookup(group, version, rest[2])
            if inner is not None and inner.namespaced:
                ns, rest = rest[1], rest[2:]
        res = self.registry.lookup(group, version, rest[0]) if rest else None
        if res is None or len(rest) > 3 or (ns is not None and not res.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub == "portforward" and res.kind == "Pod" and name and ns is not None:
            pods = self.controller.pods
            return await portforward.serve(pods, request, self.store.raw(res, ns, name), name)
        if sub == "log" and res.kind == "Pod" and name and ns and request.method == "GET":
            return self.jobs.pod_log(request, ns, name)
        if sub == "token" and res.kind == "ServiceAccount" and name and ns is not None:
            return await self._token_request(request, res, ns, name)
        if not res.stored:
            return await self._review(request, res, name)
        if sub not in (None, "status", "scale") or (name and res.namespaced and ns is None):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return await self._resource(request, res, ns, name, sub, watch)

    async def _token_request(
        self, request: web.Request, res: Resource, ns: str, name: str
    ) -> web.Response:
        """TokenRequest (`kubectl create token`): a token bound to the ServiceAccount."""
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", f"{request.method} is not supported here")
        account = self.store.raw(res, ns, name)
        if account is None:
            raise not_found(res.qualified, name)
        body = await self._body(request) or {}
        spec = dict((body.get("spec") if isinstance(body, dict) else None) or {})
        seconds = spec.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS
        if not isinstance(seconds, int) or seconds < 600:
            raise invalid(
                "spec.expirationSeconds: Invalid value: may not specify a duration less than "
                "10 minutes"
            )
        token, expires = self.tokens.issue_bound(ns, name, account["metadata"]["uid"], seconds)
        stamp = datetime.datetime.fromtimestamp(expires, datetime.UTC)
        spec.update(
            expirationSeconds=seconds,
            audiences=spec.get("audiences") or ["https://kubernetes.default.svc"],
        )
        answer = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
        return _json(answer, 201)

    async def _review(self, request: web.Request, res: Resource, name: str | None) -> web.Response:
        """SubjectAccessReview / SelfSubjectAccessReview, answered by rbac.py, never stored."""
        if request.method != "POST" or name is not None:
            raise ApiError(405, "MethodNotAllowed", f"{request.method} is not supported here")
        body = await self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
            raise ApiError(400, "BadRequest", "request body must be an access review with a spec")
        caller = None
        if res.kind == "SelfSubjectAccessReview":
            caller = self.tokens.user(
                request.headers.get("Authorization"), self._service_account_uid
            )
        status = rbac.access_review(self.authorizer, body["spec"], caller)
        return _json(
            {**body, "apiVersion": res.api_version, "kind": res.kind, "status": status}, 201
        )

    # -- resources -----------------------------------------------------------------------
    async def _resource(
        self,
        request: web.Request,
        res: Resource,
        ns: str | None,
        name: str | None,
        sub: str | None,
        watch: bool,
    ) -> web.StreamResponse:
        q, method, store = request.query, request.method, self.store
        dry_run = q.get("dryRun") == "All"
        manager = manager_of(q.get("fieldManager"), request.headers.get("User-Agent"))
        if sub == "scale":
            return await self._scale(request, res, ns, name, manager, dry_run)
        if name is None:
            labels, fields = (
                parse_labels(q.get("labelSelector")),
                parse_fields(q.get("fieldSelector")),
            )
            if method == "GET" and (watch or q.get("watch") in ("1", "true")):
                return await self._watch(request, res, ns)
            if method == "GET":
                listed = self._list(res, store.select(res, ns, labels, fields))
                return _json(self._as_table(request, res, listed["items"]) or listed)
            if method == "POST":
                body = await self._body(request)
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "request body must be an object")
                return _json(store.create(res, ns, body, dry_run, manager), 201)
            if method == "DELETE":
                options = await self._body(request) or {}
                gone = [
                    store.delete(res, ns, o["metadata"]["name"], options, dry_run)
                    for o in store.select(res, ns, labels, fields)
                ]
                return _json(self._list(res, gone))
        elif method == "GET":
            got = store.get(res, ns, name)
            return _json(self._as_table(request, res, [got]) or got)
        elif method == "PUT":
            body = await self._body(request)
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "request body must be an object")
            return _json(store.update(res, ns, name, body, sub, dry_run, manager))
        elif method == "PATCH":
            return await self._patch(request, res, ns, name, sub, dry_run, manager)
        elif method == "DELETE":
            options = await self._body(request) or {}
            if "propagationPolicy" in q:
                options["propagationPolicy"] = q["propagationPolicy"]
            deleted = store.delete(res, ns, name, options, dry_run)
            if res.kind == "Pod":  # gracefully deleted: the API server answers with the pod
                deleted["metadata"].setdefault("deletionTimestamp", now())
                return _json(deleted)
            details = {
                "name": name,
                "group": res.group,
                "kind": res.plural,
                "uid": deleted["metadata"]["uid"],
            }
            return _json(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            )
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    def _as_table(self, request: web.Request, res: Resource, items: list[Obj]) -> Obj | None:
        """The Table kubectl's `get` asks for (tables.py), if the client asked for one and
        the stand-in prints that kind."""
        if not tables.wants_table(request.headers.get("Accept", "")):
            return None
        include = request.query.get("includeObject")
        if include not in (None, "None", "Object", "Metadata"):
            raise ApiError(400, "BadRequest", f"includeObject: unsupported value {include!r}")
        return tables.table(res.api_version, res.kind, items, str(self.store.rv), include)

    def _list(self, res: Resource, items: list[Obj]) -> Obj:
        meta = {"resourceVersion": str(self.store.rv)}
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version,
            "metadata": meta,
            "items": items,
        }

    async def _patch(
        self,
        request: web.Request,
        res: Resource,
        ns: str | None,
        name: str,
        sub: str | None,
        dry_run: bool,
        manager: str,
    ) -> web.Response:
        store, ctype = self.store, request.content_type
        body = await self._body(request)
        live = store.raw(res, ns, name)
        if ctype == "application/apply-patch+yaml":
            if not request.query.get("fieldManager") or not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "apply needs a fieldManager and an object body")
            if live is None:  # server-side apply creates what is missing
                created = store.create(res, ns, patches.apply(None, body, None), dry_run)
                if not dry_run:
                    uid = created["metadata"]["uid"]
                    store.last_applied[(uid, manager)] = body
                    store.ownership.applied(uid, manager, None, body, created)
                return _json(created, 201)
            uid = live["metadata"]["uid"]
            force = request.query.get("force") in ("true", "1")
            store.ownership.check_apply(uid, manager, live, body, res.api_version, force)
            before = copy.deepcopy(live)
            merged = patches.apply(live, body, store.last_applied.get((uid, manager)))
            updated = store.update(res, ns, name, merged, sub, dry_run)
            if not dry_run:
                store.last_applied[(uid, manager)] = body
                store.ownership.applied(uid, manager, before, body, updated)
            return _json(updated)
        elif live is None:
            raise ApiError(
                404,
                "NotFound",
                f'{res.qualified} "{name}" not found',
                {"name": name, "kind": res.plural},
            )
        else:
            merged = patches.by_content_type(ctype, live, body)
        return _json(store.update(res, ns, name, merged, sub, dry_run, manager))

    async def _scale(
        self,
        request: web.Request,
        res: Resource,
        ns: str | None,
        name: str | None,
        manager: str,
        dry_run: bool,
    ) -> web.Response:
        """The `scale` subresource (autoscaling/v1 Scale) that `kubectl scale` and HPAs use:
        reads and writes the workload's `spec.replicas`."""
        store = self.store
        if name is None or res.kind not in SCALABLE:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        live = store.get(res, ns, name)
        current = _scale_of(live)
        if request.method == "GET":
            return _json(current)
        if request.method == "PUT":
            wanted = await self._body(request)
        elif request.method == "PATCH":
            body = await self._body(request)
            wanted = patches.by_content_type(request.content_type, current, body)
        else:
            raise ApiError(405, "MethodNotAllowed", f"{request.method} is not supported here")
        if not isinstance(wanted, dict):
            raise ApiError(400, "BadRequest", "request body must be a Scale object")
        replicas = (wanted.get("spec") or {}).get("replicas")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: '
                "Invalid value: must be greater than or equal to 0",
            )
        rv = (wanted.get("metadata") or {}).get("resourceVersion")
        changed = copy.deepcopy(live)
        changed["metadata"]["resourceVersion"] = rv or live["metadata"]["resourceVersion"]
        changed["spec"]["replicas"] = replicas
        return _json(_scale_of(store.update(res, ns, name, changed, None, dry_run, manager)))

    async def _watch(
        self, request: web.Request, res: Resource, ns: str | None
    ) -> web.StreamResponse:
        q = request.query
        initial = q.get("sendInitialEvents") == "true"
        rv = q.get("resourceVersion", "")
        try:
            since = None if initial or rv in ("", "0") else int(rv)
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv!r}") from e
        labels, fields = parse_labels(q.get("labelSelector")), parse_fields(q.get("fieldSelector"))
        w, first = self.store.watch(res, ns, labels, fields, since)
        start_rv = self.store.rv
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(q.get("timeoutSeconds") or 1800)

        as_table = self._as_table(request, res, []) is not None  # kubectl get -w

        async def send(type_: str, obj: Obj) -> None:
            if as_table and type_ in ("ADDED", "MODIFIED", "DELETED"):
                obj = self._as_table(request, res, [obj]) or obj
            await resp.write(json.dumps({"type": type_, "object": obj}).encode() + b"\n")

        try:
            await resp.prepare(request)
            for type_, obj in first:
                await send(type_, obj)
            if initial:
                bookmark_meta = {
                    "resourceVersion": str(start_rv),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                }
                await send(
                    "BOOKMARK",
                    {"kind": res.kind, "apiVersion": res.api_version, "metadata": bookmark_meta},
                )
            while (remaining := deadline - loop.time()) > 0:
                try:
                    ev = await asyncio.wait_for(w.queue.get(), min(remaining, 1.0))
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break
                    continue
                if ev is None:  # reset or shutdown
                    break
                if seen := w.translate(ev):
                    await send(seen, ev.obj)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.store.watches.discard(w)
        return resp

    # -- admin ---------------------------------------------------------------------------
    async def _admin(self, request: web.Request, what: str) -> web.Response:
        method = request.method
        body = (await self._body(request) or {}) if method in ("POST", "DELETE") else {}
        if what == "never-ready":
            if method in ("POST", "DELETE"):
                if "name" not in body:
                    raise ApiError(400, "BadRequest", "name is required")
                self.set_never_ready(body["name"], body.get("namespace"), never=method == "POST")
            return _json(
                {
                    "never_ready": [
                        {"namespace": n, "name": m}
                        for n, m in sorted(self.controller.never_ready, key=str)
                    ]
                }
            )
        if what == "never-serving":
            if method in ("POST", "DELETE"):
                if "name" not in body:
                    raise ApiError(400, "BadRequest", "name is required")
                self.set_never_serving(body["name"], body.get("namespace"), method == "POST")
            marks = sorted(self.controller.pods.never_serving, key=str)
            return _json({"never_serving": [{"namespace": n, "name": m} for n, m in marks]})
        if what == "tokens" and method == "POST":
            if not isinstance(body.get("user"), str):
                raise ApiError(400, "BadRequest", "user is required")
            return _json({"user": body["user"], "token": self.tokens.issue(body["user"])})
        if what == "faults":
            if method == "POST":
                try:
                    self.add_fault(Fault(**body))
                except (TypeError, re.error) as e:
                    raise ApiError(400, "BadRequest", f"bad fault: {e}") from e
            elif method == "DELETE":
                self.faults.clear()
            return _json({"faults": [asdict(f) for f in self.faults]})
        if what == "reset" and method == "POST":
            self.reset()
            return _json({"reset": True})
        if what == "controller":
            if method == "POST":
                self.controller.enabled = bool(body.get("enabled", True))
                self.controller.reconcile_all()
            return _json({"enabled": self.controller.enabled})
        if what == "requests":
            return _json({"requests": list(self.requests)})
        if what == "writes":
            return _json({"writes": list(self.writes)})
        if what == "jobs":
            if method == "POST":
                self.jobs.set_mode(str(body.get("mode", "run")), body.get("message"))
            return _json({"mode": self.jobs.mode})
        raise ApiError(404, "NotFound", f"no stand-in admin endpoint {method} /_standin/{what}")
