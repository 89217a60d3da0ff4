"""Import a helmfile project's Temporal release as environment files, with a report and an
optional render comparison. Nothing here prints (operations/render.py shows the plan).

`plan_import` reads the project (operations/helmfile/project.py), reads the chart's own
defaults with `helm show values` (through the project's chart handling, so the mirror
setting `TEMPORAL_BOOTSTRAP_CHART_MIRROR` and local charts work as for `validate`), maps
the values (operations/helmfile/mapping.py) and lays the environments out as files:
`<env>.yaml` per environment and `base.yaml` with what every imported environment shares.
Then it loads the planned files exactly as `validate` would (in a temporary folder, through
the environment loader) and reports anything that does not load. `extra_values` that the
loader would refuse (a key the model owns, a secret-looking key) are taken out first and
reported; they are never written.

`compare` (`--compare`): the original values are rendered with the release's chart, as
helmfile would pass them (one `--values` file per layer), and the imported environment with
the same chart through the project's own render. Every differing field is then checked
against the report: the original values with every report item's change applied are
rendered again, and a difference is explained only if that rendering agrees with the
imported one there. Per item, the same is done with its change alone, to name the item.
What the model adds to every rendering on purpose (the Pod Security restricted profile, the
1.x frontend's gRPC readiness, the DB passwords as files: declared_state/chart_values.py
`with_model_additions`) is applied to that rendering too, and
the differences it alone makes are shown apart: "added by temporal-bootstrap", not a defect
of the helmfile values and not unexplained.

`write_plan` writes the files, refusing to overwrite any that exists unless `force`.

Failure modes: a chart that cannot be read (no network, no mirror) stops the import before
anything is mapped (`ImportFailed`); an original that helm cannot render makes the comparison
report helm's error instead of differences; `requiredEnv` variables not set here are kept as
`${X}` on both sides of the comparison (the written files keep `${X}` either way).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from declared_state import versions
from declared_state.chart_files import ChartUnreadable, read_chart_metadata
from declared_state.chart_values import with_model_additions
from declared_state.extra_values import model_overrides, secret_like_keys
from declared_state.loader import (
    BASE_FILE,
    InvalidEnvironment,
    display_path,
    load_environment,
)
from declared_state.models import ChartSpec, Environment, environment_name_problem
from operations.helmfile.mapping import (
    Imported,
    apply_changes,
    get,
    leaves,
    map_release,
    set_path,
)
from operations.helmfile.project import HelmfileRelease, HelmfileUnreadable, read_release
from operations.helmfile.report import REMOVE, ReportItem, Severity, ValuesChange
from operations.manifest_diff import Difference, differences

FILE_ORDER = (
    "chart",
    "kubernetes",
    "rds",
    "database",
    "ca_bundle",
    "services",
    "web_ingress",
    "temporal_namespaces",
    "images",
    "dynamic_config",
    "archival",
    "extra_values",
)
PLACEHOLDER = "unknown"
"""Stands for rds.instance_id / region in the check of a plan that lacks them (never written)."""


class ImportFailed(RuntimeError):
    """The import could not run (the chart could not be read); the message says why."""


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    text: str
    exists: bool


@dataclass(frozen=True)
class Comparison:
    """The render comparison of one environment."""

    environment: str
    chart: str
    fields: int = 0
    explained: tuple[tuple[Difference, tuple[int, ...]], ...] = ()
    """Each explained difference with the numbers of the report items that explain it."""
    unexplained: tuple[Difference, ...] = ()
    error: str | None = None
    added: tuple[Difference, ...] = ()
    """Differences the model makes on purpose in every rendering (the Pod Security
    restricted profile, #23), whatever the helmfile values said: no report item's doing."""


@dataclass(frozen=True)
class EnvironmentImport:
    name: str
    release: str
    chart: str
    items: tuple[ReportItem, ...]
    blocked: bool
    invalid: tuple[str, ...] = ()
    """Why the planned files do not load (an import bug or a reported gap)."""


@dataclass(frozen=True)
class ImportPlan:
    helmfile: Path
    directory: Path
    environments: tuple[EnvironmentImport, ...]
    files: tuple[PlannedFile, ...]
    comparisons: tuple[Comparison, ...] = field(default_factory=tuple)
    mapped: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """What each environment was mapped from (for `compare`); not shown."""

    @property
    def blocked(self) -> bool:
        return any(e.blocked for e in self.environments)

    @property
    def problems(self) -> int:
        """Everything that makes the plan exit 2."""
        found = sum(1 for e in self.environments for i in e.items if i.severity == Severity.PROBLEM)
        found += sum(len(e.invalid) for e in self.environments)
        found += sum(len(c.unexplained) + (1 if c.error else 0) for c in self.comparisons)
        return found


@dataclass
class _Mapped:
    release: HelmfileRelease
    chart: ChartSpec
    imported: Imported
    items: list[ReportItem]
    data: dict[str, Any]
    environment: Environment | None = None
    invalid: list[str] = field(default_factory=list)


def _chart_spec(release: HelmfileRelease) -> ChartSpec:
    """The release's chart (not validated: a broken release is reported, not refused here)."""
    shown = display_path(str(release.helmfile))
    if not release.version:
        raise HelmfileUnreadable(
            f"{shown}: release {release.name}: no version: helm would install whatever is "
            "latest; pin the version the cluster runs (helm list -n NAMESPACE) and import again"
        )
    server = versions.server_version_for_chart(release.version)
    if release.local_chart is not None:
        try:
            server = read_chart_metadata(release.local_chart).app_version or server
        except ChartUnreadable as exc:
            raise HelmfileUnreadable(f"{shown}: release {release.name}: {exc}") from None
    if server is None:
        raise HelmfileUnreadable(
            f"{shown}: release {release.name}: chart {release.version} is not in the version "
            f"table ({versions.supported_chart_versions()})"
        )
    return ChartSpec.model_construct(
        repository=release.repository or ChartSpec().repository,
        name="temporal",
        version=release.version,
        server_version=server,
        local_path=str(release.local_chart) if release.local_chart else None,
    )


def _helm() -> Any:
    from adapters.helm_cli import HelmCli

    return HelmCli()


def _chart_defaults(chart: ChartSpec) -> dict[str, Any]:
    from adapters.helm_cli import HelmCommandFailed, HelmNotFound, chart_reference

    try:
        return _helm().show_values(chart_reference(chart))  # type: ignore[no-any-return]
    except (HelmCommandFailed, HelmNotFound, OSError) as exc:
        raise ImportFailed(
            f"cannot read the default values of chart temporal {chart.version} "
            f"({chart.local_path or chart.repository}): {getattr(exc, 'stderr', exc)}\n"
            "the import judges settings the old values never wrote by the chart's defaults; "
            "on a machine without internet access set TEMPORAL_BOOTSTRAP_CHART_MIRROR to a "
            "folder of charts or a chart repository URL"
        ) from None


def _namespace_pattern(namespace: str, name: str) -> str:
    """`my-app-staging` -> `my-app-{environment}`, so environments can share it."""
    return re.sub(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", "{environment}", namespace)


def _ordered(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in FILE_ORDER if k in data} | {
        k: v for k, v in data.items() if k not in FILE_ORDER
    }


def shared(environments: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What every environment declares alike (maps are compared key by key, anything else
    whole: lists replace when layered)."""
    maps = list(environments.values())
    if len(maps) < 2:
        return {}
    common: dict[str, Any] = {}
    for key, value in maps[0].items():
        others = [m.get(key, _ABSENT) for m in maps[1:]]
        if all(isinstance(v, Mapping) for v in (value, *others)):
            inner = shared({str(i): v for i, v in enumerate((value, *others))})
            if inner:
                common[key] = inner
        elif all(v == value for v in others):
            common[key] = copy.deepcopy(value)
    return common


def without(data: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """`data` less what `base` already declares the same way."""
    rest: dict[str, Any] = {}
    for key, value in data.items():
        if key not in base:
            rest[key] = copy.deepcopy(value)
        elif isinstance(value, Mapping) and isinstance(base[key], Mapping):
            inner = without(value, base[key])
            if inner:
                rest[key] = inner
        elif value != base[key]:
            rest[key] = copy.deepcopy(value)
    return rest


_ABSENT = object()


def _file_text(data: Mapping[str, Any], header: str) -> str:
    body = yaml.safe_dump(_ordered(data), sort_keys=False, width=100) if data else ""
    return f"{header}\n{body}"


def _relative_paths(data: dict[str, Any], directory: Path) -> None:
    """The loader reads file paths relative to the environments folder."""
    local = get(data, ("chart", "local_path"))
    if local:
        data["chart"]["local_path"] = os.path.relpath(local, directory)


def _drop_refused_extra(mapped: _Mapped, probe: Environment) -> None:
    """Take out the extra_values the loader would refuse, each reported by key (a
    secret-looking one without its value)."""
    extra = mapped.data.get("extra_values")
    if not extra:
        return
    refused = [(path, message, True) for path, message in secret_like_keys(extra)]
    candidate = probe.model_copy(update={"extra_values": extra})
    refused += [(path, message, False) for path, message in model_overrides(candidate)]
    sources = mapped.imported.extra_sources
    for path, message, secret in refused:
        # A key inside a list takes the whole list with it (lists replace when merged).
        whole = next((i for i, part in enumerate(path) if isinstance(part, int)), len(path))
        keys = tuple(str(p) for p in path[:whole])
        source = next((s for p, s in sources.items() if p[: len(keys)] == keys), "values")
        mapped.items.append(
            ReportItem(
                Severity.PROBLEM,
                source,
                ".".join(keys),
                "holds a secret value" if secret else "sets a chart value the model owns",
                message,
                "not copied into the imported environment"
                if secret
                else "not imported: " + message.partition("; ")[2],
                (ValuesChange(keys, REMOVE),),
            )
        )
        set_path(extra, keys, REMOVE)
    _prune(extra)
    if not extra:
        mapped.data.pop("extra_values")


def _prune(node: dict[str, Any]) -> None:
    for key in list(node):
        if isinstance(node[key], dict):
            _prune(node[key])
            if not node[key]:
                node.pop(key)


def _load_planned(
    name: str, base: Mapping[str, Any], own: Mapping[str, Any], required: Sequence[str]
) -> Environment:
    """Load planned files as `validate` will (raises InvalidEnvironment); `${X}` of an unset
    requiredEnv variable stays `${X}`."""
    variables = {**{v: f"${{{v}}}" for v in required}, **os.environ}
    with tempfile.TemporaryDirectory(prefix="helmfile-import-") as folder:
        directory = Path(folder)
        for file, data in ((BASE_FILE, base), (f"{name}.yaml", own)):
            (directory / file).write_text(yaml.safe_dump(dict(data), sort_keys=False))
        return load_environment(name, directory, variables)


def _for_check(data: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A planned environment file with the reported gaps filled for the check (never
    written): rds.instance_id / region where neither it nor base.yaml has them."""
    checked = copy.deepcopy(dict(data))
    for key in ("instance_id", "region"):
        if get(base or {}, ("rds", key)) is None and get(checked, ("rds", key)) is None:
            checked.setdefault("rds", {})[key] = PLACEHOLDER
    return checked


def _map_one(helmfile: Path, name: str, release_name: str | None) -> _Mapped:
    release = read_release(helmfile, name, release_name)
    chart = _chart_spec(release)
    defaults = _chart_defaults(chart)
    assert chart.server_version is not None
    imported = map_release(release, defaults, chart.version, chart.server_version)
    items = list(release.items) + imported.items
    for variable in release.required_env:
        items.append(
            ReportItem(
                Severity.NOTE,
                display_path(str(release.helmfile)),
                f"requiredEnv {variable}",
                f"values read the environment variable {variable}",
                "the import never writes a value read from the environment",
                f"the imported environment reads ${{{variable}}} when it is loaded: set "
                f"{variable} for validate, provision and the drift check",
            )
        )
    data = copy.deepcopy(imported.environment)
    namespace = get(data, ("kubernetes", "namespace"))
    if namespace:
        data["kubernetes"]["namespace"] = _namespace_pattern(namespace, name)
    return _Mapped(release, chart, imported, items, data)


def plan_import(
    helmfile: Path,
    names: Sequence[str],
    directory: Path,
    *,
    release: str | None = None,
) -> ImportPlan:
    """Plan the import of `names` from the helmfile project at `helmfile` into `directory`.
    Raises HelmfileUnreadable (bad input) or ImportFailed (the chart cannot be read)."""
    for name in names:
        if problem := environment_name_problem(name):
            raise HelmfileUnreadable(f"--env {problem}")
    directory = directory.absolute()
    mapped = {name: _map_one(helmfile, name, release) for name in dict.fromkeys(names)}
    for item in mapped.values():
        _relative_paths(item.data, directory)
        # The model owns what the loader refuses in extra_values; judge on a model without it.
        try:
            probe = _load_planned(
                "probe",
                {},
                _for_check({k: v for k, v in item.data.items() if k != "extra_values"}),
                item.release.required_env,
            )
        except InvalidEnvironment:
            probe = None
        if probe is not None:
            _drop_refused_extra(item, probe)
    base = shared({n: m.data for n, m in mapped.items()})
    files = [
        PlannedFile(
            directory / BASE_FILE,
            _file_text(
                base,
                f"# Imported from {display_path(str(helmfile))} by `starter.py import-helmfile`"
                ": what every imported environment shares. Field reference: docs/environments.md.",
            ),
            (directory / BASE_FILE).exists(),
        )
    ]
    results = []
    for name, item in mapped.items():
        own = without(item.data, base)
        path = directory / f"{name}.yaml"
        files.append(
            PlannedFile(
                path,
                _file_text(
                    own,
                    f"# Imported from {display_path(str(helmfile))} (environment {name}, "
                    f"release {item.release.name}); deep-merged over base.yaml.",
                ),
                path.exists(),
            )
        )
        if not item.imported.blocked:
            try:
                item.environment = _load_planned(
                    name, base, _for_check(own, base), item.release.required_env
                )
            except InvalidEnvironment as exc:
                item.invalid = [
                    f"{p.key}: {p.message}" if p.key else p.message for p in exc.problems
                ]
        results.append(
            EnvironmentImport(
                name,
                item.release.name,
                f"temporal {item.chart.version}",
                tuple(item.items),
                item.imported.blocked,
                tuple(item.invalid),
            )
        )
    return ImportPlan(helmfile, directory, tuple(results), tuple(files), mapped=mapped)


def _render_original(item: _Mapped, values: Sequence[dict[str, Any]]) -> str:
    from adapters.helm_cli import chart_reference

    release = item.release
    env = item.environment
    assert env is not None
    return _helm().template(  # type: ignore[no-any-return]
        release.name, env.kubernetes.namespace, chart_reference(item.chart), list(values)
    )


def _substituted(values: Any, required: Sequence[str]) -> Any:
    """`${X}` of a requiredEnv variable set here, replaced by its value (as helmfile would)."""
    if isinstance(values, dict):
        return {k: _substituted(v, required) for k, v in values.items()}
    if isinstance(values, list):
        return [_substituted(v, required) for v in values]
    if isinstance(values, str):
        for variable in required:
            if variable in os.environ:
                values = values.replace(f"${{{variable}}}", os.environ[variable])
    return values


def _single_item_renders(item: _Mapped, user: dict[str, Any]) -> dict[int, str]:
    """The original rendered with each item's change alone, to name the item behind each
    explained difference. A change that does not render alone (a password emptied before
    another item names the Secret) names nothing; the explanation as a whole stands."""
    from adapters.helm_cli import HelmCommandFailed

    singles = {}
    for number, report_item in enumerate(item.items, start=1):
        if not report_item.changes:
            continue
        try:
            singles[number] = _render_original(item, [apply_changes(user, [report_item])])
        except HelmCommandFailed:
            continue
    return singles


def _compare_one(name: str, item: _Mapped) -> Comparison:
    from adapters.helm_cli import HelmCommandFailed
    from operations.environments import RenderFailed, render

    chart = f"temporal {item.chart.version}"
    if item.environment is None:
        return Comparison(name, chart, error="the imported environment does not load (above)")
    required = item.release.required_env
    layers = [_substituted(layer.data, required) for layer in item.release.layers]
    items = item.items
    env = item.environment
    try:
        original = _render_original(item, layers)
        imported = render(env)
        user = _substituted(item.imported.user_values, required)
        corrected = _render_original(item, [with_model_additions(apply_changes(user, items), env)])
        hardened = _render_original(item, [with_model_additions(user, env)])
    except HelmCommandFailed as exc:
        return Comparison(name, chart, error=f"helm could not render: {exc.stderr}")
    except RenderFailed as exc:
        return Comparison(name, chart, error=str(exc))
    singles = _single_item_renders(item, user)
    count, found = differences(original, imported)
    _, left = differences(corrected, imported)
    unexplained_keys = {d.key for d in left}
    by_item = {
        number: {d.key for d in differences(original, text)[1]} for number, text in singles.items()
    }
    hardening_keys = {d.key for d in differences(original, hardened)[1]}
    explained, added = [], []
    for d in found:
        if d.key in unexplained_keys:
            continue
        numbers = tuple(n for n, keys in by_item.items() if d.key in keys)
        if not numbers and d.key in hardening_keys:
            added.append(d)
        else:
            explained.append((d, numbers))
    # A field only the corrected rendering gets wrong (an item's change the import did not
    # make) is unexplained too, with the imported value on the right.
    unexplained = tuple(d for d in left)
    return Comparison(name, chart, count, tuple(explained), unexplained, added=tuple(added))


def compare(plan: ImportPlan) -> ImportPlan:
    """The plan with a render comparison per environment (helm template, the real chart)."""
    comparisons = tuple(_compare_one(name, item) for name, item in plan.mapped.items())
    return dataclasses.replace(plan, comparisons=comparisons)


class FilesExist(Exception):
    """The plan would overwrite files; the message lists them."""


def write_plan(plan: ImportPlan, *, force: bool = False) -> list[Path]:
    """Write the plan's files (none when any exists, unless `force`)."""
    existing = [f.path for f in plan.files if f.exists or f.path.exists()]
    if existing and not force:
        raise FilesExist(
            "refusing to overwrite "
            + ", ".join(display_path(str(p)) for p in existing)
            + ": pass --force to overwrite, or --environments-dir to write elsewhere"
        )
    plan.directory.mkdir(parents=True, exist_ok=True)
    for planned in plan.files:
        planned.path.write_text(planned.text)
    return [f.path for f in plan.files]


__all__ = [
    "Comparison",
    "EnvironmentImport",
    "FilesExist",
    "HelmfileUnreadable",
    "ImportFailed",
    "ImportPlan",
    "PlannedFile",
    "compare",
    "leaves",
    "plan_import",
    "write_plan",
]
