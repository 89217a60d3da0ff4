"""Read a helmfile project: one environment's values and the Temporal release's values layers.

What is read, as helmfile reads it:

- `helmfile.yaml` (documents separated by `---` are layered in order): `environments.<env>`
  with its `values:` list (files relative to helmfile.yaml, `.gotmpl` files rendered, inline
  maps) and `kubeContext`; `repositories:` (`name`, `url`); `helmDefaults.kubeContext`;
  `releases:` with `name`, `namespace`, `chart` (`<repository>/<chart>` or a local path),
  `version`, `kubeContext` and `values:` (files relative to helmfile.yaml, `.gotmpl` files
  rendered, inline maps). helmfile.yaml is rendered twice (operations/helmfile/template.py):
  once to find the environment's values, then with them.
- The release is the one whose chart is named `temporal` (or `--release NAME` when there are
  several).

Files are read defensively with the environment loader's reader (size cap, alias bombs,
duplicate keys). A project that cannot be read at all (no such file, an environment or
release that is not there, a version or chart the import cannot resolve) raises
`HelmfileUnreadable` naming the file and key; everything else the import does not understand
is a report item, and the keys it touched are left out of the values layers.

Failure modes: helmfile features that change values beyond this list (`set:`, `secrets:`,
`bases:`, `jsonPatches:`, ...) are reported as not imported, never approximated; `.yaml`
values files are not templates for helmfile, so `{{ }}` in them reaches helm as text and is
reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declared_state.loader import (
    InvalidEnvironment,
    deep_merge,
    display_path,
    parse_yaml,
    read_text,
)
from operations.helmfile.report import ReportItem, Severity
from operations.helmfile.template import Rendered, TemplateProblem, render, tokens_in

_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
# Release keys that change what helm receives; the import reads none of them.
_UNREAD_RELEASE_KEYS = (
    "set",
    "setString",
    "secrets",
    "valuesTemplate",
    "jsonPatches",
    "strategicMergePatches",
    "transformers",
    "postRenderer",
    "postRendererArgs",
    "dependencies",
)
_UNREAD_PROJECT_KEYS = ("bases", "helmfiles")
NOT_UNDERSTOOD_WHY = (
    "the import evaluates only {{ .Environment.Name }}, {{ .Values.x }} and {{ requiredEnv "
    '"X" }} and never guesses what anything else would render'
)


class HelmfileUnreadable(Exception):
    """The helmfile project cannot be imported at all; the message names the file and key."""


@dataclass(frozen=True)
class ValuesLayer:
    """One entry of the release's `values:` list, as helm receives it (keys the import did
    not understand removed)."""

    source: str
    data: dict[str, Any]


@dataclass(frozen=True)
class HelmfileRelease:
    """The Temporal release of one helmfile environment."""

    helmfile: Path
    environment: str
    name: str
    namespace: str | None
    chart: str
    """As written: `temporal/temporal`, or a local path."""
    repository: str | None
    """The repository's URL (from `repositories:`) for a `<repository>/<chart>` chart."""
    local_chart: Path | None
    version: str | None
    kube_context: str | None
    layers: tuple[ValuesLayer, ...]
    required_env: tuple[str, ...]
    items: tuple[ReportItem, ...] = field(default_factory=tuple)


def _read(path: Path) -> str:
    try:
        return read_text(path)
    except InvalidEnvironment as exc:
        raise HelmfileUnreadable(str(exc)) from None


def _parse(text: str, file: str) -> Any:
    try:
        return parse_yaml(text, file)
    except InvalidEnvironment as exc:
        raise HelmfileUnreadable(str(exc)) from None


def _documents(text: str, file: str) -> list[dict[str, Any]]:
    docs = []
    for part in _DOCUMENT_SEPARATOR.split(text):
        data = _parse(part, file)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise HelmfileUnreadable(f"{file}: must be a mapping of keys")
        docs.append(data)
    return docs


