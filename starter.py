"""temporal-bootstrap operator CLI (also installed as the `temporal-bootstrap` command).

\b
    python starter.py validate staging     check an environment and render it offline
    python starter.py render staging       print the manifests helm would apply
    python starter.py lock-charts staging [--update]   record the chart's digest in charts.lock
    python starter.py provision staging    start (or attach to) provision-staging and follow it
    python starter.py status staging       every step, its attempts, errors and changes
    python starter.py approve staging      open the approval gate before install_chart
    python starter.py retry|skip|abort staging   answer a step that waits for an operator
    python starter.py pause|resume staging       hold the run between steps
    python starter.py upgrade staging --plan     the hops to the declared chart.version
    python starter.py upgrade staging      move the cluster there, one minor at a time
    python starter.py retry staging --upgrade    (any action) steer the upgrade run instead
    python starter.py retry staging --dry-run    (any action) steer the dry run instead
    python starter.py drift staging        compare declared and live state now (report/repair)
    python starter.py drift staging -o json   the same, one JSON record per difference
    python starter.py schedule staging     run that check every drift_check.interval
    python starter.py unschedule staging   stop the scheduled check
    python starter.py approve-drift staging   let a drift check (policy ask) repair
    python starter.py import-helmfile helmfile.yaml --env staging [--write] [--compare]
                                           adopt a helmfile setup, with a report of its problems

Every operator action is also a temporal CLI update (refused with the reason when the run
cannot take it now) and a signal of the same name (refusals show in `status`), e.g.
    temporal workflow update execute --workflow-id provision-staging --name approve --input '{"by": "alice"}'
    temporal workflow signal --workflow-id provision-staging --name approve --input '{"by": "alice"}'
    temporal workflow query --workflow-id provision-staging --type progress

The bootstrap server comes from the standard Temporal client settings (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE);
without an address, the embedded local dev server is used (started if needed). --local-stack
takes the addresses of a running `python -m local_stack up` (the demo).

Exit codes (stable, for scripts): 0 done (drift: in sync or repaired; upgrade --plan: nothing
to do), 1 failed, aborted or refused (drift: a check failed or could not read something, or a
repair left differences; no server or worker answers), 2 waiting for an operator (or for a
choice: `provision` of a changed declaration while a run waits; upgrade --plan: there are
hops to apply), 3 invalid input, nothing started or changed (bad command line, bad environment
file, unknown environment, an action the run refuses now), 4 drift found and not repaired.
`drift ENV --output json` prints one record per difference.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from temporalio.client import Client

from contracts.drift_check import DriftCheckResult, DriftState, drift_schedule_id
from contracts.operator import OperatorAction, OperatorRequest, drift_approval_commands
from declared_state.loader import InvalidEnvironment
from declared_state.models import (
    DriftPolicy,
    environment_name_problem,
    format_duration,
)
from declared_state.paths import ENVIRONMENTS_VARIABLE, environments_dir
from operations import actions, environments, render
from operations import drift as drift_ops
from operations import runs as run_ops
from operations.embedded import EmbeddedServerError
from operations.outcome import Outcome, Say
from operations.settings import (
    ClientSettings,
    SettingsError,
    apply_local_stack_env,
    connect_failure,
    resolve,
)

EXIT_OK, EXIT_FAILED, EXIT_WAITING, EXIT_INVALID, EXIT_DRIFTED = 0, 1, 2, 3, 4
EXIT_CODES = {
    Outcome.DONE: EXIT_OK,
    Outcome.FAILED: EXIT_FAILED,
    Outcome.WAITING: EXIT_WAITING,
    Outcome.INVALID: EXIT_INVALID,
    Outcome.DRIFTED: EXIT_DRIFTED,
}

app = typer.Typer(
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# soft_wrap: error lines stay one per problem, so they can be grepped in CI logs.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


@dataclass
class CliState:
    """What every command shares: the client settings (built once) and, in tests, a client."""

    settings: ClientSettings | None = None
    client: Client | None = None


class CommandFailed(Exception):
    """Ends a command with `code` after printing `message` to stderr."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _environment_name(name: str) -> str:
    """Every command takes ENV through here: it names a file and a workflow id, so a path or
    an odd name is refused (exit 3) before anything is read or started."""
    if problem := environment_name_problem(name):
        raise CommandFailed(EXIT_INVALID, f"ENV: {problem}")
    return name


