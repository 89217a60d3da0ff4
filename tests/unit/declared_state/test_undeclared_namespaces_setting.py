"""`undeclared_namespaces: report | protect` (#22.1): the default keeps what environments
and histories had (protect), and a bad value is one line naming the key and what is allowed,
exit 3 at `validate` before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import starter
from declared_state.loader import InvalidEnvironment, load_environment
from declared_state.models import Environment, UndeclaredNamespaces
from tests.helpers import copy_environments


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    return copy_environments(tmp_path)


def setting(env_dir: Path, value: object) -> None:
    path = env_dir / "staging.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    data["undeclared_namespaces"] = value
    path.write_text(yaml.safe_dump(data))


def test_protect_is_the_default_and_report_loads(env_dir):
    assert load_environment("staging", env_dir).undeclared_namespaces == "protect"
    setting(env_dir, "report")
    assert load_environment("staging", env_dir).undeclared_namespaces == "report"


def test_an_environment_recorded_before_the_setting_reads_as_protect():
    """Workflow inputs recorded before #22.1 have no such key: they keep today's behaviour."""
    recorded = load_environment("staging").model_dump(mode="json")
    del recorded["undeclared_namespaces"]
    assert Environment.model_validate(recorded).undeclared_namespaces == (
        UndeclaredNamespaces.PROTECT
    )


@pytest.mark.parametrize("value", ["delete", "Report", True])
def test_a_bad_value_names_the_key_and_the_allowed_values(env_dir, value, capsys):
    setting(env_dir, value)
    with pytest.raises(InvalidEnvironment) as info:
        load_environment("staging", env_dir)
    (problem,) = info.value.problems
    assert str(problem) == (
        f"{env_dir / 'staging.yaml'}: undeclared_namespaces: Input should be 'protect' or 'report'"
    )
    assert starter.main(["validate", "staging", "--environments-dir", str(env_dir)]) == 3
    err = capsys.readouterr().err
    assert "undeclared_namespaces: Input should be 'protect' or 'report'" in err
    assert "Traceback" not in err
