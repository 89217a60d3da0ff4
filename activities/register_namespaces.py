"""Register the declared Temporal namespaces on the new cluster and keep their settings.

Per declared namespace: register it; when the server answers ALREADY_EXISTS (or refuses the
registration otherwise: an existing namespace is compared before any refusal is reported),
describe it and update retention and description when they differ from the declaration;
otherwise leave it alone. Registering first matters: a describe of a namespace that does not exist yet makes the
frontend cache "not found" for about a second, so describe-then-register made every new
namespace unusable for that long (the usability check then slept a whole poll interval).
Afterwards the step checks that each namespace is usable through the frontend, first at
once, then after 25 ms and at intervals growing by half up to `poll_interval`, instead of
sleeping a fixed time.
Namespaces nobody declared are never changed or deleted; they are listed (`undeclared`) on
dry runs (the drift check) or when asked: provisioning reads nothing of that list, and it
costs a ListNamespaces page per 100 namespaces on the server.

The server admits only so many registrations a second (the dev server: a burst of ~40, then
~25/s) and rejects the rest with RESOURCE_EXHAUSTED. A rejected call is paced and repeated
inside the step (`RpcPacer`), never a failed attempt: after a rejection every call of that
kind waits its turn at a spacing that grows with each rejection and shrinks with each
success, so the step settles near the admitted rate whatever `concurrency` says (a too-high
setting only makes the first burst bigger; bench/namespaces.py measures it against the
floor). Only when the server keeps rejecting until the attempt's deadline does the attempt
fail (retryable).

The result's `drift` lists how each namespace differed from its declaration before any write.
`dry_run` only describes: nothing is registered or updated, and there is no usability wait.
A dry run that cannot reach the frontend (the release was uninstalled, its pods are down or
frozen, the Kubernetes API is too slow for the port-forward) reports the namespaces as
`unchecked` ("could not check") instead of failing: the drift check says so now rather than
retrying until its deadline, and never calls what it could not read drift.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TypeVar

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

from adapters.errors import ErrorType, activity_error
from adapters.errors.temporal_rpc import rpc_answer, temporal_rpc_error
from adapters.temporal_target import FrontendUnreachable, TargetTemporalClients, attempt_deadline
from contracts.base import DriftItem
from contracts.register_namespaces import (
    NamespaceOutcome,
    RegisterNamespacesInput,
    RegisterNamespacesResult,
)
from declared_state.models import TemporalNamespace, format_duration

_RPC_TIMEOUT = timedelta(seconds=10)
_FIRST_USABLE_CHECK = 0.025  # seconds; a namespace registered first is usable within ms
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


def _frontend_unread(target: str, reason: str) -> RegisterNamespacesResult:
    """A dry run's answer when the frontend does not answer: nothing was compared (#20.1)."""
    unread = DriftItem(
        message=f"namespaces: could not check: Temporal frontend {target} did not answer "
        f"({reason})",
        kind="TemporalFrontend",
        name=target,
        repairable=False,
    )
    return RegisterNamespacesResult(
        changed=False,
        summary=f"could not check: frontend {target} did not answer",
        namespaces=(),
        undeclared=(),
        dry_run=True,
        unchecked=(unread,),
    )


T = TypeVar("T")


@dataclass
class _Lane:
    spacing: float = 0.0
    last_sent: float = 0.0
    raised_at: float = 0.0
    gate: asyncio.Lock = field(default_factory=asyncio.Lock)


class RpcPacer:
    """Paces the calls of one step run that the server rejects with RESOURCE_EXHAUSTED.

    Each kind of call has its own lane (the server limits each of its methods on its own: the
    dev server limits registrations, never describes). While the server accepts everything,
    calls go straight through (`spacing` 0). A rejection raises its lane's spacing (x1.25, at
    least `MIN_SPACING`, at most `MAX_SPACING`; once for the calls sent before that raise, so
    a burst of 64 rejections is one signal, not 64) and the rejected call is repeated; from then on
    every call in that lane takes a turn, `spacing` apart, and each success lowers the spacing
    (x0.85) until it is negligible again. So a burst of concurrent calls collapses into a
    steady stream near the rate the server admits (a rejection costs one short round trip, so
    the lane probes slightly above it) instead of a storm of rejections or a failed attempt.
    Past `deadline` (a `time.monotonic()` value) a rejection is raised to the caller.
    """

    MIN_SPACING = 0.01
    MAX_SPACING = 1.0

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.rejections = 0
        self._lanes: dict[str, _Lane] = {}

    async def call(self, lane: str, rpc: Callable[[], Awaitable[T]]) -> T:
        paced = self._lanes.setdefault(lane, _Lane())
        while True:
            sent = await self._turn(paced)
            try:
                answer = await rpc()
            except RPCError as exc:
                if exc.status != RPCStatusCode.RESOURCE_EXHAUSTED:
                    raise
                if time.monotonic() >= self.deadline:
                    raise
                self.rejections += 1
                # One raise per round of calls: the rest of a concurrent burst was sent before
                # the last raise and says nothing about the new spacing.
                if sent >= paced.raised_at:
                    paced.raised_at = time.monotonic()
                    paced.spacing = min(
                        max(paced.spacing * 1.25, self.MIN_SPACING), self.MAX_SPACING
                    )
                activity.heartbeat({"phase": f"paced ({lane})", "rejections": self.rejections})
                continue
            paced.spacing = 0.0 if paced.spacing < self.MIN_SPACING / 4 else paced.spacing * 0.85
            return answer

    @staticmethod
    async def _turn(lane: _Lane) -> float:
        """Wait for this lane's next turn (none while it is not paced); when the call goes.
        Turns are taken one at a time, each `spacing` after the last as it is then, so a
        spacing that shrinks speeds up the calls already waiting."""
        if lane.spacing:
            async with lane.gate:
                wait = lane.last_sent + lane.spacing - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                lane.last_sent = time.monotonic()
        return time.monotonic()