EnvArg = Annotated[
    str,
    typer.Argument(
        help="Environment name: the file <environments-dir>/<ENV>.yaml, e.g. staging "
        "(lowercase letters, digits and '-').",
        callback=_environment_name,
        metavar="ENV",
    ),
]
EnvDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--environments-dir",
        envvar=ENVIRONMENTS_VARIABLE,
        help="Folder with base.yaml and <ENV>.yaml [default: ./environments].",
        show_default=False,
    ),
]
NoWaitOpt = Annotated[
    bool, typer.Option("--no-wait", help="Return at once instead of following the run.")
]
ByOpt = Annotated[str, typer.Option("--by", help="Who acts (recorded in the workflow's history).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Free text recorded with the action.")]
UpgradeRunOpt = Annotated[
    bool,
    typer.Option("--upgrade", help="Act on the upgrade run upgrade-ENV instead of provision-ENV."),
]
DryRunRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Act on the dry run provision-ENV-dry-run instead of provision-ENV."
    ),
]
PolicyOpt = Annotated[
    DriftPolicy | None,
    typer.Option(
        "--policy",
        help="report: list the drift; remediate: repair it; ask: wait for `approve`, then "
        "repair. Default: the environment's drift_check.policy.",
    ),
]


@app.callback()
def _options(
    ctx: typer.Context,
    local_stack: Annotated[
        bool,
        typer.Option(
            "--local-stack",
            envvar="TEMPORAL_BOOTSTRAP_LOCAL_STACK",
            help="Take the addresses of a running `python -m local_stack up` (the demo) for "
            "every setting not set explicitly.",
        ),
    ] = False,
) -> None:
    state: CliState = ctx.ensure_object(CliState)
    if local_stack and not apply_local_stack_env():
        err.print("--local-stack: no running local stack; start it with `python -m local_stack up`")
        raise typer.Exit(EXIT_FAILED)
    if state.settings is None:
        try:
            state.settings = ClientSettings.load()
        except SettingsError as exc:
            err.print(str(exc), markup=False)
            raise typer.Exit(EXIT_INVALID) from None


def _state(ctx: typer.Context) -> CliState:
    state = ctx.ensure_object(CliState)
    assert state.settings is not None, "set by the callback"
    return state


def _operator(by: str = "") -> str:
    return _limited("--by", by) or os.environ.get("USER") or os.environ.get("LOGNAME") or "operator"


def _environments_folder(directory: Path | None) -> Path:
    return directory or environments_dir()


def _prepare(name: str, directory: Path | None) -> environments.Prepared:
    """Load, validate and render an environment once; on any problem print every one of
    them and exit 3 (before anything starts)."""
    try:
        return environments.prepare(name, _environments_folder(directory))
    except InvalidEnvironment as exc:
        lines = [f"invalid environment {name!r}:", *(f"  {p}" for p in exc.problems)]
        raise CommandFailed(EXIT_INVALID, "\n".join(lines)) from None
    except environments.RenderFailed as exc:
        raise CommandFailed(EXIT_INVALID, str(exc)) from None


def _connected(
    ctx: typer.Context,
    body: Callable[[Client, ClientSettings], Awaitable[int]],
    *,
    start_embedded: bool,
) -> NoReturn:
    """Connect (or take the injected client), run `body` and exit with its code; typed
    failures become exits."""
    state = _state(ctx)
    assert state.settings is not None

    async def go() -> int:
        if state.client is not None:
            return await body(state.client, state.settings)  # type: ignore[arg-type]
        try:
            settings = resolve(state.settings, start_embedded=start_embedded)  # type: ignore[arg-type]
        except EmbeddedServerError as exc:
            raise CommandFailed(EXIT_FAILED, str(exc)) from None
        if settings is None:
            raise CommandFailed(
                EXIT_FAILED,
                "no bootstrap server: set TEMPORAL_ADDRESS (or a TEMPORAL_PROFILE), or start "
                "`python worker.py` (it starts the embedded local server)",
            )
        try:
            client = await settings.connect()
        except RuntimeError as exc:  # the SDK reports refused/unresolvable servers so
            raise CommandFailed(EXIT_FAILED, connect_failure(settings.address, exc)) from None
        return await body(client, settings)

    try:
        code = asyncio.run(go())
    except run_ops.ActionRefused as exc:
        raise CommandFailed(EXIT_INVALID, str(exc)) from None
    except run_ops.OperationError as exc:
        raise CommandFailed(EXIT_FAILED, str(exc)) from None
    raise typer.Exit(code)


