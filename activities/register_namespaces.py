"""Register the declared Temporal namespaces on the new cluster and keep their settings.

Per declared namespace: describe it; register it when it is missing; update retention and
description when they differ from the declaration; otherwise leave it alone. Namespaces
nobody declared are reported, never changed or deleted. Afterwards the step polls until each
namespace is usable through the frontend (its namespace cache refreshes every ~10 s), instead
of sleeping a fixed time.

The result's `drift` lists how each namespace differed from its declaration before any write.
`dry_run` only describes: nothing is registered or updated, and there is no usability wait.
A dry run that cannot reach the frontend (the release was uninstalled, its pods are down)
reports that as its drift, "frontend ... is down", instead of failing: the drift check says
what is wrong now rather than retrying until its deadline.

What earlier attempts did is carried across retries by the namespace itself: RegisterNamespace
writes `temporal-bootstrap.registered-by: <workflow id>/<run id>` into the namespace's data.
An attempt that finds a namespace registered by its own run (attempt 1 registered it, then
timed out, lost its worker or never got the answer) reports it `created`, with the drift
attempt 1 saw (`missing`), not `unchanged`. Heartbeat details cannot carry that: the SDK sends
them throttled (at most once per 80% of the heartbeat timeout), so the last ones before a
crash are lost. A namespace some other run registered, or that existed before, is reported as
found; the marker is never changed afterwards.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio import activity
from temporalio.api.namespace.v1 import NamespaceConfig, UpdateNamespaceInfo
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeNamespaceResponse,
    ListNamespacesRequest,
    ListWorkflowExecutionsRequest,
    RegisterNamespaceRequest,
    UpdateNamespaceRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import ErrorType, activity_error
from activities.errors.temporal_rpc import rpc_answer, temporal_rpc_error
from activities.temporal_target import FrontendUnreachable, TargetTemporalClients, attempt_deadline
from contracts.base import DriftItem
from contracts.register_namespaces import (
    NamespaceOutcome,
    RegisterNamespacesInput,
    RegisterNamespacesResult,
)
from declared_state.models import TemporalNamespace, format_duration

_RPC_TIMEOUT = timedelta(seconds=10)
_SYSTEM_NAMESPACES = {"temporal-system"}
REGISTERED_BY = "temporal-bootstrap.registered-by"
"""Key in a namespace's data: the workflow run whose step registered it."""


def _this_run() -> str:
    info = activity.info()
    return f"{info.workflow_id}/{info.workflow_run_id}"


def _drift(
    ns: TemporalNamespace,
    message: str,
    *,
    path: str = "",
    live: str | None = None,
    declared: str | None = None,
    repairable: bool = True,
) -> DriftItem:
    return DriftItem(
        message=message,
        kind="TemporalNamespace",
        name=ns.name,
        path=path,
        live=live,
        declared=declared,
        repairable=repairable,
    )


def _duration(value: timedelta) -> Duration:
    proto = Duration()
    proto.FromTimedelta(value)
    return proto


def _failure(namespace: str, what: str, exc: RPCError) -> Exception:
    """An RPC error -> an ApplicationError naming the namespace and what to do."""
    return temporal_rpc_error(
        f"namespace {namespace!r}: {what}",
        exc,
        refused=ErrorType.NAMESPACE_REGISTRATION_FAILED,
        remedy="fix the declaration in the environment file or the bootstrap's permissions "
        "on the cluster",
    )


def _frontend_down(target: str, reason: str) -> RegisterNamespacesResult:
    down = DriftItem(
        message=f"Temporal frontend {target} is down ({reason}); namespaces cannot be compared",
        kind="TemporalFrontend",
        name=target,
        live="unreachable",
        declared="SERVING",
        repairable=False,
    )
    return RegisterNamespacesResult(
        changed=False,
        summary=f"frontend {target} is down",
        namespaces=(),
        undeclared=(),
        dry_run=True,
        drift=(down,),
    )


