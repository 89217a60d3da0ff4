"""Load an environment the way helmfile layers values: base.yaml, then <env>.yaml deep-merged over it.

Every problem is reported with the file it came from, the key path and what is allowed,
all at once, before anything is started.

Environment files are input from people, so reading them is defensive: the name must be a
plain name (it becomes a file name and a workflow id); each file must be a readable UTF-8
regular file of at most `MAX_FILE_BYTES`; YAML is composed into its node graph first and
refused before any Python object is built when it expands (through aliases, `<<` merges
included) to more than `MAX_NODES` nodes, nests deeper than `MAX_DEPTH` or refers to itself,
so an alias bomb costs microseconds instead of the machine's memory. Duplicate keys are refused
with both line numbers instead of the last one silently winning. A `public: true` Web UI is
declared per environment: base.yaml may not make every environment public. After the model
validates, `extra_values` is checked against the chart values the model sets (see
declared_state/extra_values.py).

File paths in environment files (`chart.local_path`, a `file` CA bundle source,
`frontend.tls.ca_file`) are relative to the environments folder, as helmfile takes paths
relative to its file; the loader makes them absolute, so the activities never resolve a path
against where the code happens to be installed.
"""

from __future__ import annotations

import copy
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from declared_state.chart_files import ChartUnreadable, read_chart_metadata
from declared_state.extra_values import model_overrides, secret_like_keys
from declared_state.models import Environment, environment_name_problem
from declared_state.paths import environments_dir

BASE_FILE = "base.yaml"
# Limits on one environment file. Real ones are a few KiB with a few hundred nodes; the caps
# keep a hostile or mistaken file (an alias bomb, a log pasted in) from costing more than a
# fraction of a second, and everything loaded fits a workflow input (operations/environments).
MAX_FILE_BYTES = 256 * 1024
MAX_NODES = 100_000
"""Nodes after expanding aliases and `<<` merges (every scalar, list and map counts one)."""
MAX_DEPTH = 64
# Keys that hold file paths, relative to the environments folder in the files.
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("chart", "local_path"),
    ("ca_bundle", "source", "path"),
    ("frontend", "tls", "ca_file"),
    ("image_registry", "credentials_file"),
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
        file = display_path(self.file)
        return f"{file}: {self.key}: {self.message}" if self.key else f"{file}: {self.message}"


def display_path(path: str) -> str:
    """Relative to the working directory when that is shorter, as an operator typed it."""
    if not path:  # a problem of no particular file (relpath("") raises)
        return path
    relative = os.path.relpath(path)
    return relative if len(relative) < len(path) else path


class InvalidEnvironment(Exception):
    """An environment could not be loaded; `problems` says where and why."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def available_environments(directory: Path) -> list[str]:
    """Environment names in `directory` (every regular *.yaml file with a plain name, except
    base.yaml)."""
    return sorted(
        p.stem
        for p in directory.glob("*.yaml")
        if p.name != BASE_FILE and p.is_file() and environment_name_problem(p.stem) is None
    )


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; anything else (lists included) in `override` replaces `base`.

    The result shares nothing with either argument, and each value is copied once, not once
    per level of nesting."""
    merged: dict[str, Any] = {}
    for key, value in base.items():
        if key not in override:
            merged[key] = copy.deepcopy(value)
        elif isinstance(value, Mapping) and isinstance(override[key], Mapping):
            merged[key] = deep_merge(value, override[key])
        else:
            merged[key] = copy.deepcopy(override[key])
    for key, value in override.items():
        if key not in base:
            merged[key] = copy.deepcopy(value)
    return merged