class RegisterNamespaces:
    def __init__(self, clients: TargetTemporalClients):
        self._clients = clients

    async def _describe(
        self, client: Client, pacer: RpcPacer, name: str
    ) -> DescribeNamespaceResponse | None:
        try:
            return await pacer.call(
                "describe",
                lambda: client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=name), timeout=_RPC_TIMEOUT
                ),
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise _failure(name, "describe", exc) from None

    async def _reconcile(
        self, client: Client, pacer: RpcPacer, ns: TemporalNamespace, dry_run: bool
    ) -> tuple[NamespaceOutcome, list[DriftItem]]:
        """The outcome for `ns` and how it differed from its declaration (before any write)."""
        service = client.workflow_service
        missing = _drift(ns, f"namespace {ns.name} missing")
        created = NamespaceOutcome(
            name=ns.name,
            action="created",
            retention_before=None,
            retention_after=ns.retention,
            description_changed=False,
        )
        if dry_run:
            found = await self._describe(client, pacer, ns.name)
            if found is None:
                return created, [missing]
        else:
            # Register first (see the module docstring); an existing one is compared below.
            registration = RegisterNamespaceRequest(
                namespace=ns.name,
                description=ns.description,
                workflow_execution_retention_period=_duration(ns.retention),
                is_global_namespace=ns.is_global,
                data={REGISTERED_BY: _this_run()},
            )
            try:
                await pacer.call(
                    "register",
                    lambda: service.register_namespace(registration, timeout=_RPC_TIMEOUT),
                )
            except RPCError as exc:
                # ALREADY_EXISTS, or a refusal of the registration itself (a global namespace
                # on a cluster without replication) that must not hide an existing one's
                # comparison: the namespace as it is decides.
                found = await self._describe(client, pacer, ns.name)
                if found is None:
                    what = (
                        "register"
                        if exc.status != RPCStatusCode.ALREADY_EXISTS
                        else (
                            "describe after ALREADY_EXISTS"  # deleted right after that answer
                        )
                    )
                    raise _failure(ns.name, what, exc) from None
            else:
                activity.logger.info(
                    "namespace %s registered (retention %s)",
                    ns.name,
                    format_duration(ns.retention),
                )
                after = await self._describe(client, pacer, ns.name)
                if after is not None:
                    retention_after = after.config.workflow_execution_retention_ttl.ToTimedelta()
                    created = created.model_copy(update={"retention_after": retention_after})
                return created, [missing]

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
            response = await pacer.call(
                "update", lambda: service.update_namespace(request, timeout=_RPC_TIMEOUT)
            )
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

    async def _usable(self, client: Client, pacer: RpcPacer, name: str) -> str | None:
        """None when `name` is usable through the frontend, else why not (yet)."""
        service = client.workflow_service
        try:
            await pacer.call(
                "describe",
                lambda: service.describe_namespace(
                    DescribeNamespaceRequest(namespace=name), timeout=_RPC_TIMEOUT
                ),
            )
            # Namespace-scoped calls resolve the name through the frontend's namespace cache,
            # which is what workflow starts use too.
            await pacer.call(
                "list workflows",
                lambda: service.list_workflow_executions(
                    ListWorkflowExecutionsRequest(namespace=name, page_size=1),
                    timeout=_RPC_TIMEOUT,
                ),
            )
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.UNAVAILABLE):
                return rpc_answer(exc)
            raise _failure(name, "using the namespace", exc) from None
        return None

    async def _wait_usable(
        self, client: Client, pacer: RpcPacer, names: list[str], deadline: float, interval: float
    ) -> None:
        pending = list(names)
        started = time.monotonic()
        checks = 0
        pause = min(_FIRST_USABLE_CHECK, interval)
        while True:
            checks += 1
            answers = await asyncio.gather(*(self._usable(client, pacer, n) for n in pending))
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
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 1.5, interval)

    async def _undeclared(
        self, client: Client, pacer: RpcPacer, declared: set[str]
    ) -> tuple[str, ...]:
        names: list[str] = []
        token = b""
        while True:
            request = ListNamespacesRequest(page_size=100, next_page_token=token)
            try:
                page = await pacer.call(
                    "list namespaces",
                    partial(client.workflow_service.list_namespaces, request, timeout=_RPC_TIMEOUT),
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
                    return _frontend_unread(frontend.target, exc.reason)
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
        # Rejections are paced until shortly before this attempt's own deadline.
        pacer = RpcPacer(attempt_deadline(timedelta(hours=1)))
        limit = asyncio.Semaphore(input.concurrency)
        done: list[str] = []

        async def one(ns: TemporalNamespace) -> tuple[NamespaceOutcome, list[DriftItem]]:
            async with limit:
                outcome, drift = await self._reconcile(client, pacer, ns, input.dry_run)
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
                pacer,
                [o.name for o, _ in outcomes],
                attempt_deadline(input.usable_timeout),
                input.poll_interval.total_seconds(),
            )
        list_undeclared = input.dry_run if input.list_undeclared is None else input.list_undeclared
        undeclared = (
            await self._undeclared(client, pacer, {ns.name for ns in env.temporal_namespaces})
            if list_undeclared
            else ()
        )
        actions = [f"{o.name} {o.action}" for o, _ in outcomes]
        return RegisterNamespacesResult(
            changed=any(o.action != "unchanged" for o, _ in outcomes),
            summary=", ".join(actions) or "no namespaces declared",
            namespaces=tuple(o for o, _ in outcomes),
            undeclared=undeclared,
            dry_run=input.dry_run,
            drift=tuple(d for _, drift in outcomes for d in drift),
        )
