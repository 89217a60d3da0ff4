"""register_namespaces against the session's Temporal dev server, checked with the real
`temporal` CLI. Every test uses its own namespace names: the server is shared."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment

from activities.register_namespaces import RegisterNamespaces
from adapters.errors import ErrorType
from adapters.temporal_target import TargetTemporalClients
from contracts.register_namespaces import RegisterNamespacesInput, RegisterNamespacesResult
from declared_state.models import (
    Environment,
    FrontendSpec,
    TemporalNamespace,
    UndeclaredNamespaces,
)
from local_stack.processes import LOOPBACK, free_port
from local_stack.temporal_servers import running, target_server, temporal_cli
from tests.helpers import drift_messages


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def local_env(local_env: Environment, target_temporal) -> Environment:
    """local.yaml with its frontend dialled directly: the session's target server, a
    frontend without an install (the installed ones are reached by port-forward, e2e)."""
    return local_env.model_copy(
        update={"frontend": FrontendSpec(connect="direct", address=target_temporal.address)}
    )


def declaring(env: Environment, *namespaces: TemporalNamespace) -> Environment:
    return env.model_copy(update={"temporal_namespaces": namespaces})


def cli(address: str, *args: str) -> str:
    done = subprocess.run(
        [temporal_cli(), "operator", "namespace", *args, "--address", address],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def described(address: str, name: str) -> dict[str, Any]:
    return json.loads(cli(address, "describe", "--namespace", name, "-o", "json"))


def retention(address: str, name: str) -> timedelta:
    ttl = described(address, name)["config"]["workflowExecutionRetentionTtl"]  # "604800s"
    return timedelta(seconds=float(ttl.removesuffix("s")))


class Calls:
    """Counts the register/update calls of a real client the server took (`counts`: writes;
    a registration answered ALREADY_EXISTS wrote nothing), optionally slows them, and logs
    every namespace call with the server's answer (`log`: (rpc, namespace, status name or
    "OK")); they still go to the server."""

    LOGGED = ("describe_namespace", "list_namespaces")

    def __init__(self, service: Any, delay: float = 0.0):
        self.counts = {"register_namespace": 0, "update_namespace": 0}
        self.log: list[tuple[str, str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        for name in (*self.counts, *self.LOGGED):
            setattr(service, name, self._wrap(name, getattr(service, name), delay))

    def _wrap(self, name: str, real: Any, delay: float) -> Any:
        async def call(request: Any, *args: Any, **kwargs: Any) -> Any:
            if name in self.LOGGED:
                return await self._logged(name, request, real(request, *args, **kwargs))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(delay)
                answer = await self._logged(name, request, real(request, *args, **kwargs))
            finally:
                self.in_flight -= 1
            self.counts[name] += 1
            return answer

        return call

    async def _logged(self, name: str, request: Any, answer: Any) -> Any:
        namespace = getattr(request, "namespace", "")
        try:
            result = await answer
        except RPCError as exc:
            self.log.append((name, namespace, exc.status.name))
            raise
        self.log.append((name, namespace, "OK"))
        return result

    def answers(self, rpc: str) -> list[str]:
        return [status for name, _, status in self.log if name == rpc]


@pytest.fixture
async def clients() -> TargetTemporalClients:
    return TargetTemporalClients()  # fresh per test, so spying on its client stays local


async def spy(clients: TargetTemporalClients, env: Environment, delay: float = 0.0) -> Calls:
    client = await clients.direct_client(env, env.frontend_address, None)
    return Calls(client.workflow_service, delay)


async def run(
    clients: TargetTemporalClients,
    env: Environment,
    *,
    run_id: str | None = None,
    attempt: int = 1,
    **fields: Any,
) -> tuple[RegisterNamespacesResult, list[dict[str, Any]]]:
    """One attempt of the step; each call is another provisioning run unless `run_id` says
    which run's (later) `attempt` it is."""
    act_env = ActivityEnvironment()
    act_env.info = dataclasses.replace(
        act_env.info,
        activity_type="register_namespaces",
        workflow_id="provision-test",
        workflow_run_id=run_id or str(uuid.uuid4()),
        attempt=attempt,
        started_time=datetime.now(UTC),
        start_to_close_timeout=timedelta(seconds=60),
        schedule_to_close_timeout=None,
    )
    beats: list[dict[str, Any]] = []
    act_env.on_heartbeat = lambda *details: beats.append(details[0])
    result = await act_env.run(
        RegisterNamespaces(clients).register_namespaces,
        RegisterNamespacesInput(environment=env, **fields),
    )
    return result, beats