def _run(
    ctx: typer.Context,
    operation: Callable[[Client, ClientSettings], AsyncIterator[Say | Outcome]],
    *,
    start_embedded: bool,
) -> NoReturn:
    """Run one operation: print what it says, exit with its outcome's code."""
    _connected(
        ctx,
        lambda client, settings: _show(operation(client, settings)),
        start_embedded=start_embedded,
    )


def _limited(option: str, value: str) -> str:
    """An operator argument within the run's limit (OperatorRequest's), else one line naming
    it and exit 3, before anything is sent (a pydantic traceback before, #20.11)."""
    field = OperatorRequest.model_fields[option.removeprefix("--")]
    limit = next(m.max_length for m in field.metadata if hasattr(m, "max_length"))
    if len(value) > limit:
        raise CommandFailed(
            EXIT_INVALID, f"{option}: at most {limit} characters (got {len(value)})"
        )
    return value


def _request(by: str, reason: str) -> OperatorRequest:
    """The request an operator action carries."""
    _limited("--reason", reason)
    return OperatorRequest(by=_operator(by), reason=reason)


def _print(lines: str | Sequence[str]) -> None:
    for line in [lines] if isinstance(lines, str) else lines:
        out.print(line, markup=False, highlight=False)


def _eprint(lines: str | Sequence[str]) -> None:
    """Progress for people while stdout carries a machine-readable document."""
    for line in [lines] if isinstance(lines, str) else lines:
        err.print(line, markup=False, highlight=False)


async def _show(report: AsyncIterator[Say | Outcome]) -> int:
    """Print what an operation says as it says it; its outcome is the exit code."""
    async for item in report:
        if isinstance(item, Outcome):
            return EXIT_CODES[item]
        (err if item.stderr else out).print(item.content, markup=False, highlight=False)
    return EXIT_FAILED


# --- environment files ------------------------------------------------------------------


@app.command()
def validate(name: EnvArg, environments_dir: EnvDirOpt = None) -> None:
    """Load and validate ENV, render it with the real chart, and print a short summary."""
    prepared = _prepare(name, environments_dir)
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
        lock = environments.lock_charts(name, _environments_folder(environments_dir), update)
    except InvalidEnvironment as exc:
        lines = [f"invalid environment {name!r}:", *(f"  {p}" for p in exc.problems)]
        raise CommandFailed(EXIT_INVALID, "\n".join(lines)) from None
    except environments.RenderFailed as exc:
        raise CommandFailed(EXIT_INVALID, str(exc)) from None
    _print(f"chart {lock.entry_text()}")


@app.command(name="render")
def render_manifests(name: EnvArg, environments_dir: EnvDirOpt = None) -> None:
    """Print the manifests that provisioning ENV would apply (like `helmfile template`)."""
    sys.stdout.write(_prepare(name, environments_dir).manifests)


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
            helmfile, env, _environments_folder(environments_dir), release=release
        )
    except helmfile_import.HelmfileUnreadable as exc:
        raise CommandFailed(EXIT_INVALID, f"cannot import {helmfile}:\n  {exc}") from None
    except helmfile_import.ImportFailed as exc:
        raise CommandFailed(EXIT_FAILED, str(exc)) from None
    if compare_renders:
        plan = helmfile_import.compare(plan)
    if not write:
        _print(render.planned_file_lines(plan))
    _print(render.report_lines(plan))
    if compare_renders:
        _print(render.comparison_lines(plan))
    code = EXIT_WAITING if plan.problems or plan.blocked else EXIT_OK
    if plan.blocked:
        _print("nothing written: the report says what the model cannot express")
    elif write:
        try:
            written = helmfile_import.write_plan(plan, force=force)
        except helmfile_import.FilesExist as exc:
            raise CommandFailed(EXIT_INVALID, str(exc)) from None
        _print([f"wrote {path}" for path in written])
        names = " ".join(e.name for e in plan.environments)
        _print(f"next: python starter.py validate ENV (for {names})")
    else:
        _print("nothing written (plan only): run again with --write to write these files")
    if plan.problems:
        _print(f"{plan.problems} problem(s) found (exit 2)")
    raise typer.Exit(code)


