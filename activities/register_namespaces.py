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
costs a ListNamespaces page per 100 namespaces on the server. A dry run turns the list,
without the server's own namespaces (`server_made`: `temporal-system`, and `default` on a
dev server), into what the environment's `undeclared_namespaces` says (#22.1): `protect`
(the default) gives `notes` ("not declared, left alone"), never drift; `report` gives one
drift item per namespace at `/temporal_namespaces/<name>`, not repairable and `left_alone`
(the step's real run never touches it, so it does not hold back the repair of the rest), whose
`how` names the two ways out: declare it, or the exact `temporal operator namespace delete`
command. Nothing here ever deletes a namespace: its workflows and histories would go with it.

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

Search attributes, owner email and data (#22): missing custom search attributes are added with
AddSearchAttributes(namespace=...) (SQL visibility keeps them per namespace, as aliases of
pre-allocated columns in the namespace's config); owner email and declared data keys are set
by the same UpdateNamespace as retention and description (data is merged by the server, so
keys nobody declared and the registration marker stay). A search attribute whose live type
differs from its declaration is never changed: the type cannot change in place, and replacing
it makes its values in existing workflows unsearchable. Before any write of a real run, the
search attributes of every existing namespace that declares some are read (the existing ones
found with ListNamespaces, never a describe, see above) and a type change stops the attempt
(non-retryable ConfigurationMismatch) with the remove + create commands it would take, so
nothing at all is written; a dry run reports it not repairable, so `remediate` never runs
the step for it. Attributes nobody declared are left alone, unless the namespace says
`allow_deletion` (then they are removed, before any add, which frees their columns). Each
setting's outcome is in `NamespaceOutcome.settings`; drift paths are
`/temporal_namespaces/<namespace>/<field>`.

History and visibility archival (#22.1): activities/namespace_archival.py compares, and the
same RegisterNamespace / UpdateNamespace carry the declared state and URI. A declared URI that
differs from the namespace's live one (which the server never changes) stops the attempt
before any write, like a search attribute's type change; a server that ignores the archival
fields (its cluster config does not enable that kind) stops it after the write instead of
reporting success. Drift paths are `/temporal_namespaces/<namespace>/archival/<kind>`.

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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TypeVar

from google.protobuf.duration_pb2 import Duration
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.namespace.v1 import NamespaceConfig, UpdateNamespaceInfo
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
    RemoveSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeNamespaceResponse,
    GetClusterInfoRequest,
    ListNamespacesRequest,
    ListWorkflowExecutionsRequest,
    RegisterNamespaceRequest,
    UpdateNamespaceRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.namespace_archival import (
    ArchivalPlan,
    not_applied,
    plan_archival,
    registration_fields,
)
from adapters.errors import ErrorType, activity_error
from adapters.errors.temporal_rpc import rpc_answer, temporal_rpc_error
from adapters.temporal_target import FrontendUnreachable, TargetTemporalClients, attempt_deadline
from contracts.base import DriftItem
from contracts.register_namespaces import (
    NamespaceOutcome,
    NamespaceSetting,
    RegisterNamespacesInput,
    RegisterNamespacesResult,
)
from declared_state.models import (
    BOOTSTRAP_DATA_PREFIX,
    Environment,
    FrontendConnect,
    SearchAttributeType,
    TemporalNamespace,
    UndeclaredNamespaces,
    format_duration,
)

_RPC_TIMEOUT = timedelta(seconds=10)
_FIRST_USABLE_CHECK = 0.025  # seconds; a namespace registered first is usable within ms
_SYSTEM_NAMESPACES = {"temporal-system"}
REGISTERED_BY = f"{BOOTSTRAP_DATA_PREFIX}registered-by"
"""Key in a namespace's data: the workflow run whose step registered it."""
_INDEXED_TYPES = {
    SearchAttributeType.TEXT: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    SearchAttributeType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeType.INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    SearchAttributeType.DOUBLE: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    SearchAttributeType.BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    SearchAttributeType.DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    SearchAttributeType.KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}
_TYPE_NAMES = {indexed: declared.value for declared, indexed in _INDEXED_TYPES.items()}


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


# -- namespaces nobody declared (#22.1) ------------------------------------------------------
LISTED_UNDECLARED = 100
"""Undeclared namespaces a dry run names one by one (drift items or notes); the rest are
counted in one more line, so a cluster with thousands keeps the step's result small."""


def server_made(name: str, persistence_store: str) -> bool:
    """Whether the server itself created namespace `name`, so it is never "undeclared".
    `persistence_store` is what GetClusterInfo says (`sqlite`, `mysql8`, ...).

    - `temporal-system`: every server creates it at start (temporal/server_impl.go,
      InitializeSystemNamespaces in common/persistence/metadata_manager.go).
    - `default` on SQLite: `temporal server start-dev` creates it on every start (the CLI's
      internal/temporalcli/commands.server.go: `append([]string{"default"}, ...)`), and SQLite
      is what the dev server runs on; the local stack's frontends are such servers.
    - `default` on any other store is someone's: the server never creates it, and the
      chart creates it only with `server.config.namespaces.create: true` (false in every
      chart's values), which the bootstrap renders false and refuses in `extra_values`. So
      on the MySQL cluster a `default` was registered by a person (or by clients relying
      on the SDKs' default namespace) and is reported like any other.
    """
    return name in _SYSTEM_NAMESPACES or (name == "default" and persistence_store == "sqlite")


def delete_command(env: Environment, mode: FrontendConnect, name: str) -> str:
    """The temporal CLI command that deletes namespace `name` by hand, with the address a
    person reaches the frontend at: the declared (or in-cluster) address when the worker
    dials it directly, else a `kubectl port-forward` to the frontend Service first."""
    tls = env.frontend.tls
    flags = ""
    if tls.enabled:
        flags = " --tls"
        flags += f" --tls-ca-path {tls.ca_file}" if tls.ca_file else ""
        flags += f" --tls-server-name {tls.server_name}" if tls.server_name else ""
    delete = f"temporal operator namespace delete --namespace {name}"
    if mode == FrontendConnect.DIRECT:
        return f"{delete} --address {env.frontend_address}{flags}"
    forward = (
        f"kubectl --namespace {env.kubernetes.namespace} port-forward "
        f"service/{env.frontend_service} 7233:{env.frontend.port}"
    )
    return f"{forward}, then {delete} --address 127.0.0.1:7233{flags}"


def undeclared_findings(
    env: Environment, names: Sequence[str], mode: FrontendConnect
) -> tuple[tuple[DriftItem, ...], tuple[str, ...]]:
    """The drift items (`undeclared_namespaces: report`) or notes (`protect`) for the
    namespaces `names` nobody declared (the server's own already taken out)."""
    listed, more = names[:LISTED_UNDECLARED], len(names) - LISTED_UNDECLARED
    if env.undeclared_namespaces == UndeclaredNamespaces.PROTECT:
        notes = [
            f"namespace {name}: not declared, left alone (undeclared_namespaces: protect)"
            for name in listed
        ]
        if more > 0:
            notes.append(f"... and {more} more namespaces not declared, left alone")
        return (), tuple(notes)
    items = [
        DriftItem(
            message=f"/temporal_namespaces/{name}: namespace on the cluster, not declared "
            "(undeclared_namespaces: report; never deleted)",
            kind="TemporalNamespace",
            name=name,
            path=f"/temporal_namespaces/{name}",
            live="exists",
            repairable=False,
            left_alone=True,
            how=f"declare it in temporal_namespaces of environment {env.name}, or delete it "
            f"by hand (its workflows and histories go with it): "
            f"{delete_command(env, mode, name)}",
        )
        for name in listed
    ]
    if more > 0:
        items.append(
            DriftItem(
                message=f"/temporal_namespaces: {more} more namespaces on the cluster, not "
                f"declared (the first {LISTED_UNDECLARED} are listed)",
                kind="TemporalNamespace",
                path="/temporal_namespaces",
                repairable=False,
                left_alone=True,
                how="declare them, or delete them by hand with `temporal operator namespace "
                "delete`",
            )
        )
    return tuple(items), ()


def setting_path(namespace: str, field: str) -> str:
    """The drift path of one namespace setting: a JSON pointer (RFC 6901) into the
    environment, `/temporal_namespaces/<namespace>/<field>` (the last segment escaped)."""
    head, sep, key = field.partition("/")
    escaped = key.replace("~", "~0").replace("/", "~1")
    return f"/temporal_namespaces/{namespace}/{head}{sep}{escaped}"


def type_change_commands(namespace: str, name: str, declared: str) -> str:
    """What replacing a search attribute by one of another type takes, by hand."""
    return (
        f"temporal operator search-attribute remove --namespace {namespace} --name {name} "
        f"--yes && temporal operator search-attribute create --namespace {namespace} "
        f"--name {name} --type {declared}"
    )


@dataclass
class SettingsPlan:
    """How a namespace's managed settings (search attributes, owner email, data) differ from
    its declaration, and what a write sets. Built from what was read, before any write."""

    drift: list[DriftItem] = field(default_factory=list)
    outcomes: list[NamespaceSetting] = field(default_factory=list)
    owner_email: str | None = None
    data: dict[str, str] = field(default_factory=dict)
    add: dict[str, SearchAttributeType] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    """Live attributes not declared, in a namespace that allows their deletion."""
    type_changes: list[str] = field(default_factory=list)
    """One line per search attribute whose type differs: why nothing is changed, and the
    commands that would replace it."""

    @property
    def writes(self) -> bool:
        return bool(self.owner_email is not None or self.data or self.add or self.remove)


def plan_settings(
    ns: TemporalNamespace,
    live_email: str,
    live_data: Mapping[str, str],
    live_attributes: Mapping[str, str],
) -> SettingsPlan:
    """Compare `ns`'s declared settings with the live ones (`live_attributes`: name -> type
    name as declared, e.g. "Keyword"). Undeclared data keys and search attributes are not
    managed: never reported, never changed."""
    plan = SettingsPlan()

    def differs(
        setting: str,
        message: str,
        live: str | None,
        declared: str | None,
        *,
        repairable: bool = True,
        how: str = "",
    ) -> None:
        item = _drift(
            ns,
            message,
            path=setting_path(ns.name, setting),
            live=live,
            declared=declared,
            repairable=repairable,
        )
        plan.drift.append(item.model_copy(update={"how": how}) if how else item)

    for name, declared in ns.search_attributes.items():
        setting = f"search_attributes/{name}"
        live = live_attributes.get(name)
        if live is None:
            differs(
                setting,
                f"{setting_path(ns.name, setting)}: search attribute missing, declared "
                f"{declared.value}",
                None,
                declared.value,
            )
            plan.add[name] = declared
            plan.outcomes.append(NamespaceSetting(field=setting, action="added"))
        elif live != declared.value:
            how = type_change_commands(ns.name, name, declared.value)
            differs(
                setting,
                f"{setting_path(ns.name, setting)}: search attribute is {live}, declared "
                f"{declared.value} (a type cannot change in place; never repaired)",
                live,
                declared.value,
                repairable=False,
                how=f"declare {live} again, or replace it by hand (its values in existing "
                f"workflows stop being searchable): {how}",
            )
            plan.type_changes.append(
                f"namespace {ns.name!r}: search attribute {name} is {live} on the server but "
                f"declared {declared.value}; a search attribute's type cannot change in place "
                f"and nothing was changed. Declare {live} again, or replace it by hand (its "
                f"values in existing workflows stop being searchable): {how}"
            )
            plan.outcomes.append(NamespaceSetting(field=setting, action="refused"))
        else:
            plan.outcomes.append(NamespaceSetting(field=setting, action="unchanged"))
    # Attributes nobody declared are not managed (never reported, never removed) unless the
    # namespace allows their deletion.
    undeclared = set(live_attributes) - set(ns.search_attributes) if ns.allow_deletion else set()
    for name in sorted(undeclared):
        setting = f"search_attributes/{name}"
        differs(
            setting,
            f"{setting_path(ns.name, setting)}: search attribute {live_attributes[name]} not "
            "declared (allow_deletion: remediate removes it)",
            live_attributes[name],
            None,
        )
        plan.remove.append(name)
        plan.outcomes.append(NamespaceSetting(field=setting, action="removed"))
    if ns.owner_email is not None:
        if live_email != ns.owner_email:
            differs(
                "owner_email",
                f"{setting_path(ns.name, 'owner_email')}: live {live_email or '(none)'}, "
                f"declared {ns.owner_email}",
                live_email or None,
                ns.owner_email,
            )
            plan.owner_email = ns.owner_email
        action = "unchanged" if plan.owner_email is None else "updated" if live_email else "added"
        plan.outcomes.append(NamespaceSetting(field="owner_email", action=action))
    for key, value in ns.data.items():
        setting = f"data/{key}"
        live_value = live_data.get(key)
        if live_value == value:
            plan.outcomes.append(NamespaceSetting(field=setting, action="unchanged"))
            continue
        what = "missing" if live_value is None else f"live {live_value!r}"
        message = f"{setting_path(ns.name, setting)}: {what}, declared {value!r}"
        differs(setting, message, live_value, value)
        plan.data[key] = value
        action = "added" if live_value is None else "updated"
        plan.outcomes.append(NamespaceSetting(field=setting, action=action))
    return plan


def _created_settings(ns: TemporalNamespace) -> tuple[NamespaceSetting, ...]:
    """A new namespace gets every declared setting."""
    archival = plan_archival(ns, NamespaceConfig()).outcomes
    return (*plan_settings(ns, "", {}, {}).outcomes, *archival)


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

    async def _search_attributes(
        self, client: Client, pacer: RpcPacer, name: str
    ) -> dict[str, str]:
        """The namespace's custom search attributes: name -> type name ("Keyword")."""
        try:
            answer = await pacer.call(
                "list search attributes",
                lambda: client.operator_service.list_search_attributes(
                    ListSearchAttributesRequest(namespace=name), timeout=_RPC_TIMEOUT
                ),
            )
        except RPCError as exc:
            raise _failure(name, "list search attributes", exc) from None
        return {
            attribute: _TYPE_NAMES.get(kind, IndexedValueType.Name(kind))
            for attribute, kind in answer.custom_attributes.items()
        }

    async def _add_search_attributes(
        self,
        client: Client,
        pacer: RpcPacer,
        ns: TemporalNamespace,
        add: Mapping[str, SearchAttributeType],
    ) -> None:
        if not add:
            return
        request = AddSearchAttributesRequest(
            namespace=ns.name,
            search_attributes={n: _INDEXED_TYPES[t] for n, t in add.items()},
        )
        try:
            await pacer.call(
                "add search attributes",
                lambda: client.operator_service.add_search_attributes(
                    request, timeout=_RPC_TIMEOUT
                ),
            )
        except RPCError as exc:
            # Elasticsearch visibility answers ALREADY_EXISTS for one added meanwhile (SQL
            # visibility skips it); the next drift check compares its type.
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise _failure(ns.name, "add search attributes", exc) from None
        activity.logger.info(
            "namespace %s: search attributes added: %s", ns.name, ", ".join(sorted(add))
        )

    async def _remove_search_attributes(
        self, client: Client, pacer: RpcPacer, ns: TemporalNamespace, names: list[str]
    ) -> None:
        """Remove from this namespace (SQL visibility: its alias only; the column's values
        stay in the database but are no longer searchable). Before any add: frees slots."""
        if not names:
            return
        request = RemoveSearchAttributesRequest(namespace=ns.name, search_attributes=names)
        try:
            await pacer.call(
                "remove search attributes",
                lambda: client.operator_service.remove_search_attributes(
                    request, timeout=_RPC_TIMEOUT
                ),
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # removed meanwhile
                raise _failure(ns.name, "remove search attributes", exc) from None
        activity.logger.warning(
            "namespace %s: search attributes not declared removed (allow_deletion): %s",
            ns.name,
            ", ".join(names),
        )

    async def _reconcile(
        self,
        client: Client,
        pacer: RpcPacer,
        ns: TemporalNamespace,
        dry_run: bool,
        listed: Mapping[str, dict[str, str]],
    ) -> tuple[NamespaceOutcome, list[DriftItem]]:
        """The outcome for `ns` and how it differed from its declaration (before any write).
        `listed`: search attributes already read this attempt (the type-change check)."""
        service = client.workflow_service
        missing = _drift(ns, f"namespace {ns.name} missing")
        created = NamespaceOutcome(
            name=ns.name,
            action="created",
            retention_before=None,
            retention_after=ns.retention,
            description_changed=False,
            settings=_created_settings(ns),
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
                owner_email=ns.owner_email or "",
                workflow_execution_retention_period=_duration(ns.retention),
                is_global_namespace=ns.is_global,
                data={**ns.data, REGISTERED_BY: _this_run()},
                **registration_fields(ns),
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
                await self._add_search_attributes(client, pacer, ns, ns.search_attributes)
                after = await self._describe(client, pacer, ns.name)
                if after is not None and (ignored := not_applied(ns, after.config)):
                    raise activity_error(ignored, ErrorType.CONFIGURATION_MISMATCH)
                if after is not None:
                    retention_after = after.config.workflow_execution_retention_ttl.ToTimedelta()
                    created = created.model_copy(update={"retention_after": retention_after})
                return created, [missing]

        retention = found.config.workflow_execution_retention_ttl.ToTimedelta()
        info = found.namespace_info
        description = info.description
        # Registered by an earlier attempt of this very run: it was created, and missing then.
        ours = not dry_run and info.data.get(REGISTERED_BY) == _this_run()
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
        if not (ns.search_attributes or ns.allow_deletion):
            live_attributes: dict[str, str] = {}
        elif ns.name in listed:
            live_attributes = listed[ns.name]
        else:
            live_attributes = await self._search_attributes(client, pacer, ns.name)
        settings = plan_settings(ns, info.owner_email, info.data, live_attributes)
        archival = plan_archival(ns, found.config)
        drift += settings.drift + archival.drift
        if (settings.type_changes or archival.refusals) and not dry_run:
            # Checked before any write already (`_before_any_write`); changed meanwhile.
            refusals = settings.type_changes + archival.refusals
            raise activity_error("; ".join(refusals), ErrorType.CONFIGURATION_MISMATCH)
        outcomes = (*settings.outcomes, *archival.outcomes)
        if not (retention_differs or description_differs or settings.writes or archival.update):
            if ours:
                activity.logger.info("namespace %s was registered by an earlier attempt", ns.name)
                return created.model_copy(update={"retention_after": retention}), drift
            unchanged = NamespaceOutcome(
                name=ns.name,
                action="unchanged",
                retention_before=retention,
                retention_after=retention,
                description_changed=False,
                settings=outcomes,
            )
            return unchanged, drift
        updated = NamespaceOutcome(
            name=ns.name,
            action="updated",
            retention_before=retention,
            retention_after=ns.retention if retention_differs else retention,
            description_changed=description_differs,
            settings=outcomes,
        )
        if dry_run:
            return updated, drift
        retention_after = retention
        if (
            retention_differs
            or description_differs
            or settings.owner_email
            or settings.data
            or archival.update
        ):
            retention_after = await self._update(
                client, pacer, ns, retention_differs, description_differs, settings, archival
            )
        await self._remove_search_attributes(client, pacer, ns, settings.remove)
        await self._add_search_attributes(client, pacer, ns, settings.add)
        activity.logger.info(
            "namespace %s updated: retention %s -> %s%s%s",
            ns.name,
            format_duration(retention),
            format_duration(retention_after),
            ", description changed" if description_differs else "",
            "".join(f", {o.field} {o.action}" for o in outcomes if o.action != "unchanged"),
        )
        outcome = created if ours else updated
        return outcome.model_copy(update={"retention_after": retention_after}), drift

    async def _update(
        self,
        client: Client,
        pacer: RpcPacer,
        ns: TemporalNamespace,
        retention_differs: bool,
        description_differs: bool,
        settings: SettingsPlan,
        archival: ArchivalPlan,
    ) -> timedelta:
        """One UpdateNamespace for what differs; the retention the server then keeps."""
        request = UpdateNamespaceRequest(namespace=ns.name)
        if retention_differs:
            # The server changes retention only when config.workflow_execution_retention_ttl
            # is set; the other config fields stay untouched while unset.
            request.config.CopyFrom(
                NamespaceConfig(workflow_execution_retention_ttl=_duration(ns.retention))
            )
        # Archival kinds not declared stay unspecified, which the server leaves as they are.
        archival.set_on(request.config)
        # Unset (empty) description and owner email are left as they are; `data` is merged
        # into the namespace's data, so keys nobody declared (and the registration marker)
        # stay.
        request.update_info.CopyFrom(
            UpdateNamespaceInfo(
                description=ns.description if description_differs else "",
                owner_email=settings.owner_email or "",
                data=settings.data,
            )
        )
        try:
            response = await pacer.call(
                "update",
                lambda: client.workflow_service.update_namespace(request, timeout=_RPC_TIMEOUT),
            )
        except RPCError as exc:
            raise _failure(ns.name, "update", exc) from None
        if archival.update and (ignored := not_applied(ns, response.config)):
            raise activity_error(ignored, ErrorType.CONFIGURATION_MISMATCH)
        return response.config.workflow_execution_retention_ttl.ToTimedelta()

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

    async def _namespace_names(self, client: Client, pacer: RpcPacer) -> set[str]:
        """Every namespace on the server (a ListNamespaces page per 100)."""
        return set(await self._live_namespaces(client, pacer))

    async def _live_namespaces(
        self, client: Client, pacer: RpcPacer
    ) -> dict[str, DescribeNamespaceResponse]:
        """Every namespace on the server as ListNamespaces describes it (a page per 100)."""
        found: dict[str, DescribeNamespaceResponse] = {}
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
            found.update((n.namespace_info.name, n) for n in page.namespaces)
            token = page.next_page_token
            if not token:
                break
        return found

    async def _before_any_write(
        self, client: Client, pacer: RpcPacer, env_namespaces: tuple[TemporalNamespace, ...]
    ) -> dict[str, dict[str, str]]:
        """Stop (non-retryable, nothing changed) for what the server would refuse or what
        would lose data: a search attribute's type change, an archival URI change. The
        existing namespaces come from one ListNamespaces read, never a describe: a describe
        of a namespace not registered yet makes the frontend cache "not found". Returns the
        live search attributes read (namespace -> name -> type)."""
        with_attributes = [ns for ns in env_namespaces if ns.search_attributes]
        with_archival_uri = [
            ns
            for ns in env_namespaces
            if ns.archival
            and any(k and k.uri for k in (ns.archival.history, ns.archival.visibility))
        ]
        if not (with_attributes or with_archival_uri):
            return {}
        live = await self._live_namespaces(client, pacer)
        listed = await self._refuse_type_changes(client, pacer, with_attributes, set(live))
        refusals = [
            line
            for ns in with_archival_uri
            if ns.name in live
            for line in plan_archival(ns, live[ns.name].config).refusals
        ]
        if refusals:
            raise activity_error("; ".join(refusals), ErrorType.CONFIGURATION_MISMATCH)
        return listed

    async def _refuse_type_changes(
        self,
        client: Client,
        pacer: RpcPacer,
        declaring: list[TemporalNamespace],
        existing: set[str],
    ) -> dict[str, dict[str, str]]:
        """Read the search attributes of the `existing` namespaces among those `declaring`
        some, and stop when a declared type differs from the live one."""
        declaring = [ns for ns in declaring if ns.name in existing]
        listed = await asyncio.gather(
            *(self._search_attributes(client, pacer, ns.name) for ns in declaring)
        )
        refusals = [
            line
            for ns, live in zip(declaring, listed, strict=True)
            for line in plan_settings(ns, "", {}, live).type_changes
        ]
        if refusals:
            raise activity_error("; ".join(refusals), ErrorType.CONFIGURATION_MISMATCH)
        return {ns.name: live for ns, live in zip(declaring, listed, strict=True)}

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
        listed = (
            {}
            if input.dry_run
            else await self._before_any_write(client, pacer, env.temporal_namespaces)
        )

        async def one(ns: TemporalNamespace) -> tuple[NamespaceOutcome, list[DriftItem]]:
            async with limit:
                outcome, drift = await self._reconcile(client, pacer, ns, input.dry_run, listed)
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
            tuple(
                sorted(
                    await self._namespace_names(client, pacer)
                    - {ns.name for ns in env.temporal_namespaces}
                    - _SYSTEM_NAMESPACES
                )
            )
            if list_undeclared
            else ()
        )
        reported, notes = (
            undeclared_findings(
                env, await self._not_server_made(client, undeclared), self._clients.mode(env)
            )
            if input.dry_run and undeclared
            else ((), ())
        )
        actions = [f"{o.name} {o.action}" for o, _ in outcomes]
        if reported:
            actions.append(f"{len(reported)} namespace(s) on the cluster not declared")
        return RegisterNamespacesResult(
            changed=any(o.action != "unchanged" for o, _ in outcomes),
            summary=", ".join(actions) or "no namespaces declared",
            namespaces=tuple(o for o, _ in outcomes),
            undeclared=undeclared,
            dry_run=input.dry_run,
            drift=tuple(d for _, drift in outcomes for d in drift) + reported,
            notes=notes,
        )

    async def _not_server_made(self, client: Client, names: Sequence[str]) -> list[str]:
        """`names` without the server's own namespaces (server_made); GetClusterInfo is
        asked only when `default` is among them."""
        store = ""
        if "default" in names:
            try:
                info = await client.workflow_service.get_cluster_info(
                    GetClusterInfoRequest(), timeout=_RPC_TIMEOUT
                )
            except RPCError as exc:
                raise _failure("default", "reading the cluster's persistence store", exc) from None
            store = info.persistence_store
        return [name for name in names if not server_made(name, store)]
