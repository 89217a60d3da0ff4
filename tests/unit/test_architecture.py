"""The layering the code relies on, checked from the source so a violation fails the build.

- Product code never imports `local_stack` (the test and demo stand-ins): an installed
  temporal-bootstrap has no stand-ins, and its dependencies (aiohttp, moto) live in the
  `[local]` extra.
- Workflow modules and the contracts they import never reach an I/O library (boto3,
  kubernetes, pymysql, subprocess, ...), not even through another first-party module: the
  workflow sandbox and determinism depend on it.
- No cycle between top-level packages: each package sits on a floor and imports only
  floors below it (bench; starter, cli, worker, local_stack; operations, activities; workflows,
  adapters; contracts; declared_state; base). A cycle is how "just one import" turns two
  packages into one that nobody can change alone.
- The CLI (`starter.py` and `cli/`) only parses and maps outcomes: it reaches workflows and activities
  through `operations/`, never by importing them.
- Every typed activity reference in `contracts/` has an implementation the worker registers,
  under the same name, taking and returning the same types.

The import graph is read with `ast` (every `import`, at any depth of the module, counts), so
a lazy import inside a function is caught as well.
"""

from __future__ import annotations

import ast
import inspect
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio import activity

from tests.helpers import PRODUCT_PACKAGES, PROJECT_ROOT

PRODUCT_MODULES = ("worker", "starter", "bootstrap_server")
STAND_INS = ("local_stack",)
IO_LIBRARIES = (
    "boto3",
    "botocore",
    "kubernetes",
    "pymysql",
    "subprocess",
    "urllib3",
    "aiohttp",
    "requests",
    "socket",
    "ssl",
    "moto",
)
SANDBOXED_PACKAGES = ("workflows", "contracts")


def _module_files() -> dict[str, Path]:
    """First-party module name -> file, for the product and the stand-ins."""
    files: dict[str, Path] = {}
    for name in PRODUCT_MODULES:
        path = PROJECT_ROOT / f"{name}.py"
        if path.is_file():
            files[name] = path
    for package in (*PRODUCT_PACKAGES, *STAND_INS):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    return files


FILES = _module_files()


def _imports(module: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import statement in `module`."""
    path = FILES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from package import module`
                if f"{target}.{alias.name}" in FILES:
                    yield f"{target}.{alias.name}", node.lineno


def _first_party(name: str) -> str | None:
    while name and name not in FILES:
        name = name.rpartition(".")[0]
    return name or None


def _is_product(module: str) -> bool:
    return module.split(".")[0] in (*PRODUCT_PACKAGES, *PRODUCT_MODULES)


def _reaches(start: str, forbidden: tuple[str, ...]) -> list[str]:
    """Import chains from `start` to any top-level module in `forbidden`."""
    found: list[str] = []
    seen = {start}
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    while stack:
        module, chain = stack.pop()
        for target, line in _imports(module):
            if target.split(".")[0] in forbidden:
                found.append(" -> ".join([*chain, f"{target} (line {line})"]))
                continue
            inner = _first_party(target)
            if inner and inner not in seen:
                seen.add(inner)
                stack.append((inner, [*chain, inner]))
    return found


def test_the_module_graph_is_read():
    assert "workflows.bootstrap" in FILES and "contracts.base" in FILES
    assert any(t == "contracts.bootstrap" for t, _ in _imports("workflows.bootstrap"))
    # The checker sees a chain it must see: the worker reaches kubernetes through activities.
    assert _reaches("worker", ("kubernetes",))


def _top_level_graph() -> dict[str, dict[str, str]]:
    """Top-level package -> {imported top-level package: one import that shows it}."""
    graph: dict[str, dict[str, str]] = {}
    for module in FILES:
        top = module.split(".")[0]
        for target, line in _imports(module):
            inner = _first_party(target)
            if inner is None or inner.split(".")[0] == top:
                continue
            graph.setdefault(top, {}).setdefault(
                inner.split(".")[0], f"{module} imports {target} (line {line})"
            )
    return graph


def test_no_cycle_between_top_level_packages():
    graph = _top_level_graph()
    cycles = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, {})):
                if nxt == start:
                    hops = [*path, start]
                    cycles.append(
                        "; ".join(graph[a][b] for a, b in zip(hops, hops[1:], strict=False))
                    )
                elif nxt not in path and nxt > start:
                    stack.append((nxt, [*path, nxt]))
    assert cycles == [], "package cycles:\n" + "\n".join(cycles)


def test_the_cycle_check_sees_a_cycle(monkeypatch):
    # The check must fail on a cycle: plant one (base -> contracts -> base) and look.
    planted = dict(_top_level_graph())
    planted["base"] = {"contracts": "planted"}
    monkeypatch.setattr(sys.modules[__name__], "_top_level_graph", lambda: planted)
    with pytest.raises(AssertionError, match="package cycles"):
        test_no_cycle_between_top_level_packages()


def test_the_cli_imports_neither_workflows_nor_activities():
    found = [
        f"{target} (line {line})"
        for module in FILES
        if module == "starter" or module.split(".")[0] == "cli"
        for target, line in _imports(module)
        if target.split(".")[0] in ("workflows", "activities")
    ]
    assert found == [], f"the CLI must go through operations/: {found}"


@pytest.mark.parametrize("module", sorted(m for m in FILES if _is_product(m)))
def test_product_code_never_imports_the_stand_ins(module: str):
    direct = [f"{t} (line {n})" for t, n in _imports(module) if t.split(".")[0] in STAND_INS]
    assert direct == [], f"{module} imports the local stack: {direct}"


@pytest.mark.parametrize(
    "module", sorted(m for m in FILES if m.split(".")[0] in SANDBOXED_PACKAGES)
)
def test_workflow_code_reaches_no_io_library(module: str):
    chains = _reaches(module, IO_LIBRARIES + STAND_INS)
    assert chains == [], "workflow code must stay I/O-free:\n" + "\n".join(chains)


def _reference_pairs() -> list[tuple[str, object]]:
    import contracts

    pairs = []
    for path in sorted(Path(contracts.__file__).parent.glob("*.py")):
        module = __import__(f"contracts.{path.stem}", fromlist=["*"])
        for _, member in inspect.getmembers(module, inspect.isfunction):
            definition = activity._Definition.from_callable(member)
            if definition is not None and member.__module__ == module.__name__:
                pairs.append((definition.name, member))
    return pairs


def test_every_typed_activity_reference_has_a_registered_implementation():
    from adapters.clients import KubeClients
    from worker import build_activities

    implementations = {
        activity._Definition.must_from_callable(fn).name: fn
        for fn in build_activities(KubeClients(), helm_binary=None)
    }
    references = _reference_pairs()
    assert {name for name, _ in references} == set(implementations)
    for name, reference in references:
        wanted = typing.get_type_hints(reference)
        got = typing.get_type_hints(implementations[name])
        assert (list(wanted.values())[0], wanted["return"]) == (
            list(got.values())[0],
            got["return"],
        ), name


def test_the_worker_registers_exactly_what_the_workflows_step_specs_name():
    """#19.1: the worker registers the activities the workflows' specs name, and nothing a
    spec does not name is left registered or unimplemented."""
    from adapters.clients import KubeClients
    from contracts.step_spec import activity_name
    from worker import WORKFLOWS, build_activities, registered_activities

    implementations = build_activities(KubeClients(), helm_binary=None)
    registered = {activity_name(fn) for fn in registered_activities(WORKFLOWS, implementations)}
    assert registered == {activity_name(fn) for fn in implementations}
    assert registered == {name for name, _ in _reference_pairs()}