class _Refused(Exception):
    """The node graph is refused before anything is constructed from it."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key, self.message = key, message


def _child_path(path: str, key_node: Node) -> str:
    key = key_node.value if isinstance(key_node, ScalarNode) else "?"
    return f"{path}.{key}" if path else str(key)


def _inspect(root: Node) -> dict[int, str]:
    """Check the composed node graph against MAX_NODES / MAX_DEPTH and for cycles, without
    expanding it (each node's expanded size is computed once, as aliases share nodes); the
    key path where each mapping was first met, for the duplicate-key messages."""
    sizes: dict[int, int] = {}
    paths: dict[int, str] = {}
    open_nodes: set[int] = set()

    def size(node: Node, path: str, depth: int) -> int:
        ident = id(node)
        if ident in sizes:
            return sizes[ident]
        if ident in open_nodes:
            raise _Refused(path, "refers to itself through an alias (a recursive structure)")
        if depth > MAX_DEPTH:
            shown = path if len(path) <= 80 else f"{path[:77]}..."
            raise _Refused(shown, f"nested more than {MAX_DEPTH} levels deep")
        open_nodes.add(ident)
        total = 1
        if isinstance(node, MappingNode):
            paths[ident] = path
            for key_node, value_node in node.value:
                child = _child_path(path, key_node)
                total += size(key_node, child, depth + 1) + size(value_node, child, depth + 1)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                total += size(item, f"{path}[{index}]", depth + 1)
        open_nodes.discard(ident)
        sizes[ident] = total
        if total > MAX_NODES:
            raise _Refused(
                path,
                f"expands to more than {MAX_NODES} values (through YAML aliases/anchors?); "
                "environment files are small: write the values out or trim them",
            )
        return total

    size(root, "", 0)
    return paths


class _EnvironmentFileLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (recorded with both lines) instead of letting
    the last one win silently."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.paths: dict[int, str] = {}
        self.duplicates: list[tuple[str, str]] = []

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
                continue  # `<<` merges may be overridden on purpose; complex keys: below
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first_line:
                where = self.paths.get(id(node), "")
                self.duplicates.append(
                    (
                        _child_path(where, key_node),
                        f"duplicate key (lines {first_line[key]} and {line}); "
                        "keep one: YAML would silently use the last",
                    )
                )
            else:
                first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, file: str) -> Any:
    """The document in `text`, or InvalidEnvironment naming the line or key path."""
    loader = _EnvironmentFileLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        loader.paths = _inspect(node)
        data = loader.construct_document(node)
    except _Refused as exc:
        raise InvalidEnvironment([Problem(file, exc.key, exc.message)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidEnvironment([Problem(file, where, f"not valid YAML: {exc}")]) from None
    except RecursionError:  # the composer recurses per nesting level, before _inspect runs
        raise InvalidEnvironment(
            [Problem(file, "", f"nested more than {MAX_DEPTH} levels deep")]
        ) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise InvalidEnvironment(
            [Problem(file, key, message) for key, message in loader.duplicates]
        )
    return data


def read_text(path: Path) -> str:
    """The file's text, or InvalidEnvironment saying in one line why it cannot be read."""
    file = str(path)
    try:
        mode = path.stat().st_mode  # through symlinks: the file they point to
        if stat.S_ISDIR(mode):
            return _unreadable(file, "is a directory, not an environment file")
        if not stat.S_ISREG(mode):
            return _unreadable(file, "is not a regular file (a device, socket or pipe?)")
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return _unreadable(file, "does not exist (or is a symlink to nothing)")
    except PermissionError:
        return _unreadable(file, "cannot be read: permission denied (check its owner and mode)")
    except OSError as exc:
        return _unreadable(file, f"cannot be read: {exc.strerror or exc}")
    if len(raw) > MAX_FILE_BYTES:
        return _unreadable(
            file, f"is larger than {MAX_FILE_BYTES // 1024} KiB; environment files are small"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _unreadable(
            file,
            f"is not UTF-8 text (a binary file?): byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}",
        )


def _unreadable(file: str, message: str) -> Any:
    raise InvalidEnvironment([Problem(file, "", message)])


def _read_yaml(path: Path) -> dict[str, Any]:
    data = parse_yaml(read_text(path), str(path))
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

    if "${" in _VAR.sub("", node):
        # A reference the pattern does not close would otherwise go on verbatim, e.g. as a
        # host name `${HOME` (#20.9).
        problems.append(
            Problem(
                file,
                path,
                "an unterminated or malformed variable reference '${': write ${NAME} or "
                "${NAME:-default} (NAME: letters, digits and '_', not starting with a digit)",
            )
        )
        return node
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


def _file_setting(loc: tuple[Any, ...], layers: list[tuple[str, dict[str, Any]]]) -> str:
    """A key belongs to the last layer that sets it; a missing key to the environment file."""
    for name, data in reversed(layers):
        if _has_key(data, loc):
            return name
    return layers[-1][0]


def _problems_from(exc: ValidationError, layers: list[tuple[str, dict[str, Any]]]) -> list[Problem]:
    problems = []
    for error in exc.errors():
        # Pydantic adds the union member's tag to the location; it is no key of the file.
        loc = tuple(p for p in error["loc"] if p not in _UNION_TAGS)
        file = _file_setting(loc, layers)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = (
                "unknown key (check the spelling; allowed keys are listed in docs/environments.md)"
            )
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


def _public_from_base(base: Mapping[str, Any], file: str) -> list[Problem]:
    """A public Web UI is a decision per environment: base.yaml must not make them all public."""
    ingress = base.get("web_ingress")
    if isinstance(ingress, Mapping) and ingress.get("public", False) is not False:
        return [
            Problem(
                file,
                "web_ingress.public",
                "may only be set in an environment's own file: a public Web UI is decided per "
                "environment, never inherited from base.yaml",
            )
        ]
    return []


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
    if problem := environment_name_problem(name):
        raise InvalidEnvironment([Problem(str(directory), "", problem)])
    if not os.path.isdir(directory):
        raise InvalidEnvironment(
            [
                Problem(
                    str(directory),
                    "",
                    "no environments folder here: run from the folder that holds environments/, "
                    "or pass --environments-dir (TEMPORAL_BOOTSTRAP_ENVIRONMENTS)",
                )
            ]
        )
    env_file = directory / f"{name}.yaml"
    base_file = directory / BASE_FILE
    # lexists: a file that is there but cannot be read is reported as such, not as unknown.
    if name == Path(BASE_FILE).stem or not os.path.lexists(env_file):
        known = ", ".join(available_environments(directory)) or "none"
        raise InvalidEnvironment(
            [Problem(str(env_file), "", f"unknown environment {name!r}; available: {known}")]
        )
    if not os.path.lexists(base_file):
        raise InvalidEnvironment(
            [
                Problem(
                    str(base_file),
                    "",
                    "does not exist: every environments folder has a base.yaml (it may be empty)",
                )
            ]
        )
    variables = os.environ if variables is None else variables
    layers: list[tuple[str, dict[str, Any]]] = []
    problems: list[Problem] = []
    for path in (base_file, env_file):
        try:
            data = _read_yaml(path)
        except InvalidEnvironment as exc:
            problems += exc.problems  # both files' problems at once
            continue
        layers.append((str(path), _interpolate(data, variables, str(path), "", problems)))
    if layers and layers[0][0] == str(base_file):
        problems += _public_from_base(layers[0][1], str(base_file))
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
    # Secret-looking keys are reported with the model's problems; overriding the model's
    # values can only be judged on a valid model.
    secrets = _extra_values_problems(secret_like_keys(merged.get("extra_values")), layers)
    try:
        env = Environment.model_validate({"name": name, **merged})
    except ValidationError as exc:
        raise InvalidEnvironment(secrets + _problems_from(exc, layers)) from None
    if problems := secrets + _extra_values_problems(model_overrides(env), layers):
        raise InvalidEnvironment(problems)
    return env


def _extra_values_problems(
    found: list[tuple[tuple[str | int, ...], str]], layers: list[tuple[str, dict[str, Any]]]
) -> list[Problem]:
    return [
        Problem(
            _file_setting(("extra_values", *path), layers),
            _key_path(("extra_values", *path)),
            message,
        )
        for path, message in found
    ]