def by_name(result: RegisterNamespacesResult) -> dict[str, Any]:
    return {o.name: o for o in result.namespaces}


async def test_creates_then_leaves_unchanged(local_env, target_temporal, clients):
    addr = target_temporal.address
    long_ns, short_ns = unique("app"), unique("short")
    env = declaring(
        local_env,
        TemporalNamespace(name=long_ns, retention="168h", description="Application workflows"),
        TemporalNamespace(name=short_ns, retention="24h", description="Short-lived"),
    )
    calls = await spy(clients, env)

    first, beats = await run(clients, env)

    assert first.changed
    assert [o.name for o in first.namespaces] == [long_ns, short_ns]
    for outcome, hours in zip(first.namespaces, (168, 24), strict=True):
        assert outcome.action == "created"
        assert outcome.retention_before is None
        assert outcome.retention_after == timedelta(hours=hours)
    assert calls.counts == {"register_namespace": 2, "update_namespace": 0}
    assert drift_messages(first) == (
        f"namespace {long_ns} missing",
        f"namespace {short_ns} missing",
    )
    assert retention(addr, long_ns) == timedelta(hours=168)
    assert retention(addr, short_ns) == timedelta(hours=24)
    assert described(addr, long_ns)["namespaceInfo"]["description"] == "Application workflows"
    # Waited for usability with heartbeats, and the namespaces are usable now.
    assert beats[-1]["phase"] == "wait_usable" and beats[-1]["waiting"] == []
    cli_list = subprocess.run(
        [temporal_cli(), "workflow", "list", "--address", addr, "--namespace", long_ns],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli_list.returncode == 0, cli_list.stderr

    second, _ = await run(clients, env)

    assert not second.changed
    assert drift_messages(second) == ()
    assert [(o.name, o.action) for o in second.namespaces] == [
        (long_ns, "unchanged"),
        (short_ns, "unchanged"),
    ]
    assert by_name(second)[long_ns].retention_before == timedelta(hours=168)
    assert calls.counts == {"register_namespace": 2, "update_namespace": 0}  # none added


async def test_a_retry_reports_what_an_earlier_attempt_of_the_run_created(
    local_env, target_temporal, clients
):
    """Item 4: attempt 1 registered the namespaces, then timed out before its result was
    recorded; attempt 2 used to report them `unchanged`, so the audit trail said nothing was
    created."""
    addr = target_temporal.address
    created, found = unique("retry-new"), unique("retry-old")
    cli(addr, "create", "--namespace", found, "--retention", "72h", "--description", "before")
    env = declaring(
        local_env,
        TemporalNamespace(name=created, retention="168h", description="declared"),
        TemporalNamespace(name=found, retention="72h", description="before"),
    )
    run_id = str(uuid.uuid4())
    await run(clients, env, run_id=run_id, attempt=1)  # its result never reached the server
    calls = await spy(clients, env)

    retried, _ = await run(clients, env, run_id=run_id, attempt=2)

    assert [(o.name, o.action) for o in retried.namespaces] == [
        (created, "created"),
        (found, "unchanged"),
    ]
    assert by_name(retried)[created].retention_before is None
    assert by_name(retried)[created].retention_after == timedelta(hours=168)
    assert drift_messages(retried) == (f"namespace {created} missing",)
    assert retried.changed and retried.summary == f"{created} created, {found} unchanged"
    assert calls.counts == {"register_namespace": 0, "update_namespace": 0}, "nothing twice"
    data = described(addr, created)["namespaceInfo"]["data"]
    assert data == {"temporal-bootstrap.registered-by": f"provision-test/{run_id}"}

    # Another run (the next provision) finds it as it is: unchanged.
    later, _ = await run(clients, env)
    assert [o.action for o in later.namespaces] == ["unchanged", "unchanged"]
    assert not later.changed and drift_messages(later) == ()


async def test_retention_drift_is_restored(local_env, target_temporal, clients):
    addr = target_temporal.address
    name = unique("drift")
    env = declaring(local_env, TemporalNamespace(name=name, retention="168h", description="d"))
    await run(clients, env)
    cli(addr, "update", "--namespace", name, "--retention", "48h")
    assert retention(addr, name) == timedelta(hours=48)

    result, _ = await run(clients, env)

    outcome = by_name(result)[name]
    assert outcome.action == "updated"
    assert outcome.retention_before == timedelta(hours=48)
    assert outcome.retention_after == timedelta(hours=168)
    assert not outcome.description_changed
    assert drift_messages(result) == (f"namespace {name} retention 48h0m0s, declared 168h0m0s",)
    assert retention(addr, name) == timedelta(hours=168)
    assert described(addr, name)["namespaceInfo"]["description"] == "d"


async def test_description_drift_is_restored(local_env, target_temporal, clients):
    addr = target_temporal.address
    name = unique("desc")
    env = declaring(
        local_env, TemporalNamespace(name=name, retention="72h", description="Declared text")
    )
    await run(clients, env)
    cli(addr, "update", "--namespace", name, "--description", "changed by hand")

    result, _ = await run(clients, env)

    outcome = by_name(result)[name]
    assert outcome.action == "updated"
    assert outcome.description_changed
    assert outcome.retention_before == outcome.retention_after == timedelta(hours=72)
    assert described(addr, name)["namespaceInfo"]["description"] == "Declared text"
    assert retention(addr, name) == timedelta(hours=72)

    again, _ = await run(clients, env)
    assert by_name(again)[name].action == "unchanged"


async def test_dry_run_reports_drift_and_changes_nothing(local_env, target_temporal, clients):
    addr = target_temporal.address
    kept, drifted, absent = unique("dry-kept"), unique("dry-drift"), unique("dry-absent")
    declared = (
        TemporalNamespace(name=kept, retention="72h", description="in sync"),
        TemporalNamespace(name=drifted, retention="168h", description="declared"),
        TemporalNamespace(name=absent, retention="24h", description="not there"),
    )
    await run(clients, declaring(local_env, *declared[:2]))
    cli(addr, "update", "--namespace", drifted, "--retention", "48h", "--description", "by hand")
    env = declaring(local_env, *declared)
    calls = await spy(clients, env)

    result, beats = await run(clients, env, dry_run=True)

    assert result.dry_run
    assert [(o.name, o.action) for o in result.namespaces] == [
        (kept, "unchanged"),
        (drifted, "updated"),
        (absent, "created"),
    ]
    outcomes = by_name(result)
    assert (outcomes[drifted].retention_before, outcomes[drifted].retention_after) == (
        timedelta(hours=48),
        timedelta(hours=168),
    )
    assert outcomes[drifted].description_changed
    assert (outcomes[absent].retention_before, outcomes[absent].retention_after) == (
        None,
        timedelta(hours=24),
    )
    assert drift_messages(result) == (
        f"namespace {drifted} retention 48h0m0s, declared 168h0m0s",
        f"namespace {drifted} description differs",
        f"namespace {absent} missing",
    )
    # Nothing written, no usability wait; the undeclared ones are still listed.
    assert calls.counts == {"register_namespace": 0, "update_namespace": 0}
    assert retention(addr, drifted) == timedelta(hours=48)
    assert described(addr, drifted)["namespaceInfo"]["description"] == "by hand"
    missing = subprocess.run(
        [temporal_cli(), "operator", "namespace", "describe", "--address", addr, "-n", absent],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode != 0
    assert all(b["phase"] == "reconcile" for b in beats)
    assert "default" in result.undeclared

    in_sync, _ = await run(clients, declaring(local_env, declared[0]), dry_run=True)
    assert [(o.name, o.action) for o in in_sync.namespaces] == [(kept, "unchanged")]
    assert (in_sync.dry_run, drift_messages(in_sync), in_sync.changed) == (True, (), False)


async def test_undeclared_namespace_is_left_alone(local_env, target_temporal, clients):
    addr = target_temporal.address
    other, declared = unique("other"), unique("mine")
    cli(addr, "create", "--namespace", other, "--retention", "72h", "--description", "theirs")
    env = declaring(local_env, TemporalNamespace(name=declared))
    calls = await spy(clients, env)

    provisioned, _ = await run(clients, env)
    # Provisioning reads nothing of the list, so it does not page through every namespace.
    assert provisioned.undeclared == ()
    assert calls.answers("list_namespaces") == []

    for result, _ in (
        await run(clients, env, list_undeclared=True),
        await run(clients, env, dry_run=True),
    ):
        assert [o.name for o in result.namespaces] == [declared]
        assert other in result.undeclared
        assert declared not in result.undeclared
    assert retention(addr, other) == timedelta(hours=72)
    assert described(addr, other)["namespaceInfo"]["description"] == "theirs"

    # #22.1: a dry run says what the environment makes of them. The dev server's `default`
    # (it creates it on every start; GetClusterInfo says sqlite) is its own, never listed.
    protected, _ = await run(clients, env, dry_run=True)
    assert "default" in protected.undeclared
    assert f"namespace {other}: not declared, left alone (undeclared_namespaces: protect)" in (
        protected.notes
    )
    assert not [
        n
        for n in protected.notes
        if n.startswith(("namespace default:", "namespace temporal-system:"))
    ]
    assert protected.drift == ()
    reporting = env.model_copy(update={"undeclared_namespaces": UndeclaredNamespaces.REPORT})
    reported, _ = await run(clients, reporting, dry_run=True)
    paths = {d.path: d for d in reported.drift}
    assert f"/temporal_namespaces/{other}" in paths and reported.notes == ()
    assert "/temporal_namespaces/default" not in paths
    assert not paths[f"/temporal_namespaces/{other}"].repairable
    assert retention(addr, other) == timedelta(hours=72)  # reported, never touched


async def test_a_new_namespace_is_registered_without_describing_it_first(
    local_env, target_temporal, clients
):
    # A describe of a missing namespace makes the frontend cache "not found" for ~1 s, so the
    # first call for a new namespace must be its registration.
    name = unique("fresh")
    env = declaring(local_env, TemporalNamespace(name=name, retention="24h"))
    calls = await spy(clients, env)

    result, _ = await run(clients, env)

    assert [(o.name, o.action) for o in result.namespaces] == [(name, "created")]
    assert calls.log[0] == ("register_namespace", name, "OK")
    assert ("describe_namespace", name, "NOT_FOUND") not in calls.log
    assert retention(target_temporal.address, name) == timedelta(hours=24)


async def drain_admissions(address: str) -> None:
    """Register throwaway namespaces until the server rejects one: its admission budget is
    spent, so the next burst meets the rate limit even on a machine too busy to send one."""
    client = await Client.connect(address)
    for i in range(500):
        request = RegisterNamespaceRequest(namespace=unique(f"drain{i}"))
        request.workflow_execution_retention_period.FromTimedelta(timedelta(days=1))
        try:
            await client.workflow_service.register_namespace(request)
        except RPCError as exc:
            if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:
                return
            raise
    raise AssertionError("the server admitted 500 registrations in a row: no rate limit")


async def test_rate_limit_rejections_are_paced_per_call_not_a_failed_attempt(
    local_env, clients, tmp_path
):
    # A fresh dev server (it admits a burst of ~40 registrations, then ~25 a second, and
    # rejects the rest with RESOURCE_EXHAUSTED); its own, so the session's server stays small.
    # Its budget is spent first, so the step's burst meets the limit however busy the machine.
    with running(target_server(tmp_path)) as server:
        names = [unique("burst") for _ in range(80)]
        env = declaring(local_env, *(TemporalNamespace(name=n) for n in names)).model_copy(
            update={"frontend": FrontendSpec(connect="direct", address=server.address)}
        )
        calls = await spy(clients, env)
        await drain_admissions(server.address)

        result, _ = await run(clients, env, concurrency=64)  # one attempt; it must not fail

        registered = [(ns, status) for rpc, ns, status in calls.log if rpc == "register_namespace"]
        rejected = [ns for ns, status in registered if status == "RESOURCE_EXHAUSTED"]
        assert rejected, "the server admitted the whole burst: nothing was paced"
        assert {status for _, status in registered} == {"OK", "RESOURCE_EXHAUSTED"}
        # Only the rejected calls were repeated, each until the server took it, once.
        accepted = [ns for ns, status in registered if status == "OK"]
        assert sorted(accepted) == sorted(names)
        assert len(registered) == len(names) + len(rejected)
        assert [o.action for o in result.namespaces] == ["created"] * len(names)
        for name in (rejected[0], rejected[-1], accepted[0]):
            assert described(server.address, name)["namespaceInfo"]["name"] == name


async def test_concurrency_is_bounded(local_env, clients):
    names = [unique("bound") for _ in range(5)]
    env = declaring(local_env, *(TemporalNamespace(name=n) for n in names))
    calls = await spy(clients, env, delay=0.3)  # keeps each register call open a while

    result, _ = await run(clients, env, concurrency=2)

    assert [o.action for o in result.namespaces] == ["created"] * 5
    assert calls.counts["register_namespace"] == 5
    assert calls.max_in_flight == 2


async def test_refused_declaration_is_not_retryable(local_env, target_temporal, clients):
    # The dev server is not a multi-cluster setup: registering a global namespace is refused.
    name = unique("global")
    env = declaring(local_env, TemporalNamespace(name=name, retention="48h", **{"global": True}))

    with pytest.raises(ApplicationError) as caught:
        await run(clients, env)

    err = caught.value
    assert err.type == ErrorType.NAMESPACE_REGISTRATION_FAILED
    assert err.non_retryable
    assert name in err.message and "INVALID_ARGUMENT" in err.message
    listed = subprocess.run(
        [
            temporal_cli(),
            "operator",
            "namespace",
            "describe",
            "--address",
            target_temporal.address,
            "--namespace",
            name,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listed.returncode != 0  # nothing was registered


async def test_unreachable_frontend_is_retryable(local_env, clients):
    address = f"{LOOPBACK}:{free_port()}"
    env = declaring(local_env, TemporalNamespace(name=unique("x"))).model_copy(
        update={"frontend": FrontendSpec(address=address)}
    )

    with pytest.raises(ApplicationError) as caught:
        await run(clients, env)

    assert caught.value.type == ErrorType.FRONTEND_UNHEALTHY
    assert not caught.value.non_retryable
    assert address in caught.value.message


async def test_a_dry_run_that_cannot_reach_the_frontend_reports_it_unchecked_not_drift(
    local_env, clients
):
    """#20.1: a dry run (the drift check) whose frontend does not answer has compared
    nothing: "could not check", never a difference a script would act on."""
    address = f"{LOOPBACK}:{free_port()}"
    env = declaring(local_env, TemporalNamespace(name=unique("x"))).model_copy(
        update={"frontend": FrontendSpec(address=address)}
    )

    result, _ = await run(clients, env, dry_run=True)

    assert (result.drift, result.changed, result.namespaces) == ((), False, ())
    (unread,) = result.unchecked
    assert unread.kind == "TemporalFrontend" and not unread.repairable
    assert unread.message.startswith("namespaces: could not check: Temporal frontend ")
    assert address in unread.message and "did not answer" in unread.message
