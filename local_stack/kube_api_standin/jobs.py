"""The stand-in's job controller: plays the job controller and the kubelet for batch/v1
Jobs, and plays the admin-tools image for the one command the schema Jobs run.

Named stand-in behaviour, "the admin-tools Job": a Job container whose command runs
`temporal-sql-tool ... update-schema` (or its alias `update`) does what that tool does to the
database it is pointed at, by the tool's rules (schema_tool.py: `-v` optional, a database
newer than `-v` fails, one history row per version step, the schema directories of the
container's image), with what the container is given, the way a kubelet would give it:

- its pod (`<job>-xxxxx`, owned by the Job, labelled `job-name` / `controller-uid`) runs the
  init containers, then the containers, in order; a container stops the pod on a non-zero
  exit, which fails the Job (`Failed`, `BackoffLimitExceeded`); when all exit 0 the Job is
  `Complete`;
- the tool's settings come from the environment the chart's `_admintools-env.yaml` sets
  (`SQL_HOST`, `SQL_PORT`, `SQL_DATABASE`, `SQL_USER`, `SQL_PASSWORD`, `SQL_TLS`,
  `SQL_TLS_CA_FILE`, `SQL_TLS_SERVER_NAME`, `SQL_TLS_DISABLE_HOST_VERIFICATION`) or the
  tool's own flags; `valueFrom.secretKeyRef` / `configMapKeyRef` are read from this
  stand-in's Secrets and ConfigMaps, and the CA file from the ConfigMap mounted at that path.
  A missing Secret, key or ConfigMap keeps the pod waiting (`CreateContainerConfigError`, or
  `ContainerCreating` for a volume), and the Job active, as a kubelet does;
- it connects over TLS (verifying the certificate against that CA file, and the host name
  unless told not to) with that user and password; a refused login or a failed handshake
  fails the container with the error in its log;
- what the container printed is its log (`GET pods/{name}/log?container=&tailLines=`);
- every database write is added to the stand-in's write log (`ApiServer.writes`) beside the
  API writes, so a test can show what happened in which order.

Other Jobs (the chart's hook Jobs) run the same way and exit 0 at once.

Switches (`schema_jobs` / `POST /_standin/jobs {"mode": ...}`): `run` (default); `fail`: the
next update-schema container exits 1, writing nothing, with `message` in its log; `hang`:
update-schema containers do not finish until the mode is `run` again. `never_ready` holds
a Job (or every Job of a name) active like any workload, a disabled controller runs none.

Simplifications: those of the tool (schema_tool.py: no SQL statement of a version directory
runs; only images tagged with a release 1.24.0-1.31.x are known); `backoffLimit`, restarts
and `activeDeadlineSeconds` are not played (a failing container fails the Job at once);
resources and service accounts are ignored. Images are pulled as the Deployments' pods pull
them (images.py): a container whose image the linked registry lacks waits in ErrImagePull,
then ImagePullBackOff, and the Job stays active.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import secrets
import shlex
from collections.abc import Callable

from aiohttp import web

from .controller import Controller, _conditions
from .errors import ApiError, not_found
from .schema_tool import SchemaUpdate, apply, tool_banner
from .store import Event, Obj, Store, now

MODES = ("run", "fail", "hang")
DEFAULT_FAILURE = (
    "Error: UpdateSchemaTask: unable to execute SQL statement: Error 1215 (HY000): "
    "Cannot add foreign key constraint"
)
_STEP = 0.05  # seconds between a pod's steps, so clients can watch it go


class ContainerWaiting(Exception):
    """A kubelet would not start the container yet (reason, message)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _flag(tokens: list[str], *names: str) -> str | None:
    for i, token in enumerate(tokens):
        for name in names:
            if token == name and i + 1 < len(tokens):
                return tokens[i + 1]
            if token.startswith(f"{name}="):
                return token.partition("=")[2]
    return None


def schema_command(container: Obj) -> list[str] | None:
    """The tool's argv when the container runs `temporal-sql-tool ... update-schema`."""
    tokens: list[str] = []
    for part in [*(container.get("command") or []), *(container.get("args") or [])]:
        tokens += shlex.split(str(part))
    if "temporal-sql-tool" in tokens:
        argv = tokens[tokens.index("temporal-sql-tool") :]
        if "update-schema" in argv or "update" in argv:  # `update` is the command's alias
            return argv
    return None


def _owned_by_job(obj: Obj) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r.get("kind") == "Job" and r.get("controller") for r in refs)


