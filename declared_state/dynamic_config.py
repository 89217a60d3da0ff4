"""`dynamic_config:` of an environment: the server's dynamic config file, declared and checked.

The format is the server's own (common/dynamicconfig: file_based_client.go up to 1.29,
yaml_loader.go from 1.30): a map from a key to a list of values, each with the constraints it
applies under.

    dynamic_config:
      frontend.namespaceRPS:
        - value: 2400
        - value: 400
          constraints: {namespace: batch-jobs}
      limit.maxIDLength:
        - value: 255

The chart writes `server.dynamicConfig` verbatim into the ConfigMap `<release>-dynamic-config`
(key `dynamic_config.yaml`), which every server pod mounts and re-reads every 10 s (the chart's
`dynamicConfigClient.pollInterval`): a change applies without a restart, and a hand edit of
that ConfigMap is what the live drift check reports.

Why the shape is checked here: the server reads the file with a few hard rules, and breaking
one is an *error* that throws the whole file away (at start-up the server does not start; later
it keeps the old values and logs "loading dynamic config failed"). So every rule the server
enforces is enforced here, at `validate`, with the file and key named:
- a key maps to a list of `{value, constraints}` (a YAML map under a key, e.g. `frontend:` with
  `namespaceRPS:` under it, is refused: the server's keys are dotted names);
- constraints are the server's (`namespace`, `namespaceId`, `taskQueueName`, `taskType`,
  `historyTaskType`, `shardId`, `destination`; `chasmTaskType` from server 1.31), with the
  types it requires; their names are matched case-insensitively as the server does and
  written in one spelling;
- keys are case-insensitive to the server: two spellings of one key would leave which one wins
  to map order, so they are refused, and so are two values with the same constraints.

Not checked: whether the server knows a key or a value's type suits it (the server only warns,
"unregistered key", and keeps the value), and which constraints a key honours (a warning
too). Values are JSON data (strings, numbers, booleans, lists, maps), never null: a YAML date
or a non-finite number would come back from the workflow history as something else.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, JsonValue, field_validator

from base.model import FrozenModel

# The server's keys: dotted names (`frontend.namespaceRPS`, `limit.maxIDLength`).
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
# Constraint names as written here, by the lowercase name the server matches.
CONSTRAINTS: dict[str, str] = {
    "namespace": "namespace",
    "namespaceid": "namespaceId",
    "taskqueuename": "taskQueueName",
    "tasktype": "taskType",
    "historytasktype": "historyTaskType",
    "shardid": "shardId",
    "destination": "destination",
    "chasmtasktype": "chasmTaskType",
}
# chasmTaskType is unknown to the server (an error) before 1.31.0.
CONSTRAINT_FROM_SERVER: dict[str, tuple[int, int, int]] = {"chasmTaskType": (1, 31, 0)}
# Task queue types the server reads by name (enumspb.TaskQueueTypeFromString) or number.
TASK_QUEUE_TYPES: dict[str, int] = {"Workflow": 1, "Activity": 2, "Nexus": 3}
_ALLOWED = ", ".join(CONSTRAINTS.values())


def _constraint(name: str, value: Any) -> Any:
    """One constraint's value, as the server requires it, or ValueError."""
    if isinstance(value, bool):  # YAML `true` is an int to Python; never a valid constraint
        raise ValueError(f"{name}: {value!r} is not allowed here")
    if name == "shardId":
        if not isinstance(value, int) or value < 1:
            # 0 is the server's "no constraint": the value would apply to every shard
            raise ValueError(f"{name}: {value!r} is not a shard id (a whole number from 1)")
        return value
    if name == "taskType":
        if value in TASK_QUEUE_TYPES or value in TASK_QUEUE_TYPES.values():
            return value
        raise ValueError(
            f"{name}: {value!r} is not a task queue type: one of "
            f"{', '.join(TASK_QUEUE_TYPES)} (or {', '.join(map(str, TASK_QUEUE_TYPES.values()))})"
        )
    if name == "historyTaskType":
        if (isinstance(value, str) and value.strip()) or (isinstance(value, int) and value > 0):
            return value
        raise ValueError(f"{name}: {value!r} is not a history task type (a name or a number)")
    if not isinstance(value, str) or not value:
        # an empty string is the server's "no constraint": it would apply everywhere
        raise ValueError(f"{name}: {value!r} is not allowed; give a non-empty string")
    return value


