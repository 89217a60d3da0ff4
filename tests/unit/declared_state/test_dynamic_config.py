"""`dynamic_config:` in environment files (#22.3): the server's own format, every rule the
server's loader enforces refused at load time with the file and key named, and the chart
values it becomes (what the chart writes into the dynamic config ConfigMap)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from declared_state.chart_values import build_chart_values
from declared_state.loader import InvalidEnvironment, load_environment
from tests.helpers import copy_environments


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    return copy_environments(tmp_path)


def append(env_dir: Path, text: str, name: str = "staging") -> Path:
    path = env_dir / f"{name}.yaml"
    path.write_text(path.read_text() + "\n" + text)
    return path


def problems(env_dir: Path, name: str = "staging") -> list[str]:
    with pytest.raises(InvalidEnvironment) as info:
        load_environment(name, env_dir)
    return [str(p) for p in info.value.problems]


DECLARED = """
dynamic_config:
  frontend.namespaceRPS:
    - value: 2400
    - value: 400
      constraints: {namespace: batch-jobs}
  matching.numTaskqueueReadPartitions:
    - value: 8
      constraints: {NAMESPACE: my-ns, taskqueuename: busy, taskType: Activity}
  history.defaultActivityRetryPolicy:
    - value: {InitialIntervalInSeconds: 1, MaximumAttempts: 0, NonRetryableErrorTypes: []}
  system.enableNexus:
    - value: false
