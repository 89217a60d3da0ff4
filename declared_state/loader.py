"""Load an environment the way helmfile layers values: base.yaml, then <env>.yaml deep-merged over it.

Every problem is reported with the file it came from, the key path and what is allowed,
all at once, before anything is started.

File paths in environment files (`chart.local_path`, a `file` CA bundle source,
`frontend.tls.ca_file`) are relative to the environments folder, as helmfile takes paths
relative to its file; the loader makes them absolute, so the activities never resolve a path
against where the code happens to be installed.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from declared_state.chart_files import ChartUnreadable, read_chart_metadata
from declared_state.models import Environment
from declared_state.paths import environments_dir

BASE_FILE = "base.yaml"
# Keys that hold file paths, relative to the environments folder in the files.
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("chart", "local_path"),
    ("ca_bundle", "source", "path"),
    ("frontend", "tls", "ca_file"),
)
# Tags of the discriminated unions in the models (`kind:` values).
_UNION_TAGS = frozenset({"aws_secrets_manager", "existing_kubernetes_secret", "file", "s3"})
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an environment file."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        file = _display_path(self.file)
        return f"{file}: {self.key}: {self.message}" if self.key else f"{file}: {self.message}"


def _display_path(path: str) -> str:
    """Relative to the working directory when that is shorter, as an operator typed it."""
    relative = os.path.relpath(path)
    return relative if len(relative) < len(path) else path


class InvalidEnvironment(Exception):
    """An environment could not be loaded; `problems` says where and why."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def available_environments(directory: Path) -> list[str]:
    """Environment names in `directory` (every *.yaml except base.yaml)."""
    return sorted(p.stem for p in directory.glob("*.yaml") if p.name != BASE_FILE)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; anything else (lists included) in `override` replaces `base`."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidEnvironment([Problem(str(path), where, f"not valid YAML: {exc}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidEnvironment(
            [Problem(str(path), "", f"must be a mapping of keys, found {type(data).__name__}")]
        )
    return data


def _interpolate(
    node: Any, env: Mapping[str, str], file: str, path: str, problems: list[Problem]
) -> Any:
    """Replace ${VAR} and ${VAR:-default} in string values (addresses of the local stack)."""
    if isinstance(node, dict):
        return {
            k: _interpolate(v, env, file, f"{path}.{k}" if path else str(k), problems)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_interpolate(v, env, file, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(
            Problem(file, path, f"environment variable {name} is not set (used as ${{{name}}})")
        )
        return match.group(0)

    return _VAR.sub(substitute, node)


def _has_key(data: Any, loc: tuple[Any, ...]) -> bool:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problems_from(exc: ValidationError, layers: list[tuple[str, dict[str, Any]]]) -> list[Problem]:
    problems = []
    for error in exc.errors():
        # Pydantic adds the union member's tag to the location; it is no key of the file.
        loc = tuple(p for p in error["loc"] if p not in _UNION_TAGS)
        # A key belongs to the last layer that sets it; a missing key to the environment file.
        file = layers[-1][0]
        for name, data in reversed(layers):
            if _has_key(data, loc):
                file = name
                break
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; allowed keys are listed in the README)"
        elif error["type"] == "missing":
            message = "required key is missing"
        # Model validators report "field: message"; fold the field into the key path.
        key = _key_path(loc)
        head, sep, tail = message.partition(": ")
        if sep and re.fullmatch(r"[a-z_]+", head):
            key, message = (f"{key}.{head}" if key else head), tail
        problems.append(Problem(file, key, message))
    return problems


def _absolute_paths(merged: dict[str, Any], directory: Path) -> None:
    """Make the file paths of `PATH_KEYS` absolute, relative to `directory`."""
    for keys in PATH_KEYS:
        node: Any = merged
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(keys[-1]), str) and node[keys[-1]]:
            node[keys[-1]] = str((directory / node[keys[-1]]).resolve())


def _server_version_from_local_chart(
    merged: dict[str, Any], layers: list[tuple[str, dict[str, Any]]]
) -> list[Problem]:
    """A local chart's Chart.yaml says which server it deploys: fill `chart.server_version`
    from its appVersion (or check the declared one against it). A path that holds no
    readable chart is left to the helm wrapper, which says so before anything starts."""
    chart = merged.get("chart")
    if not isinstance(chart, dict) or not isinstance(chart.get("local_path"), str):
        return []
    try:
        meta = read_chart_metadata(Path(chart["local_path"]))
    except ChartUnreadable:
        return []
    if not meta.app_version:
        return []
    declared = chart.get("server_version")
    if declared is None:
        chart["server_version"] = meta.app_version
        return []
    if str(declared) == meta.app_version:
        return []
    file = next(
        (name for name, data in reversed(layers) if _has_key(data, ("chart", "server_version"))),
        layers[-1][0],
    )
    return [
        Problem(
            file,
            "chart.server_version",
            f"{declared} contradicts the chart at {chart['local_path']}, whose Chart.yaml "
            f"appVersion is {meta.app_version}",
        )
    ]


def load_environment(
    name: str,
    directory: Path | None = None,
    variables: Mapping[str, str] | None = None,
) -> Environment:
    """Load, layer, interpolate and validate environment `name` from `directory` (default:
    declared_state.paths.environments_dir()); raise InvalidEnvironment."""
    directory = (directory or environments_dir()).absolute()
    env_file = directory / f"{name}.yaml"
    if name == Path(BASE_FILE).stem or not env_file.is_file():
        known = ", ".join(available_environments(directory)) or "none"
        raise InvalidEnvironment(
            [Problem(str(env_file), "", f"unknown environment {name!r}; available: {known}")]
        )
    variables = os.environ if variables is None else variables
    layers: list[tuple[str, dict[str, Any]]] = []
    problems: list[Problem] = []
    for path in (directory / BASE_FILE, env_file):
        if path.is_file():
            data = _interpolate(_read_yaml(path), variables, str(path), "", problems)
            layers.append((str(path), data))
    if problems:
        raise InvalidEnvironment(problems)
    merged: dict[str, Any] = {}
    for _, data in layers:
        merged = deep_merge(merged, data)
    if "name" in merged:
        raise InvalidEnvironment(
            [Problem(layers[-1][0], "name", "reserved: the environment's name is its file name")]
        )
    _absolute_paths(merged, directory)
    chart_problems = _server_version_from_local_chart(merged, layers)
    if chart_problems:
        raise InvalidEnvironment(chart_problems)
    kube = merged.get("kubernetes")
    if isinstance(kube, dict) and isinstance(kube.get("namespace"), str):
        kube["namespace"] = kube["namespace"].replace("{environment}", name)
    try:
        return Environment.model_validate({"name": name, **merged})
    except ValidationError as exc:
        raise InvalidEnvironment(_problems_from(exc, layers)) from None
