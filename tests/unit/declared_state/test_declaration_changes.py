"""What `provision` shows when a running run has another declaration (issue #10, item 3):
the key paths that differ, with old -> new values except for secret-like keys."""

from __future__ import annotations

from datetime import timedelta

from contracts.bootstrap import declaration_changes
from declared_state.loader import load_environment
from declared_state.models import TemporalNamespace
from operations import render


def test_paths_values_and_hidden_secret_like_keys():
    old = load_environment("staging")
    source = old.database.password_source.model_copy(update={"secret_id": "temporal/other/db"})
    new = old.model_copy(
        update={
            "rds": old.rds.model_copy(update={"port": 3307}),
            "database": old.database.model_copy(update={"password_source": source}),
            "temporal_namespaces": (
                old.temporal_namespaces[0].model_copy(update={"retention": timedelta(hours=48)}),
                *old.temporal_namespaces[1:],
            ),
        }
    )
    assert declaration_changes(old, new) == (
        "database.password_source.secret_id",
        "rds.port",
        "temporal_namespaces[0].retention",
    )
    lines = render.declaration_lines("provision-staging", old, new)
    assert lines[1:] == [
        "  database.password_source.secret_id (value not shown)",
        "  rds.port: 3306 -> 3307",
        "  temporal_namespaces[0].retention: 168h0m0s -> 48h0m0s",
    ]
    assert "temporal/other/db" not in "\n".join(lines)
    assert declaration_changes(old, old) == ()


def test_a_list_of_another_length_differs_as_a_whole():
    old = load_environment("staging")
    new = old.model_copy(
        update={
            "temporal_namespaces": (*old.temporal_namespaces, TemporalNamespace(name="extra-ns"))
        }
    )
    assert declaration_changes(old, new) == ("temporal_namespaces",)