"""


def test_dynamic_config_is_the_servers_format_in_both_layouts(env_dir):
    append(env_dir, DECLARED)
    expected = {
        "frontend.namespaceRPS": [
            {"value": 2400, "constraints": {}},
            {"value": 400, "constraints": {"namespace": "batch-jobs"}},
        ],
        # constraint names are matched case-insensitively (as the server does), written once
        "matching.numTaskqueueReadPartitions": [
            {
                "value": 8,
                "constraints": {
                    "namespace": "my-ns",
                    "taskQueueName": "busy",
                    "taskType": "Activity",
                },
            }
        ],
        "history.defaultActivityRetryPolicy": [
            {
                "value": {
                    "InitialIntervalInSeconds": 1,
                    "MaximumAttempts": 0,
                    "NonRetryableErrorTypes": [],
                },
                "constraints": {},
            }
        ],
        "system.enableNexus": [{"value": False, "constraints": {}}],
    }
    env = load_environment("staging", env_dir)
    assert build_chart_values(env)["server"]["dynamicConfig"] == expected
    datastores = env.model_copy(update={"chart": env.chart.model_copy(update={"version": "1.6.0"})})
    assert build_chart_values(datastores)["server"]["dynamicConfig"] == expected
    # through the workflow input and back (JSON), nothing changes type
    again = type(env).model_validate_json(env.model_dump_json())
    assert build_chart_values(again)["server"]["dynamicConfig"] == expected


def test_no_dynamic_config_leaves_the_charts_default(env_dir):
    assert "dynamicConfig" not in build_chart_values(load_environment("staging", env_dir))["server"]


def test_base_and_environment_merge_key_by_key(env_dir):
    append(env_dir, "dynamic_config:\n  limit.maxIDLength: [{value: 255}]\n", "base")
    append(env_dir, "dynamic_config:\n  frontend.namespaceRPS: [{value: 10}]\n")
    env = load_environment("staging", env_dir)
    assert set(env.dynamic_config) == {"limit.maxIDLength", "frontend.namespaceRPS"}


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        (
            "frontend:\n    namespaceRPS: [{value: 1}]",
            "dynamic_config.frontend",
            "must be a list of {value, constraints}",
        ),
        ("frontend.namespaceRPS: 100", "dynamic_config.frontend.namespaceRPS", "valid tuple"),
        ("namespaceRPS: [{value: 1}]", "dynamic_config", "'namespaceRPS' is not a dynamic config"),
        ("limit.x: [{valu: 1}]", "dynamic_config.limit.x[0].valu", "unknown key"),
        ("limit.x: [{value: null}]", "dynamic_config.limit.x[0].value", "null is no value"),
        ("limit.x: [{value: 2024-01-01}]", "dynamic_config.limit.x[0].value", "in quotes"),
        ("limit.x: [{value: .nan}]", "dynamic_config.limit.x[0].value", "not a finite number"),
        ("limit.x: [{value: [1, null]}]", "dynamic_config.limit.x[0].value", "(at [1])"),
        ("limit.x: []", "dynamic_config", "limit.x: an empty list"),
        (
            "limit.x: [{value: 1, constraints: {queue: a}}]",
            "dynamic_config.limit.x[0].constraints",
            "'queue' is not a constraint the server knows; one of namespace, namespaceId, "
            "taskQueueName, taskType, historyTaskType, shardId, destination, chasmTaskType",
        ),
        (
            "limit.x: [{value: 1, constraints: {namespace: ''}}]",
            "dynamic_config.limit.x[0].constraints.namespace",
            "'' is not allowed; give a non-empty string",
        ),
        (
            "limit.x: [{value: 1, constraints: {namespace: 5}}]",
            "dynamic_config.limit.x[0].constraints.namespace",
            "5 is not allowed",
        ),
        (
            "limit.x: [{value: 1, constraints: {shardId: 0}}]",
            "dynamic_config.limit.x[0].constraints",
            "shardId: 0 is not a shard id (a whole number from 1)",
        ),
        (
            "limit.x: [{value: 1, constraints: {shardId: '3'}}]",
            "dynamic_config.limit.x[0].constraints",
            "shardId: '3' is not a shard id",
        ),
        (
            "limit.x: [{value: 1, constraints: {taskType: workflow}}]",
            "dynamic_config.limit.x[0].constraints",
            "one of Workflow, Activity, Nexus (or 1, 2, 3)",
        ),
        (
            "limit.x: [{value: 1, constraints: {namespace: a, Namespace: b}}]",
            "dynamic_config.limit.x[0].constraints",
            "namespace is given twice",
        ),
        (
            "limit.x: [{value: 1}, {value: 2, constraints: {}}]",
            "dynamic_config",
            "limit.x[1]: the same constraints as limit.x[0]",
        ),
        (
            "limit.x: [{value: 1}]\n  Limit.X: [{value: 2}]",
            "dynamic_config",
            "'Limit.X' and 'limit.x' are one key to the server",
        ),
        (
            "limit.x: [{value: 1, constraints: {chasmTaskType: a}}]",
            "dynamic_config",
            "limit.x[0].constraints.chasmTaskType: needs Temporal server 1.31.0 or later",
        ),
    ],
)
def test_what_the_server_would_refuse_is_named_at_load(env_dir, text, key, says):
    path = append(env_dir, "dynamic_config:\n  " + text + "\n")
    found = problems(env_dir)
    assert any(p.startswith(f"{path}: {key}: ") and says in p for p in found), found


def test_chasm_task_type_is_known_from_server_1_31(env_dir):
    append(env_dir, "dynamic_config:\n  limit.x: [{value: 1, constraints: {chasmTaskType: a}}]\n")
    path = env_dir / "staging.yaml"
    data = yaml.safe_load(path.read_text())
    data["chart"] = {"version": "1.6.0"}  # server 1.31.2
    path.write_text(yaml.safe_dump(data))
    env = load_environment("staging", env_dir)
    assert env.dynamic_config["limit.x"][0].constraints == {"chasmTaskType": "a"}


@pytest.mark.parametrize(
    "extra",
    [
        {"server": {"dynamicConfig": {"limit.maxIDLength": [{"value": 100}]}}},
        {"server": {"dynamicConfig": {}}},
    ],
)
def test_extra_values_may_not_carry_dynamic_config(env_dir, extra):
    """Not even where the model declares none: a key there would escape the checks and the
    drift check's idea of what is declared."""
    path = env_dir / "staging.yaml"
    data = yaml.safe_load(path.read_text())
    data["extra_values"] = extra
    path.write_text(yaml.safe_dump(data))
    (found,) = problems(env_dir)
    assert f"{path}: extra_values.server.dynamicConfig" in found
    assert "declare it in dynamic_config" in found