class RegisterNamespaces:
    def __init__(self, clients: TargetTemporalClients):
        self._clients = clients

    async def _describe(self, client: Client, name: str) -> DescribeNamespaceResponse | None:
        try:
            return await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=name), timeout=_RPC_TIMEOUT
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise _failure(name, "describe", exc) from None

    async def _reconcile(
        self, client: Client, ns: TemporalNamespace, dry_run: bool
    ) -> tuple[NamespaceOutcome, list[DriftItem]]:
        """The outcome for `ns` and how it differed from its declaration (before any write)."""
        service = client.workflow_service
        found = await self._describe(client, ns.name)
        missing = _drift(ns, f"namespace {ns.name} missing")
        created = NamespaceOutcome(
            name=ns.name,
            action="created",
            retention_before=None,
            retention_after=ns.retention,
            description_changed=False,
        )
        if found is None:
            drift: list[DriftItem] = [missing]
            if dry_run:
                return created, drift
            try:
                await service.register_namespace(
                    RegisterNamespaceRequest(
                        namespace=ns.name,
                        description=ns.description,
                        workflow_execution_retention_period=_duration(ns.retention),
                        is_global_namespace=ns.is_global,
                        data={REGISTERED_BY: _this_run()},
                    ),
                    timeout=_RPC_TIMEOUT,
                )
            except RPCError as exc:
                if exc.status != RPCStatusCode.ALREADY_EXISTS:
                    raise _failure(ns.name, "register", exc) from None
                # Someone registered it between our describe and register: compare below.
                found = await self._describe(client, ns.name)
                if found is None:
                    raise _failure(ns.name, "describe after ALREADY_EXISTS", exc) from None
            else:
                activity.logger.info(
                    "namespace %s registered (retention %s)",
                    ns.name,
                    format_duration(ns.retention),
                )
                after = await self._describe(client, ns.name)
                if after is not None:
                    retention_after = after.config.workflow_execution_retention_ttl.ToTimedelta()
                    created = created.model_copy(update={"retention_after": retention_after})
                return created, drift

        retention = found.config.workflow_execution_retention_ttl.ToTimedelta()
        description = found.namespace_info.description
        # Registered by an earlier attempt of this very run: it was created, and missing then.
        ours = not dry_run and found.namespace_info.data.get(REGISTERED_BY) == _this_run()
        drift = [missing] if ours else []
        if found.is_global_namespace != ns.is_global:
            live, declared = (
                "global" if g else "local" for g in (found.is_global_namespace, ns.is_global)
            )
            activity.logger.warning(
                "namespace %s is %s on the server but declared %s; left as it is",
                ns.name,
                live,
                declared,
            )
            drift.append(
                _drift(
                    ns,
                    f"namespace {ns.name} is {live}, declared {declared} (left as it is)",
                    path="global",
                    live=live,
                    declared=declared,
                    repairable=False,
                )
            )
        retention_differs = retention != ns.retention
        # UpdateNamespace ignores an empty description, so an empty declaration cannot clear
        # one: "" means "description not managed".
        description_differs = bool(ns.description) and description != ns.description
        if retention_differs:
            drift.append(
                _drift(
                    ns,
                    f"namespace {ns.name} retention {format_duration(retention)}, "
                    f"declared {format_duration(ns.retention)}",
                    path="retention",
                    live=format_duration(retention),
                    declared=format_duration(ns.retention),
                )
            )
        if description_differs:
            drift.append(_drift(ns, f"namespace {ns.name} description differs", path="description"))
        if not (retention_differs or description_differs):
            if ours:
                activity.logger.info("namespace %s was registered by an earlier attempt", ns.name)
                return created.model_copy(update={"retention_after": retention}), drift
            unchanged = NamespaceOutcome(
                name=ns.name,
                action="unchanged",
                retention_before=retention,
                retention_after=retention,
                description_changed=False,
            )
            return unchanged, drift
        updated = NamespaceOutcome(
            name=ns.name,
            action="updated",
            retention_before=retention,
            retention_after=ns.retention,
            description_changed=description_differs,
        )
        if dry_run:
            return updated, drift
        request = UpdateNamespaceRequest(namespace=ns.name)
        if retention_differs:
            # The server changes retention only when config.workflow_execution_retention_ttl
            # is set; the other config fields stay untouched while unset.
            request.config.CopyFrom(
                NamespaceConfig(workflow_execution_retention_ttl=_duration(ns.retention))
            )
        if description_differs:
            request.update_info.CopyFrom(UpdateNamespaceInfo(description=ns.description))
        try:
            response = await service.update_namespace(request, timeout=_RPC_TIMEOUT)
        except RPCError as exc:
            raise _failure(ns.name, "update", exc) from None
        retention_after = response.config.workflow_execution_retention_ttl.ToTimedelta()
        activity.logger.info(
            "namespace %s updated: retention %s -> %s%s",
            ns.name,
            format_duration(retention),
            format_duration(retention_after),
            ", description changed" if description_differs else "",
        )
        outcome = created if ours else updated
        return outcome.model_copy(update={"retention_after": retention_after}), drift

    async def _usable(self, client: Client, name: str) -> str | None:
        """None when `name` is usable through the frontend, else why not (yet)."""
        try:
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=name), timeout=_RPC_TIMEOUT
            )
            # Namespace-scoped calls resolve the name through the frontend's namespace cache,
            # which is what workflow starts use too.
            await client.workflow_service.list_workflow_executions(
                ListWorkflowExecutionsRequest(namespace=name, page_size=1), timeout=_RPC_TIMEOUT
            )
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.UNAVAILABLE):
                return rpc_answer(exc)
            raise _failure(name, "using the namespace", exc) from None
        return None

    async def _wait_usable(
        self, client: Client, names: list[str], deadline: float, interval: float
    ) -> None:
        pending = list(names)
        started = time.monotonic()
        checks = 0
        while True:
            checks += 1
            answers = await asyncio.gather(*(self._usable(client, n) for n in pending))
            waiting = {n: why for n, why in zip(pending, answers, strict=True) if why}
            activity.heartbeat(
                {
                    "phase": "wait_usable",
                    "check": checks,
                    "waiting": sorted(waiting),
                    "elapsed_s": round(time.monotonic() - started, 3),
                }
            )
            if not waiting:
                return
            pending = list(waiting)
            left = deadline - time.monotonic()
            if left <= 0:
                detail = "; ".join(f"{n}: {why}" for n, why in waiting.items())
                raise activity_error(
                    f"namespaces not usable through the frontend after "
                    f"{time.monotonic() - started:.0f}s ({detail}); the frontend's namespace "
                    "cache may be lagging, will retry",
                    ErrorType.FRONTEND_UNHEALTHY,
                )
            await asyncio.sleep(min(interval, left))

    async def _undeclared(self, client: Client, declared: set[str]) -> tuple[str, ...]:
        names: list[str] = []
        token = b""
        while True:
            try:
                page = await client.workflow_service.list_namespaces(
                    ListNamespacesRequest(page_size=100, next_page_token=token),
                    timeout=_RPC_TIMEOUT,
                )
            except RPCError as exc:
                raise _failure("*", "list namespaces", exc) from None
            names += [n.namespace_info.name for n in page.namespaces]
            token = page.next_page_token
            if not token:
                break
        return tuple(sorted(set(names) - declared - _SYSTEM_NAMESPACES))

    @activity.defn(name="register_namespaces")
    async def register_namespaces(self, input: RegisterNamespacesInput) -> RegisterNamespacesResult:
        async with self._clients.connect(input.environment) as frontend:
            try:
                client = await frontend.client(timeout=10)
            except FrontendUnreachable as exc:
                if input.dry_run:
                    return _frontend_down(frontend.target, exc.reason)
                raise activity_error(
                    f"cannot register namespaces: Temporal frontend {frontend.target} is "
                    f"unreachable ({exc.reason}); will retry",
                    ErrorType.FRONTEND_UNHEALTHY,
                ) from None
            return await self._register(input, client)

    async def _register(
        self, input: RegisterNamespacesInput, client: Client
    ) -> RegisterNamespacesResult:
        env = input.environment

        limit = asyncio.Semaphore(input.concurrency)
        done: list[str] = []

        async def one(ns: TemporalNamespace) -> tuple[NamespaceOutcome, list[DriftItem]]:
            async with limit:
                outcome, drift = await self._reconcile(client, ns, input.dry_run)
            done.append(f"{ns.name}: {outcome.action}")
            activity.heartbeat({"phase": "reconcile", "done": list(done)})
            return outcome, drift

        tasks = [asyncio.create_task(one(ns)) for ns in env.temporal_namespaces]
        try:
            outcomes = await asyncio.gather(*tasks)
        except BaseException:
            # One failure (or cancellation) stops the rest instead of leaving them running.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

        if not input.dry_run:
            await self._wait_usable(
                client,
                [o.name for o, _ in outcomes],
                attempt_deadline(input.usable_timeout),
                input.poll_interval.total_seconds(),
            )
        undeclared = await self._undeclared(client, {ns.name for ns in env.temporal_namespaces})
        actions = [f"{o.name} {o.action}" for o, _ in outcomes]
        return RegisterNamespacesResult(
            changed=any(o.action != "unchanged" for o, _ in outcomes),
            summary=", ".join(actions) or "no namespaces declared",
            namespaces=tuple(o for o, _ in outcomes),
            undeclared=undeclared,
            dry_run=input.dry_run,
            drift=tuple(d for _, drift in outcomes for d in drift),
        )
