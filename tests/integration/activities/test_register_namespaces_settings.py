"""register_namespaces keeps each namespace's search attributes, owner email and data (#22.2,
#22.3) on the session's Temporal dev server, checked with the real `temporal` CLI.

The dev server keeps custom search attributes per namespace as SQL visibility does (it runs
SQLite visibility: aliases of pre-allocated columns in the namespace's config), so what these
tests see is what a MySQL-backed cluster answers; `operator search-attribute remove` works
per namespace there too."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from adapters.errors import ErrorType
from declared_state.archival import ClusterArchival
from declared_state.models import TemporalNamespace
from local_stack.temporal_servers import temporal_cli
from tests.helpers import drift_messages
from tests.integration.activities import test_register_namespaces as base
from tests.integration.activities.test_register_namespaces import (
    by_name,
    cli,
    declaring,
    described,
    run,
    spy,
    unique,
)

# The fixtures of the step's other tests: local.yaml dialling the session's dev server, and
# fresh clients per test.
local_env = base.local_env
clients = base.clients

SETTINGS: dict[str, Any] = {
    "search_attributes": {"CustomerId": "Keyword", "Amount": "Int"},
    "owner_email": "payments@example.com",
    "data": {"team": "payments", "tier": "gold"},
}


def search_attributes(address: str, namespace: str) -> dict[str, str]:
    """The namespace's custom search attributes as the CLI lists them: name -> type enum."""
    done = subprocess.run(
        [temporal_cli(), "operator", "search-attribute", "list", "--address", address]
        + ["--namespace", namespace, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout).get("customAttributes", {})


def search_attribute(address: str, verb: str, namespace: str, name: str, *args: str) -> None:
    done = subprocess.run(
        [temporal_cli(), "operator", "search-attribute", verb, "--address", address]
        + ["--namespace", namespace, "--name", name, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def settings_of(result: Any, name: str) -> dict[str, str]:
    return {s.field: s.action for s in by_name(result)[name].settings}


async def test_a_new_namespace_gets_its_settings_then_stays_unchanged(
    local_env, target_temporal, clients
):
    addr = target_temporal.address
    name = unique("settings")
    env = declaring(local_env, TemporalNamespace(name=name, **SETTINGS))

    first, _ = await run(clients, env)

    assert by_name(first)[name].action == "created"
    assert settings_of(first, name) == {
        "search_attributes/CustomerId": "added",
        "search_attributes/Amount": "added",
        "owner_email": "added",
        "data/team": "added",
        "data/tier": "added",
    }
    assert search_attributes(addr, name) == {
        "CustomerId": "INDEXED_VALUE_TYPE_KEYWORD",
        "Amount": "INDEXED_VALUE_TYPE_INT",
    }
    info = described(addr, name)["namespaceInfo"]
    assert info["ownerEmail"] == "payments@example.com"
    assert info["data"]["team"] == "payments" and info["data"]["tier"] == "gold"
    assert "temporal-bootstrap.registered-by" in info["data"]
    calls = await spy(clients, env)

    second, _ = await run(clients, env)

    assert not second.changed and drift_messages(second) == ()
    assert by_name(second)[name].action == "unchanged"
    assert set(settings_of(second, name).values()) == {"unchanged"}
    assert calls.counts == {"register_namespace": 0, "update_namespace": 0}
    assert calls.answers("register_namespace") == ["ALREADY_EXISTS"]


async def test_hand_changes_are_reported_by_path_then_restored(local_env, target_temporal, clients):
    """An existing namespace with a data key nobody declares: the dry run reports each
    difference by namespace and field and changes nothing; the real run restores them and
    leaves the undeclared key alone."""
    addr = target_temporal.address
    name = unique("hand")
    cli(addr, "create", "--namespace", name, "--retention", "168h", "--data", "other=kept")
    env = declaring(local_env, TemporalNamespace(name=name, retention="168h", **SETTINGS))
    await run(clients, env)
    search_attribute(addr, "remove", name, "CustomerId", "--yes")
    cli(addr, "update", "--namespace", name, "--email", "someone@else.org", "--data", "tier=tin")
    assert "CustomerId" not in search_attributes(addr, name)

    dry, _ = await run(clients, env, dry_run=True)

    prefix = f"/temporal_namespaces/{name}"
    assert [(d.path, d.live, d.declared, d.repairable) for d in dry.drift] == [
        (f"{prefix}/search_attributes/CustomerId", None, "Keyword", True),
        (f"{prefix}/owner_email", "someone@else.org", "payments@example.com", True),
        (f"{prefix}/data/tier", "tin", "gold", True),
    ]
    assert drift_messages(dry)[0] == (
        f"{prefix}/search_attributes/CustomerId: search attribute missing, declared Keyword"
    )
    assert dry.changed and by_name(dry)[name].action == "updated"
    assert "CustomerId" not in search_attributes(addr, name)  # nothing written
    assert described(addr, name)["namespaceInfo"]["ownerEmail"] == "someone@else.org"

    restored, _ = await run(clients, env)

    assert settings_of(restored, name) == {
        "search_attributes/CustomerId": "added",
        "search_attributes/Amount": "unchanged",
        "owner_email": "updated",
        "data/team": "unchanged",
        "data/tier": "updated",
    }
    assert search_attributes(addr, name)["CustomerId"] == "INDEXED_VALUE_TYPE_KEYWORD"
    info = described(addr, name)["namespaceInfo"]
    assert info["ownerEmail"] == "payments@example.com"
    assert info["data"]["tier"] == "gold" and info["data"]["other"] == "kept"
    again, _ = await run(clients, env, dry_run=True)
    assert drift_messages(again) == () and not again.changed


async def test_a_type_change_is_refused_and_nothing_is_changed(local_env, target_temporal, clients):
    addr = target_temporal.address
    name, new = unique("typed"), unique("typed-new")
    cli(addr, "create", "--namespace", name, "--retention", "72h")
    search_attribute(addr, "create", name, "CustomerId", "--type", "Keyword")
    declared = TemporalNamespace(
        name=name,
        retention="72h",
        search_attributes={"CustomerId": "Int", "Amount": "Int"},
        owner_email="payments@example.com",
    )
    env = declaring(local_env, TemporalNamespace(name=new), declared)

    with pytest.raises(ApplicationError) as caught:
        await run(clients, env)

    err = caught.value
    assert err.type == ErrorType.CONFIGURATION_MISMATCH and err.non_retryable
    assert f"namespace '{name}': search attribute CustomerId is Keyword on the server but " in (
        err.message
    )
    assert "declared Int" in err.message and "nothing was changed" in err.message
    assert (
        f"temporal operator search-attribute remove --namespace {name} --name CustomerId --yes"
        f" && temporal operator search-attribute create --namespace {name} --name CustomerId "
        "--type Int" in err.message
    )
    # Nothing changed: no attribute added, no email set, the other namespace not registered.
    assert search_attributes(addr, name) == {"CustomerId": "INDEXED_VALUE_TYPE_KEYWORD"}
    assert described(addr, name)["namespaceInfo"].get("ownerEmail", "") == ""
    missing = subprocess.run(
        [temporal_cli(), "operator", "namespace", "describe", "--address", addr, "-n", new],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode != 0

    dry, _ = await run(clients, declaring(local_env, declared), dry_run=True)

    (changed_type,) = [d for d in dry.drift if d.path.endswith("/CustomerId")]
    assert changed_type.path == f"/temporal_namespaces/{name}/search_attributes/CustomerId"
    assert (changed_type.live, changed_type.declared) == ("Keyword", "Int")
    assert not changed_type.repairable
    assert "search-attribute remove" in changed_type.how
    assert settings_of(dry, name)["search_attributes/CustomerId"] == "refused"


async def test_undeclared_attributes_are_removed_only_when_the_namespace_allows_it(
    local_env, target_temporal, clients
):
    addr = target_temporal.address
    name = unique("deletion")
    cli(addr, "create", "--namespace", name, "--retention", "72h")
    search_attribute(addr, "create", name, "HandMade", "--type", "Keyword")
    kept = TemporalNamespace(name=name, retention="72h", search_attributes={"Amount": "Int"})

    left, _ = await run(clients, declaring(local_env, kept))

    assert "search_attributes/HandMade" not in settings_of(left, name)
    assert search_attributes(addr, name) == {
        "HandMade": "INDEXED_VALUE_TYPE_KEYWORD",
        "Amount": "INDEXED_VALUE_TYPE_INT",
    }
    allowed = declaring(local_env, kept.model_copy(update={"allow_deletion": True}))

    dry, _ = await run(clients, allowed, dry_run=True)

    assert [(d.path, d.live, d.declared, d.repairable) for d in dry.drift] == [
        (f"/temporal_namespaces/{name}/search_attributes/HandMade", "Keyword", None, True)
    ]
    assert "HandMade" in search_attributes(addr, name)  # a dry run removes nothing

    removed, _ = await run(clients, allowed)

    assert settings_of(removed, name) == {
        "search_attributes/Amount": "unchanged",
        "search_attributes/HandMade": "removed",
    }
    assert search_attributes(addr, name) == {"Amount": "INDEXED_VALUE_TYPE_INT"}
    again, _ = await run(clients, allowed)
    assert by_name(again)[name].action == "unchanged" and drift_messages(again) == ()


# --- archival (#22.1, #22.2) ----------------------------------------------------------------
# The dev server (`temporal server start-dev`) hard-codes both archival kinds disabled with no
# provider (temporalio/cli internal/devserver/server.go), so it cannot archive: like every
# server whose cluster config does not enable a kind, it accepts RegisterNamespace and
# UpdateNamespace with archival fields and silently keeps the namespace disabled. These tests
# show what the step does with such a server; the transitions of a server that archives are
# tests/unit/activities/test_namespace_archival_plan.py.

ARCHIVE = "s3://acme-temporal-archive/payments"


def archiving(env: Any, ns: TemporalNamespace) -> Any:
    """`env` declaring a cluster that archives history to S3 (the values it would deploy),
    and `ns`; the dev server behind it does not."""
    cluster = ClusterArchival.model_validate(
        {
            "s3store": {"region": "eu-west-1"},
            "history": {"state": "enabled", "uri": "s3://acme-temporal-archive/default"},
        }
    )
    return env.model_copy(update={"archival": cluster, "temporal_namespaces": (ns,)})


async def test_a_server_that_ignores_archival_stops_the_step_instead_of_reporting_it_done(
    local_env, target_temporal, clients
):
    addr = target_temporal.address
    name = unique("archive")
    ns = TemporalNamespace(name=name, archival={"history": {"state": "enabled", "uri": ARCHIVE}})
    env = archiving(local_env, ns)

    with pytest.raises(ApplicationError) as caught:
        await run(clients, env)

    err = caught.value
    assert err.type == ErrorType.CONFIGURATION_MISMATCH and err.non_retryable
    assert f"namespace {name!r}: the server did not apply its archival" in err.message
    assert f"history (declared enabled {ARCHIVE}, the server keeps disabled)" in err.message
    # What the real server did: registered the namespace, archival left disabled.
    config = described(addr, name)["config"]
    assert config.get("historyArchivalState") == "ARCHIVAL_STATE_DISABLED"
    assert config.get("historyArchivalUri", "") == ""

    dry, _ = await run(clients, env, dry_run=True)

    assert [(d.path, d.live, d.declared, d.repairable) for d in dry.drift] == [
        (f"/temporal_namespaces/{name}/archival/history", "disabled", f"enabled {ARCHIVE}", True)
    ]
    assert settings_of(dry, name) == {"archival/history": "added"}
    calls = await spy(clients, env)

    with pytest.raises(ApplicationError) as again:  # remediate: the same answer, once more
        await run(clients, env)

    assert again.value.type == ErrorType.CONFIGURATION_MISMATCH
    assert calls.counts == {"register_namespace": 0, "update_namespace": 1}


async def test_declared_disabled_archival_is_in_sync_on_a_server_without_archival(
    local_env, target_temporal, clients
):
    name = unique("noarchive")
    ns = TemporalNamespace(
        name=name,
        archival={"history": {"state": "disabled"}, "visibility": {"state": "disabled"}},
    )
    env = declaring(local_env, ns)

    first, _ = await run(clients, env)

    assert by_name(first)[name].action == "created"
    assert settings_of(first, name) == {
        "archival/history": "unchanged",
        "archival/visibility": "unchanged",
    }
    calls = await spy(clients, env)

    second, _ = await run(clients, env)

    assert by_name(second)[name].action == "unchanged" and drift_messages(second) == ()
    assert calls.counts == {"register_namespace": 0, "update_namespace": 0}