def _json_problem(value: Any, where: str = "") -> str | None:
    """Why `value` is no JSON data the server can take (`where` names a part inside it)."""
    at = f" (at {where})" if where else ""
    if value is None:
        return f"null is no value the server can use{at}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number{at}"
    if isinstance(value, list):
        return next(
            (p for i, item in enumerate(value) if (p := _json_problem(item, f"{where}[{i}]"))),
            None,
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"map key {key!r} is not a string{at}"
            if problem := _json_problem(item, f"{where}.{key}" if where else key):
                return problem
        return None
    if isinstance(value, str | int | float):  # bool is an int
        return None
    return (
        f"{value!r} ({type(value).__name__}) is not JSON data{at}: a string, number, boolean, "
        "list or map (write a date in quotes)"
    )


class ConstrainedValue(FrozenModel):
    """One value of a dynamic config key and the constraints it applies under (none: every
    namespace, task queue, shard...)."""

    value: JsonValue = Field(description="JSON data: a string, number, boolean, list or map.")
    constraints: dict[str, str | int] = Field(default_factory=dict)

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        if problem := _json_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("constraints", mode="before")
    @classmethod
    def _constraints(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"must be a map of constraint: value (one of {_ALLOWED})")
        found: dict[str, Any] = {}
        for written, item in value.items():
            name = CONSTRAINTS.get(str(written).lower())
            if name is None:
                raise ValueError(
                    f"{written!r} is not a constraint the server knows; one of {_ALLOWED}"
                )
            if name in found:
                raise ValueError(f"{name} is given twice (the server ignores the case of names)")
            found[name] = _constraint(name, item)
        return found


def _values(value: Any) -> Any:
    if isinstance(value, dict):
        raise ValueError(
            "must be a list of {value, constraints}, e.g. `- value: 100`; a map is no key of the "
            "server's dynamic config (keys are dotted names such as frontend.namespaceRPS)"
        )
    return value


def check_dynamic_config(
    value: dict[str, tuple[ConstrainedValue, ...]],
) -> dict[str, tuple[ConstrainedValue, ...]]:
    """The rules across keys and values (see the module docstring)."""
    seen: dict[str, str] = {}
    for key, values in value.items():
        if not _KEY.match(key):
            raise ValueError(
                f"{key!r} is not a dynamic config key: a dotted name such as "
                "frontend.namespaceRPS or limit.maxIDLength (letters, digits and '_')"
            )
        if key.lower() in seen:
            raise ValueError(
                f"{key!r} and {seen[key.lower()]!r} are one key to the server (it ignores case); "
                "declare it once"
            )
        seen[key.lower()] = key
        if not values:
            raise ValueError(f"{key}: an empty list; give at least one value or remove the key")
        constraints: list[dict[str, str | int]] = []
        for index, item in enumerate(values):
            if item.constraints in constraints:
                first = constraints.index(item.constraints)
                raise ValueError(
                    f"{key}[{index}]: the same constraints as {key}[{first}] "
                    f"({item.constraints or 'none'}); the server would use only one of them"
                )
            constraints.append(item.constraints)
    return value


def constraint_problems(
    value: dict[str, tuple[ConstrainedValue, ...]], server: tuple[int, ...]
) -> list[str]:
    """Constraints the server version `server` does not know (an error there)."""
    found = []
    for key, values in value.items():
        for index, item in enumerate(values):
            for name in item.constraints:
                since = CONSTRAINT_FROM_SERVER.get(name)
                if since and server < since:
                    found.append(
                        f"{key}[{index}].constraints.{name}: needs Temporal server "
                        f"{'.'.join(map(str, since))} or later (the server would refuse the file)"
                    )
    return found


def chart_values(value: dict[str, tuple[ConstrainedValue, ...]]) -> dict[str, Any]:
    """`server.dynamicConfig` as the chart writes it into the ConfigMap: the server's format."""
    return {
        key: [{"value": item.value, "constraints": dict(item.constraints)} for item in values]
        for key, values in value.items()
    }


DynamicConfig = Annotated[
    dict[str, Annotated[tuple[ConstrainedValue, ...], BeforeValidator(_values)]],
    AfterValidator(check_dynamic_config),
]
"""`dynamic_config:`: key -> the values it takes, each under its constraints."""
