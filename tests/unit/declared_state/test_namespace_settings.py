"""`temporal_namespaces[*]` search attributes, owner email and data (#22.1): what loads, and
the one-line problem (file, key, what is allowed) for what the server would refuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from declared_state.loader import InvalidEnvironment, load_environment
from declared_state.models import SearchAttributeType
from tests.helpers import copy_environments


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    return copy_environments(tmp_path)


def declare(env_dir: Path, **namespace: Any) -> None:
    path = env_dir / "staging.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    data["temporal_namespaces"] = [{"name": "my-ns", **namespace}]
    path.write_text(yaml.safe_dump(data))


def problem(env_dir: Path) -> str:
    with pytest.raises(InvalidEnvironment) as info:
        load_environment("staging", env_dir)
    (found,) = info.value.problems
    return str(found)


def test_search_attributes_owner_email_and_data_load(env_dir):
    declare(
        env_dir,
        search_attributes={"CustomerId": "Keyword", "Amount": "Int", "Tags": "KeywordList"},
        owner_email="team-payments@example.com",
        data={"team": "payments", "cost-center": "42"},
    )
    (ns,) = load_environment("staging", env_dir).temporal_namespaces
    assert ns.search_attributes == {
        "CustomerId": SearchAttributeType.KEYWORD,
        "Amount": SearchAttributeType.INT,
        "Tags": SearchAttributeType.KEYWORD_LIST,
    }
    assert ns.owner_email == "team-payments@example.com"
    assert ns.data == {"team": "payments", "cost-center": "42"}


def test_nothing_declared_means_nothing_managed(env_dir):
    declare(env_dir)
    (ns,) = load_environment("staging", env_dir).temporal_namespaces
    assert (ns.search_attributes, ns.owner_email, ns.data, ns.allow_deletion) == (
        {},
        None,
        {},
        False,
    )


def test_every_type_the_cli_knows_is_accepted(env_dir):
    types = ["Text", "Keyword", "Int", "Double", "Bool", "Datetime", "KeywordList"]
    declare(env_dir, search_attributes={f"A{t}": t for t in types})
    (ns,) = load_environment("staging", env_dir).temporal_namespaces
    assert {n: t.value for n, t in ns.search_attributes.items()} == {f"A{t}": t for t in types}


def test_an_unknown_type_names_the_file_the_attribute_and_the_allowed_types(env_dir):
    declare(env_dir, search_attributes={"CustomerId": "String"})
    found = problem(env_dir)
    assert "staging.yaml: temporal_namespaces[0].search_attributes.CustomerId:" in found
    assert "'String' is not a search attribute type" in found
    assert "allowed: Text, Keyword, Int, Double, Bool, Datetime, KeywordList" in found


@pytest.mark.parametrize(
    "name", ["WorkflowId", "ExecutionStatus", "BatcherUser", "Memo", "TemporalX"]
)
def test_a_name_the_server_reserves_is_refused(env_dir, name):
    """The server answers "Search attribute <name> is reserved by system" (checked with the
    dev server's AddSearchAttributes for WorkflowId, BatcherUser, Memo, Temporalx)."""
    declare(env_dir, search_attributes={name: "Keyword"})
    found = problem(env_dir)
    assert "staging.yaml: temporal_namespaces[0].search_attributes:" in found
    assert f"'{name}' is reserved by the server" in found


def test_names_the_server_accepts_are_accepted(env_dir):
    # The server only refuses reserved names; "temporal" in lower case is not its prefix.
    declare(env_dir, search_attributes={"ScheduleId": "Keyword", "temporalish": "Int"})
    (ns,) = load_environment("staging", env_dir).temporal_namespaces
    assert set(ns.search_attributes) == {"ScheduleId", "temporalish"}


def test_an_empty_name_is_refused(env_dir):
    declare(env_dir, search_attributes={"": "Keyword"})
    assert "is not a search attribute name" in problem(env_dir)


def test_more_attributes_of_a_type_than_sql_visibility_holds(env_dir):
    declare(env_dir, search_attributes={f"Amount{i}": "Int" for i in range(4)})
    found = problem(env_dir)
    assert "temporal_namespaces[0].search_attributes:" in found
    assert "4 Int attributes declared" in found and "at most 3 Int" in found


def test_ten_keywords_fit(env_dir):
    declare(env_dir, search_attributes={f"Key{i}": "Keyword" for i in range(10)})
    (ns,) = load_environment("staging", env_dir).temporal_namespaces
    assert len(ns.search_attributes) == 10


def test_owner_email_must_be_an_address(env_dir):
    declare(env_dir, owner_email="payments team")
    found = problem(env_dir)
    assert "staging.yaml: temporal_namespaces[0].owner_email:" in found
    assert "'payments team' is not an email address" in found


def test_data_values_are_strings(env_dir):
    declare(env_dir, data={"cost-center": 42})
    found = problem(env_dir)
    assert "staging.yaml: temporal_namespaces[0].data.cost-center:" in found
    assert "valid string" in found


def test_the_tools_own_data_keys_cannot_be_declared(env_dir):
    declare(env_dir, data={"temporal-bootstrap.registered-by": "me"})
    found = problem(env_dir)
    assert "temporal_namespaces[0].data:" in found
    assert "written by temporal-bootstrap itself" in found


def test_old_inputs_without_the_new_fields_still_load():
    """Workflow histories recorded before #22 carry namespaces without the new keys."""
    env = load_environment("staging")
    recorded = env.model_dump(mode="json", by_alias=True)
    for ns in recorded["temporal_namespaces"]:
        for key in ("search_attributes", "owner_email", "data", "allow_deletion"):
            ns.pop(key)
    again = type(env).model_validate(recorded)
    assert again.temporal_namespaces == env.temporal_namespaces
