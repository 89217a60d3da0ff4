"""temporal-bootstrap operator CLI.

\b
    python starter.py validate staging     check an environment and render it offline
    python starter.py render staging       print the manifests helm would apply

Exit codes (stable, for scripts): 0 done, 1 failed or aborted, 2 waiting for an operator,
3 invalid input (bad environment file, unknown environment).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from declared_state.loader import DEFAULT_DIR, InvalidEnvironment, load_environment
from declared_state.models import Environment, format_duration

EXIT_OK, EXIT_FAILED, EXIT_WAITING, EXIT_INVALID = 0, 1, 2, 3

app = typer.Typer(
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# soft_wrap: error lines stay one per problem, so they can be grepped in CI logs.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EnvArg = Annotated[
    str, typer.Argument(help="Environment name: a file environments/<ENV>.yaml (e.g. staging).")
]
EnvDirOpt = Annotated[
    Path,
    typer.Option(
        "--environments-dir",
        envvar="TEMPORAL_BOOTSTRAP_ENVIRONMENTS",
        help="Folder with base.yaml and <ENV>.yaml.",
    ),
]


def load_or_exit(name: str, directory: Path) -> Environment:
    """Load an environment; on any problem print every one of them and exit 3."""
    try:
        return load_environment(name, directory)
    except InvalidEnvironment as exc:
        err.print(f"[bold red]invalid environment {name!r}[/]:", highlight=False)
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
        raise typer.Exit(EXIT_INVALID) from None


def render_or_exit(env: Environment) -> str:
    from activities.helm_cli import HelmCommandFailed, HelmNotFound, render_environment

    try:
        return render_environment(env)
    except HelmCommandFailed as exc:
        err.print(f"helm could not render environment {env.name!r}:", markup=False)
        err.print(exc.stderr, markup=False, highlight=False)
        raise typer.Exit(EXIT_INVALID) from None
    except (HelmNotFound, FileNotFoundError, ValueError) as exc:
        err.print(f"environment {env.name!r}: {exc}", markup=False, highlight=False)
        raise typer.Exit(EXIT_INVALID) from None


@app.command()
def validate(name: EnvArg, environments_dir: EnvDirOpt = DEFAULT_DIR) -> None:
    """Load and validate ENV, render it with the real chart, and print a short summary."""
    env = load_or_exit(name, environments_dir)
    manifests = render_or_exit(env)
    kinds = Counter(
        doc["kind"]
        for doc in yaml.safe_load_all(manifests)
        if isinstance(doc, dict) and "kind" in doc
    )
    table = Table(title=f"environment {env.name}: valid", show_header=False, title_justify="left")
    table.add_row(
        "chart",
        f"{env.chart.name} {env.chart.version} ({env.chart.local_path or env.chart.repository})",
    )
    table.add_row("server version", env.chart.target_server_version)
    table.add_row(
        "schema needed",
        f"{env.database.default_store} {env.schema_versions.default_store}, "
        f"{env.database.visibility_store} {env.schema_versions.visibility_store}",
    )
    table.add_row("release", f"{env.kubernetes.release} in namespace {env.kubernetes.namespace}")
    table.add_row("database", f"{env.rds.instance_id} ({env.rds.endpoint}:{env.rds.port})")
    table.add_row(
        "namespaces",
        ", ".join(f"{ns.name} ({format_duration(ns.retention)})" for ns in env.temporal_namespaces)
        or "none",
    )
    table.add_row("rendered objects", ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    out.print(table)


@app.command()
def render(name: EnvArg, environments_dir: EnvDirOpt = DEFAULT_DIR) -> None:
    """Print the manifests that provisioning ENV would apply (like `helmfile template`)."""
    env = load_or_exit(name, environments_dir)
    sys.stdout.write(render_or_exit(env))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
