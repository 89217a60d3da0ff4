"""register_namespaces' comparison of a namespace's declared settings with what it read
(#22.2): which differences are drift, at which path, and what a write would set. No server:
the live side is given as the server's answers would be."""

from __future__ import annotations

from activities.register_namespaces import plan_settings, setting_path
from declared_state.models import TemporalNamespace

DECLARED = TemporalNamespace(
    name="my-ns",
    search_attributes={"CustomerId": "Keyword", "Amount": "Int"},
    owner_email="payments@example.com",
    data={"team": "payments"},
)


def test_in_sync_is_no_drift_and_no_write():
    plan = plan_settings(
        DECLARED,
        "payments@example.com",
        {"team": "payments", "temporal-bootstrap.registered-by": "provision-x/1", "other": "x"},
        {"CustomerId": "Keyword", "Amount": "Int", "HandMade": "Text"},
    )
    assert (plan.drift, plan.writes, plan.type_changes) == ([], False, [])
    assert {o.field: o.action for o in plan.outcomes} == {
        "search_attributes/CustomerId": "unchanged",
        "search_attributes/Amount": "unchanged",
        "owner_email": "unchanged",
        "data/team": "unchanged",
    }


def test_undeclared_attributes_are_drift_only_where_deletion_is_allowed():
    live = {"CustomerId": "Keyword", "Amount": "Int", "HandMade": "Text"}
    allowed = DECLARED.model_copy(update={"allow_deletion": True})
    plan = plan_settings(allowed, "payments@example.com", {"team": "payments"}, live)
    assert [(d.path, d.live, d.declared) for d in plan.drift] == [
        ("/temporal_namespaces/my-ns/search_attributes/HandMade", "Text", None)
    ]
    assert plan.remove == ["HandMade"] and plan.writes


def test_an_unmanaged_owner_email_is_never_drift():
    plan = plan_settings(TemporalNamespace(name="my-ns"), "someone@else.org", {}, {})
    assert plan.drift == [] and plan.owner_email is None and plan.outcomes == []


def test_a_type_change_is_not_repairable_and_no_write_is_planned_for_it():
    plan = plan_settings(
        DECLARED, "payments@example.com", {"team": "payments"}, {"CustomerId": "Text"}
    )
    by_path = {d.path: d for d in plan.drift}
    changed = by_path["/temporal_namespaces/my-ns/search_attributes/CustomerId"]
    assert (changed.live, changed.declared, changed.repairable) == ("Text", "Keyword", False)
    assert "--name CustomerId --type Keyword" in changed.how
    assert "CustomerId" not in plan.add and plan.add == {
        "Amount": DECLARED.search_attributes["Amount"]
    }
    assert len(plan.type_changes) == 1


def test_data_keys_are_escaped_as_json_pointer_segments():
    assert setting_path("my-ns", "data/a/b~c") == "/temporal_namespaces/my-ns/data/a~1b~0c"
    assert setting_path("my-ns", "owner_email") == "/temporal_namespaces/my-ns/owner_email"