# --- provisioning and upgrade runs: operations/actions.py ------------------------------


@app.command()
def provision(
    ctx: typer.Context,
    name: EnvArg,
    environments_dir: EnvDirOpt = None,
    no_wait: NoWaitOpt = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Validate, render and run the read-only preflight only."),
    ] = False,
    update_run: Annotated[
        bool,
        typer.Option(
            "--update-run",
            help="A run waits with another declaration: hand it this one; its waiting step "
            "runs again with it (steps already done are kept).",
        ),
    ] = False,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="A run goes with another declaration: abort it and start a new one with this one.",
        ),
    ] = False,
    by: ByOpt = "",
) -> None:
    """Provision ENV: start provision-ENV (or attach to the running one) and follow it.

    A run that is going with another declaration (the files changed since it started) is not
    attached to silently: the differing keys are printed with the two ways on, --update-run
    and --restart, and the command exits 2.

    Exits 0 when done, 1 when failed or aborted, 2 when a step waits for an operator
    (the commands that unblock it are printed), 3 for invalid input.
    """
    if update_run and restart:
        raise CommandFailed(EXIT_INVALID, "--update-run and --restart exclude each other")
    operator = _operator(by)
    env = _prepare(name, environments_dir).env
    redeclare = (
        run_ops.Redeclare.UPDATE_RUN
        if update_run
        else run_ops.Redeclare.RESTART
        if restart
        else run_ops.Redeclare.ASK
    )
    _run(
        ctx,
        lambda client, settings: actions.provision(
            client,
            settings,
            env,
            by=operator,
            dry_run=dry_run,
            redeclare=redeclare,
            follow_run=not no_wait,
            environments_dir=environments_dir,
        ),
        start_embedded=True,
    )


def _run_kind(upgrade: bool, dry_run: bool = False) -> actions.RunKind:
    if upgrade and dry_run:
        raise CommandFailed(EXIT_INVALID, "--upgrade and --dry-run exclude each other")
    if upgrade:
        return actions.RunKind.UPGRADE
    return actions.RunKind.DRY_RUN if dry_run else actions.RunKind.PROVISION


@app.command()
def status(
    ctx: typer.Context, name: EnvArg, upgrade: UpgradeRunOpt = False, dry_run: DryRunRunOpt = False
) -> None:
    """Show every step of provision-ENV (or, with --upgrade, upgrade-ENV): status, runs,
    last error, what it changed."""
    kind = _run_kind(upgrade, dry_run)
    _run(
        ctx,
        lambda client, settings: actions.status(
            client, name, kind, settings.task_queue, by=_operator()
        ),
        start_embedded=False,
    )


def _action_command(action: OperatorAction) -> None:
    def command(
        ctx: typer.Context,
        name: EnvArg,
        by: ByOpt = "",
        reason: ReasonOpt = "",
        no_wait: NoWaitOpt = action not in actions.FOLLOWS_BY_DEFAULT,
        upgrade: UpgradeRunOpt = False,
        dry_run: DryRunRunOpt = False,
    ) -> None:
        request = _request(by, reason)
        kind = _run_kind(upgrade, dry_run)
        _run(
            ctx,
            lambda client, settings: actions.act(
                client,
                settings,
                name,
                kind,
                action,
                request,
                follow_run=not no_wait,
                by=_operator(),
            ),
            start_embedded=False,
        )

    command.__doc__ = actions.ACTION_HELP[action]
    app.command(name=action.value)(command)


for _action in OperatorAction:
    _action_command(_action)


