"""What a drift check makes of the namespaces nobody declared (#22.1): the server's own are
never counted, `report` gives one not-repairable item per namespace with the two ways out,
`protect` gives notes only. Expectations are written out, not derived from the code."""

from __future__ import annotations

import pytest

from activities.register_namespaces import (
    LISTED_UNDECLARED,
    delete_command,
    server_made,
    undeclared_findings,
)
from declared_state.loader import load_environment
from declared_state.models import (
    Environment,
    FrontendConnect,
    FrontendSpec,
    FrontendTls,
    UndeclaredNamespaces,
)


def staging(**update: object) -> Environment:
    return load_environment("staging").model_copy(update=update)


@pytest.mark.parametrize(
    ("name", "store", "made"),
    [
        ("temporal-system", "mysql8", True),  # every server creates it at start
        ("temporal-system", "sqlite", True),
        ("default", "sqlite", True),  # `temporal server start-dev` creates it on every start
        ("default", "mysql8", False),  # on the chart's cluster someone registered it
        ("default", "postgres12", False),
        ("orders", "sqlite", False),
        ("default", "", False),  # the store was not read: nothing is assumed
    ],
)
def test_only_the_servers_own_namespaces_are_never_undeclared(name, store, made):
    assert server_made(name, store) is made


def test_the_delete_command_through_a_port_forward():
    env = staging()  # namespace my-app-staging, release temporal
    assert delete_command(env, FrontendConnect.PORT_FORWARD, "orders") == (
        "kubectl --namespace my-app-staging port-forward service/temporal-frontend "
        "7233:7233, then temporal operator namespace delete --namespace orders "
        "--address 127.0.0.1:7233"
    )


def test_the_delete_command_direct_with_tls():
    env = staging(
        frontend=FrontendSpec(
            connect="direct",
            address="temporal.example.com:7233",
            tls=FrontendTls(enabled=True, ca_file="/etc/ca.pem", server_name="temporal"),
        )
    )
    assert delete_command(env, FrontendConnect.DIRECT, "orders") == (
        "temporal operator namespace delete --namespace orders --address "
        "temporal.example.com:7233 --tls --tls-ca-path /etc/ca.pem --tls-server-name temporal"
    )
    plain = staging()
    assert delete_command(plain, FrontendConnect.DIRECT, "orders") == (
        "temporal operator namespace delete --namespace orders --address "
        "temporal-frontend.my-app-staging.svc.cluster.local:7233"
    )


def test_report_makes_each_one_drift_remediate_never_repairs():
    env = staging(undeclared_namespaces=UndeclaredNamespaces.REPORT)
    items, notes = undeclared_findings(env, ["orders", "payments"], FrontendConnect.DIRECT)
    assert notes == ()
    assert [(i.kind, i.name, i.path, i.live, i.declared) for i in items] == [
        ("TemporalNamespace", "orders", "/temporal_namespaces/orders", "exists", None),
        ("TemporalNamespace", "payments", "/temporal_namespaces/payments", "exists", None),
    ]
    assert all(not i.repairable and i.left_alone and not i.ignored for i in items)
    assert items[0].message == (
        "/temporal_namespaces/orders: namespace on the cluster, not declared "
        "(undeclared_namespaces: report; never deleted)"
    )
    assert items[0].how == (
        "declare it in temporal_namespaces of environment staging, or delete it by hand (its "
        "workflows and histories go with it): temporal operator namespace delete --namespace "
        "orders --address temporal-frontend.my-app-staging.svc.cluster.local:7233"
    )


def test_protect_makes_them_notes_never_drift():
    items, notes = undeclared_findings(staging(), ["orders"], FrontendConnect.PORT_FORWARD)
    assert items == ()
    assert notes == ("namespace orders: not declared, left alone (undeclared_namespaces: protect)",)


def test_thousands_are_named_up_to_the_limit_and_the_rest_counted():
    names = [f"ns-{i:05d}" for i in range(LISTED_UNDECLARED + 7)]
    env = staging(undeclared_namespaces=UndeclaredNamespaces.REPORT)
    items, _ = undeclared_findings(env, names, FrontendConnect.DIRECT)
    assert len(items) == LISTED_UNDECLARED + 1
    assert items[-1].path == "/temporal_namespaces" and not items[-1].repairable
    assert items[-1].message.startswith("/temporal_namespaces: 7 more namespaces")
    _, notes = undeclared_findings(staging(), names, FrontendConnect.DIRECT)
    assert len(notes) == LISTED_UNDECLARED + 1
    assert notes[-1] == "... and 7 more namespaces not declared, left alone"