def _layered(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """helmfile layers its documents: maps merge, `releases` and `repositories` add up."""
    merged: dict[str, Any] = {}
    for doc in docs:
        lists = {
            k: (merged.get(k) or []) + (doc.get(k) or []) for k in ("releases", "repositories")
        }
        merged = deep_merge(merged, doc)
        merged.update({k: v for k, v in lists.items() if v})
    return merged


def _paths_with_tokens(
    node: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """(key path, tokens) for each key whose value (or name) holds a placeholder; a list
    counts as one value (lists replace, so it is left out whole)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            child = (*path, str(key))
            if tokens_in(key) or not isinstance(value, Mapping):
                if found := tokens_in(key) + tokens_in(value):
                    yield child, found
            else:
                yield from _paths_with_tokens(value, child)


def _without(data: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = data
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _template_item(problem: TemplateProblem, key: str | None) -> ReportItem:
    lines = (
        f"lines {problem.line}-{problem.last_line}"
        if problem.last_line and problem.last_line != problem.line
        else f"line {problem.line}"
    )
    return ReportItem(
        severity=Severity.PROBLEM,
        file=display_path(problem.file),
        key=f"{lines}" + (f" ({key})" if key else ""),
        finding=f"{problem.expression}: {problem.message}",
        why=NOT_UNDERSTOOD_WHY,
        instead=(
            f"{key} is left out of the imported environment: set it there by hand"
            if key
            else "nothing between these lines is imported: set what they hold by hand"
        ),
    )


class _ProjectReader:
    def __init__(self, helmfile: Path, environment: str):
        self.helmfile = helmfile
        self.base = helmfile.parent
        self.environment = environment
        self.items: list[ReportItem] = []
        self.required: list[str] = []

    def _note_required(self, rendered: Rendered) -> None:
        self.required += [n for n in rendered.required_env if n not in self.required]

    def _drop_tokens(
        self, data: dict[str, Any], by_token: Mapping[str, TemplateProblem], reported: set[str]
    ) -> dict[str, Any]:
        """Drop the keys placeholders landed on, reporting each problem once."""
        for path, tokens in list(_paths_with_tokens(data)):
            for token in tokens:
                if token in by_token and token not in reported:
                    reported.add(token)
                    self.items.append(_template_item(by_token[token], ".".join(path)))
            _without(data, path)
        return data

    def _report_rest(self, problems: tuple[TemplateProblem, ...], reported: set[str]) -> None:
        """Removed control structures, and placeholders that landed on no key."""
        for problem in problems:
            if problem.token is None or problem.token not in reported:
                self.items.append(_template_item(problem, None))

    def _clean(self, data: dict[str, Any], rendered: Rendered) -> dict[str, Any]:
        reported: set[str] = set()
        self._drop_tokens(data, {p.token: p for p in rendered.problems if p.token}, reported)
        self._report_rest(rendered.problems, reported)
        return data

    def _values_file(self, written: Any, where: str, values: Mapping[str, Any]) -> ValuesLayer:
        if tokens_in(written) or not isinstance(written, str) or not written.strip():
            raise HelmfileUnreadable(
                f"{display_path(str(self.helmfile))}: {where}: expected a values file path or "
                f"a map, found {written!r}"
            )
        path = (self.base / written).resolve()
        shown = display_path(str(path))
        if not path.exists():
            raise HelmfileUnreadable(
                f"{display_path(str(self.helmfile))}: {where}: {written} does not exist "
                f"(looked for {shown}; paths are relative to helmfile.yaml)"
            )
        text = _read(path)
        if path.name.endswith(".gotmpl"):
            rendered = render(text, str(path), self.environment, values)
            self._note_required(rendered)
            data = _parse(rendered.text, shown) or {}
            data = self._clean(data, rendered) if isinstance(data, dict) else data
        else:
            data = _parse(text, shown) or {}
            if "{{" in text:
                self.items.append(
                    ReportItem(
                        severity=Severity.PROBLEM,
                        file=shown,
                        key=f"line {text[: text.index('{{')].count(chr(10)) + 1}",
                        finding="holds {{ }} template expressions, but helmfile renders only "
                        ".gotmpl values files",
                        why="helm receives the expressions as literal text",
                        instead="imported as helm receives it (literally): rename the file to "
                        ".yaml.gotmpl if it was meant as a template, and import again",
                    )
                )
        if not isinstance(data, dict):
            raise HelmfileUnreadable(f"{shown}: must be a mapping of keys")
        return ValuesLayer(shown, data)

    def _layers(self, entries: Any, where: str, values: Mapping[str, Any]) -> list[ValuesLayer]:
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise HelmfileUnreadable(
                f"{display_path(str(self.helmfile))}: {where}: must be a list of files and maps"
            )
        layers = []
        for index, entry in enumerate(entries):
            if isinstance(entry, dict):
                layers.append(
                    ValuesLayer(f"{display_path(str(self.helmfile))} {where}[{index}]", entry)
                )
            else:
                layers.append(self._values_file(entry, f"{where}[{index}]", values))
        return layers

    def _environment_values(self, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The environment's section of helmfile.yaml and its merged values (first pass)."""
        shown = display_path(str(self.helmfile))
        first = _layered(_documents(render(text, "", self.environment, None).text, shown))
        environments = first.get("environments") or {}
        if not isinstance(environments, dict):
            raise HelmfileUnreadable(
                f"{display_path(str(self.helmfile))}: environments: must be a map of names"
            )
        known = sorted(str(k) for k in environments) or ["default"]
        if self.environment not in known:
            raise HelmfileUnreadable(
                f"{display_path(str(self.helmfile))}: environments: no environment "
                f"{self.environment!r}; the project has: {', '.join(known)}"
            )
        section = environments.get(self.environment) or {}
        values: dict[str, Any] = {}
        for layer in self._layers(
            section.get("values"), f"environments.{self.environment}.values", values
        ):
            values = deep_merge(values, layer.data)
        # Inline values with expressions the first pass left as placeholders: reported when
        # the second pass renders helmfile.yaml, and never looked up.
        for path, _ in list(_paths_with_tokens(values)):
            _without(values, path)
        return section, values

    def read(self, release_name: str | None) -> HelmfileRelease:
        file = str(self.helmfile)
        text = _read(self.helmfile)
        _, values = self._environment_values(text)
        rendered = render(text, file, self.environment, values)
        self._note_required(rendered)
        project = _layered(_documents(rendered.text, display_path(file)))
        section = (project.get("environments") or {}).get(self.environment) or {}
        release = self._release(project, release_name)
        tokens = set(tokens_in(release)) | set(tokens_in(section))
        relevant = tuple(p for p in rendered.problems if p.token is None or p.token in tokens)
        for key in ("name", "namespace", "chart", "version", "kubeContext"):
            if tokens_in(release.get(key)):
                problem = next(p for p in relevant if p.token in tokens_in(release.get(key)))
                raise HelmfileUnreadable(
                    f"{display_path(file)}: line {problem.line}: release {key}: "
                    f"{problem.expression}: {problem.message}; write it literally or with "
                    "{{ .Values.x }}"
                )
        by_token = {p.token: p for p in relevant if p.token}
        reported: set[str] = set()
        layers = self._layers(release.get("values"), "release values", values)
        for layer in layers:
            if layer.source.startswith(display_path(file)):  # an inline map of helmfile.yaml
                self._drop_tokens(layer.data, by_token, reported)
        self._drop_tokens({f"environments.{self.environment}": section}, by_token, reported)
        self._report_rest(relevant, reported)
        self._unread_keys(project, release)
        repository, local_chart = self._chart_source(project, release)
        version = release.get("version")
        context = (
            release.get("kubeContext")
            or section.get("kubeContext")
            or (project.get("helmDefaults") or {}).get("kubeContext")
        )
        return HelmfileRelease(
            helmfile=self.helmfile,
            environment=self.environment,
            name=str(release.get("name")),
            namespace=str(release["namespace"]) if release.get("namespace") else None,
            chart=str(release.get("chart")),
            repository=repository,
            local_chart=local_chart,
            version=str(version) if version is not None else None,
            kube_context=str(context) if context else None,
            layers=tuple(layers),
            required_env=tuple(self.required),
            items=tuple(self.items),
        )

    def _release(self, project: dict[str, Any], wanted: str | None) -> dict[str, Any]:
        releases = [r for r in project.get("releases") or [] if isinstance(r, dict)]
        temporal = [
            r for r in releases if str(r.get("chart", "")).rstrip("/").split("/")[-1] == "temporal"
        ]
        candidates = (
            temporal if wanted is None else [r for r in releases if r.get("name") == wanted]
        )
        shown = display_path(str(self.helmfile))
        if len(candidates) == 1:
            return candidates[0]
        if wanted is not None:
            names = ", ".join(str(r.get("name")) for r in releases) or "none"
            raise HelmfileUnreadable(f"{shown}: releases: no release {wanted!r} (found: {names})")
        if not candidates:
            raise HelmfileUnreadable(
                f"{shown}: releases: no release of a chart named temporal (e.g. "
                "chart: temporal/temporal); name the release with --release"
            )
        names = ", ".join(str(r.get("name")) for r in candidates)
        raise HelmfileUnreadable(
            f"{shown}: releases: several releases of the temporal chart ({names}); "
            "choose one with --release"
        )

    def _chart_source(
        self, project: dict[str, Any], release: dict[str, Any]
    ) -> tuple[str | None, Path | None]:
        chart = str(release.get("chart") or "")
        shown = display_path(str(self.helmfile))
        if chart.startswith(("./", "../", "/")):
            return None, (self.base / chart).resolve()
        repository, _, name = chart.partition("/")
        urls = {
            str(r.get("name")): str(r.get("url"))
            for r in project.get("repositories") or []
            if isinstance(r, dict)
        }
        if not name or repository not in urls:
            raise HelmfileUnreadable(
                f"{shown}: release {release.get('name')}: chart {chart!r}: no repository "
                f"{repository!r} in repositories: (known: {', '.join(urls) or 'none'})"
            )
        return urls[repository], None

    def _unread_keys(self, project: dict[str, Any], release: dict[str, Any]) -> None:
        shown = display_path(str(self.helmfile))
        for key in _UNREAD_PROJECT_KEYS:
            if project.get(key):
                self.items.append(
                    ReportItem(
                        Severity.PROBLEM,
                        shown,
                        key,
                        f"{key}: other helmfile files are not read by the import",
                        "values or releases defined there would be missing",
                        "not imported: merge what they set for the Temporal release into "
                        "the imported environment by hand",
                    )
                )
        for key in _UNREAD_RELEASE_KEYS:
            if release.get(key):
                self.items.append(
                    ReportItem(
                        Severity.PROBLEM,
                        shown,
                        f"releases[{release.get('name')}].{key}",
                        f"the release uses {key}:, which changes what helm installs",
                        "the import reads only the release's values: files and maps",
                        f"not imported: express what {key} does in the imported environment",
                    )
                )
        if release.get("installed") is False:
            self.items.append(
                ReportItem(
                    Severity.PROBLEM,
                    shown,
                    f"releases[{release.get('name')}].installed",
                    "installed: false (helmfile uninstalls this release)",
                    "provisioning the imported environment installs it",
                    "imported as if installed",
                )
            )


def read_release(helmfile: Path, environment: str, release: str | None = None) -> HelmfileRelease:
    """The Temporal release of `environment` in the helmfile project at `helmfile`;
    raises HelmfileUnreadable."""
    if helmfile.is_dir():
        helmfile = helmfile / "helmfile.yaml"
    return _ProjectReader(helmfile.absolute(), environment).read(release)
