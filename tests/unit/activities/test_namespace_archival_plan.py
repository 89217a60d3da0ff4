"""register_namespaces' comparison of a namespace's declared archival with what the server
keeps (#22.2): drift paths, what an UpdateNamespace sets, and the URI changes refused before
any write. No server: the live side is a NamespaceConfig as the server answers it, and the
server's transitions are transcribed below from temporalio/temporal
common/namespace/archival_config_state_machine.go (GetNextState) as the independent
expectation: applying the planned update through them must give the declared archival, and
the plan must refuse exactly what the server refuses."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.api.enums.v1 import ArchivalState as Wire
from temporalio.api.namespace.v1 import NamespaceConfig, NamespaceInfo
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceResponse,
    ListNamespacesResponse,
    RegisterNamespaceRequest,
    UpdateNamespaceRequest,
)
from temporalio.exceptions import ApplicationError

from activities.namespace_archival import not_applied, plan_archival, registration_fields
from activities.register_namespaces import RegisterNamespaces
from adapters.errors import ErrorType
from contracts.register_namespaces import RegisterNamespacesInput
from declared_state.archival import ClusterArchival
from declared_state.loader import load_environment
from declared_state.models import TemporalNamespace
from tests.helpers import attempt

ON, OFF, UNSET = Wire.ARCHIVAL_STATE_ENABLED, Wire.ARCHIVAL_STATE_DISABLED, 0
OURS, OTHER = "s3://acme-archive/payments", "s3://acme-archive/elsewhere"
DEFAULT = "s3://acme-archive/default"


class UriUpdate(Exception):
    """The server's errURIUpdate: "Cannot update existing archival URI"."""


def server_next(state: int, uri: str, event_state: int, event_uri: str) -> tuple[int, str]:
    """GetNextState on a cluster that enables the kind (namespace default URI DEFAULT)."""
    if uri and event_uri and uri != event_uri:
        raise UriUpdate
    if uri:  # states 1 and 2: the URI stays; only an explicit state changes the state
        return (event_state or state), uri
    if event_state == ON:
        return ON, event_uri or DEFAULT
    if event_uri:
        return OFF, event_uri
    return state, uri


def live(history: tuple[int, str]) -> NamespaceConfig:
    return NamespaceConfig(history_archival_state=history[0], history_archival_uri=history[1])


def declared(**history: str) -> TemporalNamespace:
    return TemporalNamespace(name="my-ns", archival={"history": history})


LIVE_STATES = [(OFF, ""), (OFF, OURS), (ON, OURS), (OFF, OTHER), (ON, OTHER)]
DECLARATIONS = [
    {"state": "enabled"},
    {"state": "enabled", "uri": OURS},
    {"state": "disabled"},
    {"state": "disabled", "uri": OURS},
]


@pytest.mark.parametrize(
    ("now", "want"), list(itertools.product(LIVE_STATES, DECLARATIONS)), ids=str
)
def test_the_plan_converges_through_the_servers_transitions(now, want):
    ns = declared(**want)
    plan = plan_archival(ns, live(now))
    request = UpdateNamespaceRequest(namespace="my-ns")
    plan.set_on(request.config)
    event = (request.config.history_archival_state, request.config.history_archival_uri)
    if plan.refusals:
        # Refused exactly where the server would refuse the declared URI.
        with pytest.raises(UriUpdate):
            server_next(*now, {"enabled": ON, "disabled": OFF}[want["state"]], want["uri"])
        assert plan.update == {} and [d.repairable for d in plan.drift] == [False]
        return
    after = server_next(*now, *event) if plan.update else now
    assert plan_archival(ns, live(after)).drift == [], (now, want, event, after)
    assert not_applied(ns, live(after)) is None
    # A write only where something differed, and then one drift item at the kind's path.
    if plan.update:
        assert [d.path for d in plan.drift] == ["/temporal_namespaces/my-ns/archival/history"]
    else:
        assert plan.drift == [] and now == after


def test_in_sync_is_no_drift_no_write():
    plan = plan_archival(declared(state="enabled", uri=OURS), live((ON, OURS)))
    assert (plan.drift, plan.update, plan.refusals) == ([], {}, [])
    assert [(o.field, o.action) for o in plan.outcomes] == [("archival/history", "unchanged")]