@app.command()
def upgrade(
    ctx: typer.Context,
    name: EnvArg,
    environments_dir: EnvDirOpt = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print the hops from what runs now to the declared chart; change nothing.",
        ),
    ] = False,
    no_wait: NoWaitOpt = False,
    by: ByOpt = "",
) -> None:
    """Move ENV's cluster to its declared chart.version: one minor at a time, schema first.

    Edit chart.version in the environment file, look at the plan (`--plan`), then run it.
    Each hop: approval (when approval_required), an RDS snapshot, the schema Job, helm
    upgrade, frontend health and version, soak. Steer it like provisioning, with --upgrade:
    `python starter.py retry ENV --upgrade`.

    --plan exits 2 when there are hops to apply, 0 when the cluster runs the declared chart,
    1 when the upgrade is refused (a downgrade, nothing deployed). Without --plan: 0 done,
    1 failed, aborted or refused, 2 waiting for an operator, 3 invalid input.
    """
    operator = _operator(by)
    env = _prepare(name, environments_dir).env
    _run(
        ctx,
        lambda client, settings: (
            actions.upgrade_plan(client, settings, env, by=operator)
            if plan
            else actions.upgrade_apply(client, settings, env, by=operator, follow_run=not no_wait)
        ),
        start_embedded=True,
    )


# --- drift: the drift-check workflow and its schedule -----------------------------------

DRIFT_EXIT = {
    DriftState.IN_SYNC: EXIT_OK,
    DriftState.REPAIRED: EXIT_OK,
    DriftState.DRIFTED: EXIT_DRIFTED,
    DriftState.REPAIR_FAILED: EXIT_FAILED,
    DriftState.CHECK_FAILED: EXIT_FAILED,
    DriftState.WAITING_FOR_APPROVAL: EXIT_WAITING,
}


class DriftOutput(StrEnum):
    TEXT = "text"
    JSON = "json"


OutputOpt = Annotated[
    DriftOutput,
    typer.Option(
        "--output",
        "-o",
        help="text: the report for people; json: one record per difference (step, kind, "
        "namespace, name, path, live, declared, ignored, repairable, how, message, checked), "
        "for scripts and alerting (docs/drift.md: 'Drift records'). Progress lines go to stderr.",
    ),
]


@app.command()
def drift(
    ctx: typer.Context,
    name: EnvArg,
    environments_dir: EnvDirOpt = None,
    policy: PolicyOpt = None,
    no_wait: NoWaitOpt = False,
    by: ByOpt = "",
    output: OutputOpt = DriftOutput.TEXT,
) -> None:
    """Compare ENV's declared state with what is live, now, and report or repair the drift.

    Compared: the CA bundle ConfigMap, the DB Secret, the helm release, every object the chart
    installed (field by field; drift_check.ignore lists fields other controllers own), the
    Temporal namespaces, and the running cluster (frontend health, server version, history
    shards, schema versions). Each difference says whether `--policy remediate` repairs it.

    Exits 0 when in sync (or repaired), 4 when drift was found and not repaired, 1 when a
    check could not run (or could not read something) or a repair left differences, 2 when it
    waits for `approve` (policy ask), 3 for invalid input.
    """
    operator = _operator(by)
    env = _prepare(name, environments_dir).env
    as_json = output == DriftOutput.JSON
    info = _eprint if as_json else _print

    def report(result: DriftCheckResult, last: list[str]) -> None:
        if as_json:
            sys.stdout.write(render.drift_json(result) + "\n")
            info(last)
        else:
            _print([*render.drift_lines(result), *last])

    async def body(client: Client, settings: ClientSettings) -> int:
        handle = await drift_ops.start_check(client, settings, env, policy=policy, by=operator)
        info(f"drift check {handle.id} on {settings.address}")
        if url := settings.workflow_url(handle.id):
            info(f"Web UI: {url}")
        if no_wait:
            return EXIT_OK
        async for event in drift_ops.follow_check(handle, settings.task_queue):
            match event:
                case drift_ops.CheckWaiting(progress):
                    waits = f"\n{handle.id} found drift and waits for approval to repair it:"
                    commands = drift_approval_commands(env.name, handle.id, _operator())
                    report(progress, [waits, *commands])
                    return EXIT_WAITING
                case drift_ops.StepChecked(finding):
                    _eprint(f"  checked:{render.drift_step_line(finding)}")
                case drift_ops.CheckFinished(result):
                    state = f"{result.state.value} (policy {result.policy.value})"
                    report(result, [f"\n{env.name}: {state}."])
                    return DRIFT_EXIT[result.state]
                case run_ops.WorkerMissing(queue):
                    info(
                        f"   no worker answers on task queue {queue}: is `python worker.py` running?"
                    )
                case run_ops.WorkerBack():
                    info("   a worker answers again")
        return EXIT_FAILED

    _connected(ctx, body, start_embedded=True)