class JobController:
    """Runs every Job's pod; see the module docstring."""

    def __init__(self, store: Store, controller: Controller, record_write: Callable[[Obj], None]):
        self.store, self.controller, self.record_write = store, controller, record_write
        self.mode = "run"
        self.message = DEFAULT_FAILURE
        self.logs: dict[tuple[str, str, str], list[str]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        store.hooks.append(self._on_event)
        # The workload controller leaves Jobs and their pods to this one.
        controller.skip.append(
            lambda kind, obj: kind == "Job" or (kind == "Pod" and _owned_by_job(obj))
        )
        self._job_res = next(r for r in store.registry.resources if r.kind == "Job")
        self._pod_res = next(r for r in store.registry.resources if r.kind == "Pod")

    # -- switches ------------------------------------------------------------------------
    def set_mode(self, mode: str, message: str | None = None) -> None:
        if mode not in MODES:
            raise ApiError(400, "BadRequest", f"mode must be one of {', '.join(MODES)}")
        self.mode = mode
        self.message = message or DEFAULT_FAILURE

    def reset(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self.logs.clear()
        self.mode, self.message = "run", DEFAULT_FAILURE

    # -- events --------------------------------------------------------------------------
    def _on_event(self, ev: Event) -> None:
        if ev.res.kind != "Job":
            return
        uid = ev.obj["metadata"]["uid"]
        if ev.type == "ADDED":
            self._tasks[uid] = asyncio.get_running_loop().create_task(self._run(ev.obj))
        elif ev.type == "DELETED" and uid in self._tasks:
            self._tasks.pop(uid).cancel()

    def _job(self, ns: str, name: str, uid: str) -> Obj | None:
        job = self.store.raw(self._job_res, ns, name)
        return job if job is not None and job["metadata"]["uid"] == uid else None

    async def _held(self, ns: str, name: str, uid: str, schema: bool = False) -> bool:
        """Wait while the Job is held (controller off, never_ready, hang); False when the
        Job is gone."""
        while True:
            job = self._job(ns, name, uid)
            if job is None:
                return False
            held = not self.controller.enabled or self.controller.blocked(job)
            if not held and not (schema and self.mode == "hang"):
                return True
            await asyncio.sleep(0.1)

    # -- a Job's pod ---------------------------------------------------------------------
    async def _run(self, created: Obj) -> None:
        meta = created["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        try:
            await asyncio.sleep(_STEP)
            if not await self._held(ns, name, uid):
                return
            template = copy.deepcopy(created.get("spec", {}).get("template") or {})
            pod = self._create_pod(ns, name, uid, template)
            pod_name = pod["metadata"]["name"]
            self._job_status(ns, name, {"active": 1, "startTime": now()})
            spec = pod["spec"]
            statuses: dict[str, Obj] = {}
            for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
                exit_code = await self._run_container(ns, name, uid, pod, container, statuses)
                if exit_code is None:
                    return  # waiting (config error) or the Job is gone
                if exit_code != 0:
                    self._pod_status(ns, pod_name, "Failed", statuses)
                    self._finish(ns, name, failed=True)
                    return
            self._pod_status(ns, pod_name, "Succeeded", statuses)
            self._finish(ns, name, failed=False)
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.pop(uid, None)

    def _create_pod(self, ns: str, job: str, uid: str, template: Obj) -> Obj:
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.update(
            {
                "job-name": job,
                "batch.kubernetes.io/job-name": job,
                "controller-uid": uid,
                "batch.kubernetes.io/controller-uid": uid,
            }
        )
        pod = {
            "metadata": {
                "name": f"{job}-{secrets.token_hex(3)[:5]}",
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job,
                        "uid": uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template.get("spec") or {},
        }
        created = self.store.create(self._pod_res, ns, pod)
        self.store.update(
            self._pod_res,
            ns,
            created["metadata"]["name"],
            {"status": {"phase": "Pending", "conditions": [_condition("PodScheduled", "True")]}},
            subresource="status",
        )
        return created

    async def _run_container(
        self, ns: str, job: str, uid: str, pod: Obj, container: Obj, statuses: dict[str, Obj]
    ) -> int | None:
        """Run one container to its exit code; None when it cannot start or the Job went."""
        pod_name, name = pod["metadata"]["name"], container["name"]
        if not await self._pull(ns, job, uid, pod, container, statuses):
            return None
        command = schema_command(container)
        try:
            env = self._environment(ns, container)
            update = self._schema_update(ns, pod, container, env, command) if command else None
        except ContainerWaiting as waiting:
            statuses[name] = {"waiting": {"reason": waiting.reason, "message": str(waiting)}}
            self._pod_status(ns, pod_name, "Pending", statuses)
            return None
        started = now()
        statuses[name] = {"running": {"startedAt": started}}
        self._pod_status(ns, pod_name, "Running", statuses)
        await asyncio.sleep(_STEP)
        if not await self._held(ns, job, uid, schema=update is not None):
            return None
        if update is None:
            code, lines = 0, []
        elif self.mode == "fail":
            self.mode = "run"  # the next one fails, the ones after it run
            code, lines = 1, [*tool_banner(update), self.message]
        else:
            loop = asyncio.get_running_loop()
            code, lines, change = await loop.run_in_executor(None, apply, update)
            if change is not None:
                self.record_write(change)
        self.logs[(ns, pod_name, name)] = lines
        statuses[name] = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": started,
                "finishedAt": now(),
            }
        }
        return code

    async def _pull(
        self, ns: str, job: str, uid: str, pod: Obj, container: Obj, statuses: dict[str, Obj]
    ) -> bool:
        """kubelet pulls the container's image (images.py): the container waits in
        ErrImagePull / ImagePullBackOff while the registry does not have it, pulling again
        when each back-off ends; False when the Job went away meanwhile."""
        images = self.controller.pods.images

        def event(reason: str, message: str, type_: str) -> None:
            current = self.store.raw(self._pod_res, ns, pod["metadata"]["name"])
            if current is not None:
                self.controller.pods._event(current, reason, message, type_)

        while (waiting := images.pull(pod, str(container.get("image")), event)) is not None:
            reason, message = waiting
            statuses[container["name"]] = {"waiting": {"reason": reason, "message": message}}
            self._pod_status(ns, pod["metadata"]["name"], "Pending", statuses)
            # kubelet's next sync comes soon after a failed pull (and finds the back-off),
            # the pull after that once the back-off ends.
            later = images.retry_in(pod) or 0.1
            await asyncio.sleep(min(later, 0.2) if reason == "ErrImagePull" else later)
            if not await self._held(ns, job, uid):
                return False
        return True

    def _environment(self, ns: str, container: Obj) -> dict[str, str]:
        """The container's environment as a kubelet resolves it."""
        env: dict[str, str] = {}
        for item in container.get("env") or []:
            source = item.get("valueFrom") or {}
            if "value" in item:
                env[item["name"]] = str(item["value"])
            elif "secretKeyRef" in source:
                env[item["name"]] = self._key(ns, "Secret", source["secretKeyRef"])
            elif "configMapKeyRef" in source:
                env[item["name"]] = self._key(ns, "ConfigMap", source["configMapKeyRef"])
        return env

    def _key(self, ns: str, kind: str, ref: Obj) -> str:
        res = next(r for r in self.store.registry.resources if r.kind == kind)
        obj = self.store.raw(res, ns, ref.get("name", ""))
        if obj is None:
            raise ContainerWaiting(
                "CreateContainerConfigError", f'{kind.lower()} "{ref.get("name")}" not found'
            )
        data = obj.get("data") or {}
        if ref.get("key") not in data:
            raise ContainerWaiting(
                "CreateContainerConfigError",
                f"couldn't find key {ref.get('key')} in {kind} {ns}/{ref.get('name')}",
            )
        value = data[ref["key"]]
        return base64.b64decode(value).decode() if kind == "Secret" else str(value)

    def _file(self, ns: str, pod: Obj, container: Obj, path: str) -> str:
        """A file's content, from the ConfigMap volume mounted at (or above) `path`."""
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            mount_path = mount["mountPath"].rstrip("/")
            key = mount.get("subPath") if path == mount_path else None
            if key is None and path.startswith(mount_path + "/") and not mount.get("subPath"):
                key = path[len(mount_path) + 1 :]
            if key is None:
                continue
            source = (volumes.get(mount["name"]) or {}).get("configMap")
            if source is None:
                break
            res = next(r for r in self.store.registry.resources if r.kind == "ConfigMap")
            cm = self.store.raw(res, ns, source.get("name", ""))
            if cm is None:
                raise ContainerWaiting(
                    "ContainerCreating",
                    f'MountVolume.SetUp failed for volume "{mount["name"]}": configmap '
                    f'"{source.get("name")}" not found',
                )
            if key in (cm.get("data") or {}):
                return str(cm["data"][key])
        raise ContainerWaiting("RunContainerError", f"{path}: no such file in the container")

    def _schema_update(
        self, ns: str, pod: Obj, container: Obj, env: dict[str, str], tokens: list[str]
    ) -> SchemaUpdate:
        def setting(flags: tuple[str, ...], variable: str, default: str = "") -> str:
            return _flag(tokens, *flags) or env.get(variable) or default

        tls = "--tls" in tokens or env.get("SQL_TLS", "").lower() == "true"
        ca_path = setting(("--tls-ca-file",), "SQL_TLS_CA_FILE")
        no_verify = "--tls-disable-host-verification" in tokens or (
            env.get("SQL_TLS_DISABLE_HOST_VERIFICATION", "").lower() == "true"
        )
        return SchemaUpdate(
            host=setting(("--ep", "--endpoint"), "SQL_HOST", "127.0.0.1"),
            port=int(setting(("-p", "--port"), "SQL_PORT", "3306")),
            database=setting(("--db", "--database"), "SQL_DATABASE", "temporal"),
            user=setting(("-u", "--user"), "SQL_USER"),
            password=setting(("--pw", "--password"), "SQL_PASSWORD"),
            target=_flag(tokens, "-v", "--v", "-version", "--version") or "",
            schema_dir=_flag(tokens, "-d", "--d", "-schema-dir", "--schema-dir") or "",
            schema_name=_flag(tokens, "-s", "--s", "-schema-name", "--schema-name") or "",
            image=str(container.get("image") or ""),
            tls=tls,
            ca=self._file(ns, pod, container, ca_path) if tls and ca_path else None,
            server_name=setting(("--tls-server-name",), "SQL_TLS_SERVER_NAME") or None,
            verify_host=not no_verify,
        )

    # -- statuses ------------------------------------------------------------------------
    def _pod_status(self, ns: str, pod: str, phase: str, states: dict[str, Obj]) -> None:
        current = self.store.raw(self._pod_res, ns, pod)
        if current is None:
            return
        spec = current["spec"]
        old = current.get("status") or {}

        def statuses(containers: list[Obj]) -> list[Obj]:
            return [
                {
                    "name": c["name"],
                    "image": c.get("image"),
                    # The client's model requires it; a kubelet sends "" until the image is in.
                    "imageID": ""
                    if "waiting" in states.get(c["name"], {"waiting": 1})
                    else (f"docker.io/{c.get('image')}@sha256:stand-in"),
                    "ready": "running" in states.get(c["name"], {}),
                    "restartCount": 0,
                    "state": states.get(c["name"], {"waiting": {"reason": "PodInitializing"}}),
                }
                for c in containers
            ]

        status = {
            "phase": phase,
            "conditions": _conditions(old, [("PodScheduled", "True", "", "")]),
            "initContainerStatuses": statuses(list(spec.get("initContainers") or [])),
            "containerStatuses": statuses(list(spec.get("containers") or [])),
            "startTime": old.get("startTime") or now(),
        }
        self.store.update(self._pod_res, ns, pod, {"status": status}, subresource="status")

    def _job_status(self, ns: str, name: str, status: Obj) -> None:
        if self.store.raw(self._job_res, ns, name) is not None:
            self.store.update(self._job_res, ns, name, {"status": status}, subresource="status")

    def _finish(self, ns: str, name: str, failed: bool) -> None:
        job = self.store.raw(self._job_res, ns, name)
        if job is None:
            return
        old = job.get("status") or {}
        base = {"startTime": old.get("startTime") or now()}
        if failed:
            message = "Job has reached the specified backoff limit"
            conds = [
                ("FailureTarget", "True", "BackoffLimitExceeded", message),
                ("Failed", "True", "BackoffLimitExceeded", message),
            ]
            self._job_status(ns, name, {**base, "failed": 1, "conditions": _conditions(old, conds)})
            return
        conds = [
            (
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ),
            ("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
        ]
        succeeded = (job.get("spec") or {}).get("completions") or 1
        self._job_status(
            ns,
            name,
            {
                **base,
                "succeeded": succeeded,
                "completionTime": now(),
                "conditions": _conditions(old, conds),
            },
        )

    # -- pods/{name}/log -----------------------------------------------------------------
    def pod_log(self, request: web.Request, ns: str, name: str) -> web.Response:
        pod = self.store.raw(self._pod_res, ns, name)
        if pod is None:
            raise not_found("pods", name)
        spec = pod.get("spec") or {}
        init = [c["name"] for c in spec.get("initContainers") or []]
        main = [c["name"] for c in spec.get("containers") or []]
        container = request.query.get("container")
        if container is None:
            if len(main) != 1 or init:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"{main}" + (f" or one of the init containers: {init}" if init else ""),
                )
            container = main[0]
        if container not in (*init, *main):
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        lines = self.logs.get((ns, name, container), [])
        tail = request.query.get("tailLines")
        if tail is not None and tail.isdigit():
            lines = lines[-int(tail) :] if int(tail) else []
        text = "".join(f"{line}\n" for line in lines)
        return web.Response(text=text, content_type="text/plain")


def _condition(type_: str, status: str) -> Obj:
    return {"type": type_, "status": status, "lastTransitionTime": now()}
