"""The layering the code relies on, checked from the source so a violation fails the build.

- Product code never imports `local_stack` (the test and demo stand-ins): an installed
  temporal-bootstrap has no stand-ins, and its dependencies (aiohttp, moto) live in the
  `[local]` extra.
- Workflow modules and the contracts they import never reach an I/O library (boto3,
  kubernetes, pymysql, subprocess, ...), not even through another first-party module: the
  workflow sandbox and determinism depend on it.
- Every typed activity reference in `contracts/` has an implementation the worker registers,
  under the same name, taking and returning the same types.

The import graph is read with `ast` (every `import`, at any depth of the module, counts), so
a lazy import inside a function is caught as well.
"""

from __future__ import annotations

import ast
import inspect
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio import activity

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PACKAGES = ("activities", "contracts", "declared_state", "operations", "workflows")
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
    from activities.clients import KubeClients
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