def test_a_disabled_namespace_is_drift_with_both_sides_shown():
    (item,) = plan_archival(declared(state="enabled", uri=OURS), live((OFF, ""))).drift
    assert (item.path, item.live, item.declared, item.repairable) == (
        "/temporal_namespaces/my-ns/archival/history",
        "disabled",
        f"enabled {OURS}",
        True,
    )
    assert item.message == (
        f"/temporal_namespaces/my-ns/archival/history: live disabled, declared enabled {OURS}"
    )


def test_a_uri_change_is_refused_with_both_uris_and_the_way_out():
    plan = plan_archival(declared(state="enabled", uri=OURS), live((ON, OTHER)))
    (line,) = plan.refusals
    assert f"history archival URI is {OTHER} on the server but declared {OURS}" in line
    assert "Cannot update existing archival URI" in line and "nothing was changed" in line
    assert f"declare uri: {OTHER} again" in line
    assert [(o.field, o.action) for o in plan.outcomes] == [("archival/history", "refused")]


def test_undeclared_kinds_are_never_sent_nor_compared():
    ns = TemporalNamespace(name="my-ns", archival={"visibility": {"state": "disabled"}})
    plan = plan_archival(ns, live((ON, OTHER)))
    assert (plan.drift, plan.update) == ([], {})
    assert plan_archival(TemporalNamespace(name="my-ns"), live((ON, OTHER))).outcomes == []
    request = RegisterNamespaceRequest(namespace="my-ns", **registration_fields(ns))
    # Unspecified: the server gives the namespace its cluster default state.
    assert request.history_archival_state == UNSET and request.history_archival_uri == ""
    assert request.visibility_archival_state == OFF


def test_registration_carries_the_declaration():
    ns = TemporalNamespace(
        name="my-ns",
        archival={"history": {"state": "enabled", "uri": OURS}, "visibility": {"state": "enabled"}},
    )
    request = RegisterNamespaceRequest(namespace="my-ns", **registration_fields(ns))
    assert (request.history_archival_state, request.history_archival_uri) == (ON, OURS)
    # No URI: the server takes the cluster's namespace default.
    assert (request.visibility_archival_state, request.visibility_archival_uri) == (ON, "")


def test_a_server_that_ignored_the_write_is_named():
    """What a server whose cluster config does not enable archival keeps after any write."""
    found = not_applied(declared(state="enabled", uri=OURS), live((OFF, "")))
    assert found is not None
    assert "namespace 'my-ns': the server did not apply its archival" in found
    assert f"history (declared enabled {OURS}, the server keeps disabled)" in found


# --- the refusal before any write, through the step --------------------------------------
# No dev server can hold an archival URI (`temporal server start-dev` hard-codes archival
# off, so every URI it is given is dropped), so this one answer is a stand-in: the real
# ListNamespacesResponse a server that archives returns for a namespace archiving to OTHER.
# Its only simplification: any call but ListNamespaces fails the test (none may be made).


class _ArchivingServer:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def list_namespaces(self, request: Any, **_: Any) -> ListNamespacesResponse:
        self.calls.append("list_namespaces")
        listed = DescribeNamespaceResponse(
            namespace_info=NamespaceInfo(name="my-ns"),
            config=NamespaceConfig(history_archival_state=ON, history_archival_uri=OTHER),
        )
        return ListNamespacesResponse(namespaces=[listed])

    def __getattr__(self, rpc: str) -> Any:
        raise AssertionError(f"{rpc} called before the URI change was refused")


async def test_a_uri_change_stops_the_step_before_any_write():
    server = _ArchivingServer()
    client = SimpleNamespace(workflow_service=server)
    cluster = {"s3store": {"region": "eu-west-1"}, "history": {"state": "enabled", "uri": DEFAULT}}
    env = load_environment("staging").model_copy(
        update={
            "archival": ClusterArchival.model_validate(cluster),
            "temporal_namespaces": (declared(state="enabled", uri=OURS),),
        }
    )
    step = RegisterNamespaces(clients=None)  # type: ignore[arg-type]

    with pytest.raises(ApplicationError) as caught:
        await attempt().run(step._register, RegisterNamespacesInput(environment=env), client)

    assert caught.value.type == ErrorType.CONFIGURATION_MISMATCH and caught.value.non_retryable
    assert f"history archival URI is {OTHER} on the server but declared {OURS}" in str(caught.value)
    assert server.calls == ["list_namespaces"]
