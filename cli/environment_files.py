"""Commands on environment files that need no server: validate, render, lock-charts and
import-helmfile. They read and render offline (the chart through the cache or the mirror
setting) and exit 3 on invalid input, naming the file and key."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.app import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_WAITING,
    CommandFailed,
    EnvArg,
    EnvDirOpt,
    app,
    environments_folder,
    out,
    prepare,
    say,
)
from declared_state.loader import InvalidEnvironment
from operations import environments, render


@app.command()
def validate(name: EnvArg, environments_dir: EnvDirOpt = None) -> None:
    """Load and validate ENV, render it with the real chart, and print a short summary."""
    prepared = prepare(name, environments_dir)
    summary = environments.summarize(prepared.env, prepared.manifests, prepared.lock)
    out.print(render.summary_table(prepared.env.name, summary))


@app.command(name="lock-charts")
def lock_charts(
    name: EnvArg,
    environments_dir: EnvDirOpt = None,
    update: Annotated[
        bool, typer.Option("--update", help="Accept a chart whose digest differs from the lock.")
    ] = False,
) -> None:
    """Fetch ENV's chart and record its digest in charts.lock beside the environment files
    (--update replaces an entry whose digest differs)."""
    try:
        lock = environments.lock_charts(name, environments_folder(environments_dir), update)
    except InvalidEnvironment as exc:
        lines = [f"invalid environment {name!r}:", *(f"  {p}" for p in exc.problems)]
        raise CommandFailed(EXIT_INVALID, "\n".join(lines)) from None
    except environments.RenderFailed as exc:
        raise CommandFailed(EXIT_INVALID, str(exc)) from None
    say(f"chart {lock.entry_text()}")


@app.command(name="render")
def render_manifests(name: EnvArg, environments_dir: EnvDirOpt = None) -> None:
    """Print the manifests that provisioning ENV would apply (like `helmfile template`)."""
    sys.stdout.write(prepare(name, environments_dir).manifests)


@app.command(name="import-helmfile")
def import_helmfile(
    helmfile: Annotated[
        Path,
        typer.Argument(
            help="The helmfile project's helmfile.yaml (or its folder).", metavar="HELMFILE"
        ),
    ],
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            help="A helmfile environment to import (repeat for several); it becomes "
            "<environments-dir>/<ENV>.yaml.",
            metavar="ENV",
        ),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Write the files (default: only show them).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --write: overwrite files that exist.")
    ] = False,
    compare_renders: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Render the original values and the imported environment with the chart "
            "(helm template) and show every field that differs, with the report item that "
            "explains it.",
        ),
    ] = False,
    release: Annotated[
        str | None,
        typer.Option("--release", help="The release to import when several use the chart."),
    ] = None,
    environments_dir: EnvDirOpt = None,
) -> None:
    """Import a helmfile project's Temporal release as environment files, with a report.

    Reads the environments' values (files, inline maps, .gotmpl templates using
    {{ .Environment.Name }}, {{ .Values.x }} and {{ requiredEnv "X" }}) and the release's
    values, maps them onto the environment model and reports every problem in them (file,
    key, why it matters, what the imported file does instead). Without --write it prints the
    files it would write (<ENV>.yaml per environment, base.yaml for what they share) and
    the report. Exits 0 when there is no problem, 2 when there are (written or not), 3 for
    input it cannot read (or files that exist, without --force), 1 when the chart cannot be
    read.
    """
    # Only this command reads helmfile projects: its parser stays out of every other start.
    from operations import helmfile_import

    if not env:
        raise CommandFailed(EXIT_INVALID, "--env: name at least one helmfile environment")
    try:
        plan = helmfile_import.plan_import(
            helmfile, env, environments_folder(environments_dir), release=release
        )
    except helmfile_import.HelmfileUnreadable as exc:
        raise CommandFailed(EXIT_INVALID, f"cannot import {helmfile}:\n  {exc}") from None
    except helmfile_import.ImportFailed as exc:
        raise CommandFailed(EXIT_FAILED, str(exc)) from None
    if compare_renders:
        plan = helmfile_import.compare(plan)
    if not write:
        say(render.planned_file_lines(plan))
    say(render.report_lines(plan))
    if compare_renders:
        say(render.comparison_lines(plan))
    code = EXIT_WAITING if plan.problems or plan.blocked else EXIT_OK
    if plan.blocked:
        say("nothing written: the report says what the model cannot express")
    elif write:
        try:
            written = helmfile_import.write_plan(plan, force=force)
        except helmfile_import.FilesExist as exc:
            raise CommandFailed(EXIT_INVALID, str(exc)) from None
        say([f"wrote {path}" for path in written])
        names = " ".join(e.name for e in plan.environments)
        say(f"next: python starter.py validate ENV (for {names})")
    else:
        say("nothing written (plan only): run again with --write to write these files")
    if plan.problems:
        say(f"{plan.problems} problem(s) found (exit 2)")
    raise typer.Exit(code)