@app.command()
def schedule(
    ctx: typer.Context,
    name: EnvArg,
    environments_dir: EnvDirOpt = None,
    policy: PolicyOpt = None,
    by: ByOpt = "",
) -> None:
    """Run the drift check of ENV every drift_check.interval (a Temporal Schedule).

    The schedule carries a snapshot of the environment files: run this again after editing
    them. Creates the schedule, or updates it in place.
    """
    operator = _operator(by)
    env = _prepare(name, environments_dir).env

    async def body(client: Client, settings: ClientSettings) -> int:
        upserted = await drift_ops.upsert_schedule(
            client, settings, env, policy=policy, by=operator
        )
        effective = policy or env.drift_check.policy
        next_run = (
            f", next run {upserted.next_run:%Y-%m-%d %H:%M:%S %Z}" if upserted.next_run else ""
        )
        _print(
            f"schedule {upserted.schedule_id} {'created' if upserted.created else 'updated'}: "
            f"drift check every {format_duration(env.drift_check.interval)}, policy "
            f"{effective.value}{next_run}"
        )
        _print(f"  temporal schedule describe --schedule-id {upserted.schedule_id}")
        return EXIT_OK

    _connected(ctx, body, start_embedded=True)


@app.command(name="approve-drift")
def approve_drift(ctx: typer.Context, name: EnvArg, by: ByOpt = "", reason: ReasonOpt = "") -> None:
    """Approve the repair that ENV's drift checks wait for (policy ask), started by hand or
    by the schedule. Exits 1 when none waits."""

    request = _request(by, reason)

    async def body(client: Client, settings: ClientSettings) -> int:
        approved = await drift_ops.approve_waiting(client, name, request, settings.task_queue)
        if not approved:
            err.print(f"no drift check of {name} waits for approval", markup=False)
            return EXIT_FAILED
        for workflow_id in approved:
            _print(f"sent approve to {workflow_id}")
        return EXIT_OK

    _connected(ctx, body, start_embedded=False)


@app.command()
def unschedule(ctx: typer.Context, name: EnvArg) -> None:
    """Delete ENV's drift-check schedule (nothing to delete is fine)."""

    async def body(client: Client, settings: ClientSettings) -> int:
        schedule_id = drift_schedule_id(name)
        if await drift_ops.delete_schedule(client, name):
            _print(f"schedule {schedule_id} deleted")
        else:
            _print(f"schedule {schedule_id} does not exist")
        return EXIT_OK

    _connected(ctx, body, start_embedded=False)


# --- entry points -----------------------------------------------------------------------


def main(
    argv: Sequence[str] | None = None,
    *,
    client: Client | None = None,
    settings: ClientSettings | None = None,
) -> int:
    """Run one command and return its exit code. `client`/`settings` can be injected (tests);
    otherwise the standard client settings are read once, here."""
    state = CliState(settings=settings, client=client)
    try:
        code = app(
            args=list(sys.argv[1:] if argv is None else argv),
            prog_name="starter.py",
            obj=state,
            standalone_mode=False,
        )
    except typer.Exit as exc:
        return exc.exit_code
    except CommandFailed as exc:
        err.print(str(exc), markup=False, highlight=False)
        return exc.code
    except typer.Abort:
        err.print("aborted", markup=False)
        return EXIT_FAILED
    except typer.TyperException as exc:
        # Usage errors (unknown option, missing argument, bad value): typer's own exit code
        # would be 2, which means "waiting for an operator" here; they are invalid input.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(str(exc), markup=False, highlight=False)
        return EXIT_INVALID
    return code if isinstance(code, int) else EXIT_OK


def cli() -> NoReturn:
    """The console script: run, then end with the command's real status."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal SDK's runtime can abort at interpreter finalization (PyGILState_Release,
    # a known open SDK issue, exit 134): end with the command's real status instead.
    os._exit(code)


if __name__ == "__main__":
    cli()
