"""temporal-bootstrap operator CLI (also installed as the `temporal-bootstrap` command).

\b
    python starter.py validate staging     check an environment and render it offline
    python starter.py render staging       print the manifests helm would apply
    python starter.py provision staging    start (or attach to) provision-staging and follow it
    python starter.py status staging       every step, its attempts, errors and changes
    python starter.py approve staging      open the approval gate before install_chart
    python starter.py retry|skip|abort staging   answer a step that waits for an operator
    python starter.py pause|resume staging       hold the run between steps
    python starter.py drift staging        compare declared and live state now (report/repair)
    python starter.py schedule staging     run that check every drift_check.interval
    python starter.py unschedule staging   stop the scheduled check
    python starter.py approve-drift staging   let a drift check (policy ask) repair

Every operator action is also a temporal CLI update (refused with the reason when the run
cannot take it now) and a signal of the same name (refusals show in `status`), e.g.
    temporal workflow update execute --workflow-id provision-staging --name approve --input '{"by": "alice"}'
    temporal workflow signal --workflow-id provision-staging --name approve --input '{"by": "alice"}'
    temporal workflow query --workflow-id provision-staging --type progress

The bootstrap server comes from the standard Temporal client settings (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE);
without an address, the embedded local dev server is used (started if needed). --local-stack
takes the addresses of a running `python -m local_stack up` (the demo).

Exit codes (stable, for scripts): 0 done (drift: in sync or repaired), 1 failed or aborted
(drift: a check failed; no server or worker answers), 2 waiting for an operator (or for a
choice: `provision` of a changed declaration while a run waits), 3 invalid input, nothing
started or changed (bad command line, bad environment file, unknown environment, an action
the run refuses now), 4 drift found and not repaired.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import click
import typer
from rich.console import Console
from temporalio.client import Client
from temporalio.workflow import UpdateMethodMultiParam

from contracts.bootstrap import RunState
from contracts.drift_check import DriftState, drift_schedule_id
from contracts.operator import ActionReceipt, OperatorAction, OperatorRequest
from declared_state.loader import InvalidEnvironment
from declared_state.models import DriftPolicy, Environment, format_duration
from declared_state.paths import ENVIRONMENTS_VARIABLE, environments_dir
from operations import drift as drift_ops
from operations import environments, render
from operations import runs as run_ops
from operations.embedded import EmbeddedServerError
from operations.settings import (
    ClientSettings,
    SettingsError,
    apply_local_stack_env,
    connect_failure,
    resolve,
)
from workflows.bootstrap import BootstrapWorkflow

EXIT_OK, EXIT_FAILED, EXIT_WAITING, EXIT_INVALID, EXIT_DRIFTED = 0, 1, 2, 3, 4

T = TypeVar("T")

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


EnvArg = Annotated[
    str,
    typer.Argument(
        metavar="ENV", help="Environment name: a file environments/<ENV>.yaml (e.g. staging)."
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
    return by or os.environ.get("USER") or os.environ.get("LOGNAME") or "operator"


def _load(name: str, directory: Path | None) -> Environment:
    """Load an environment; on any problem print every one of them and exit 3."""
    try:
        return environments.load(name, directory or environments_dir())
    except InvalidEnvironment as exc:
        lines = [f"invalid environment {name!r}:", *(f"  {p}" for p in exc.problems)]
        raise CommandFailed(EXIT_INVALID, "\n".join(lines)) from None


def _render(env: Environment) -> str:
    try:
        return environments.render(env)
    except environments.RenderFailed as exc:
        raise CommandFailed(EXIT_INVALID, str(exc)) from None


def _run(
    ctx: typer.Context,
    body: Callable[[Client, ClientSettings], Awaitable[int]],
    *,
    start_embedded: bool,
) -> int:
    """Connect (or take the injected client) and run `body`; typed failures become exits."""
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
        return asyncio.run(go())
    except run_ops.ActionRefused as exc:
        raise CommandFailed(EXIT_INVALID, str(exc)) from None
    except run_ops.OperationError as exc:
        raise CommandFailed(EXIT_FAILED, str(exc)) from None


def _print(lines: str | Sequence[str]) -> None:
    for line in [lines] if isinstance(lines, str) else lines:
        out.print(line, markup=False, highlight=False)


# --- environment files ------------------------------------------------------------------


@app.command()
def validate(name: EnvArg, environments_dir: EnvDirOpt = None) -> None:
    """Load and validate ENV, render it with the real chart, and print a short summary."""
    env = _load(name, environments_dir)
    manifests = _render(env)
    out.print(render.summary_table(env.name, environments.summarize(env, manifests)))


@app.command(name="render")
def render_manifests(name: EnvArg, environments_dir: EnvDirOpt = None) -> None:
    """Print the manifests that provisioning ENV would apply (like `helmfile template`)."""
    env = _load(name, environments_dir)
    sys.stdout.write(_render(env))


# --- provisioning: the bootstrap workflow ----------------------------------------------


async def _follow(handle: run_ops.BootstrapHandle, env_name: str, task_queue: str) -> int:
    """Print a run's progress until it ends or waits; the exit code for how it stands."""
    async for event in run_ops.follow(handle, task_queue):
        match event:
            case run_ops.StepChanged(step):
                _print(render.step_line(step))
            case run_ops.ActivityNote(text):
                _print(f"   {text}")
            case run_ops.WorkerMissing(queue):
                _print(
                    f"   no worker answers on task queue {queue}: is `python worker.py` "
                    "running? (still following; the run waits for it)"
                )
            case run_ops.WorkerBack():
                _print("   a worker answers again")
            case run_ops.InputRefused(refused):
                _print(f"   {render.refused_line(refused)}")
            case run_ops.WaitingForOperator(progress):
                _print(f"\n{handle.id} waits for an operator: {progress.waiting_for}")
                _print("unblock it with one of:")
                _print(
                    render.operator_commands(
                        env_name, handle.id, _unblocking(progress.allowed_actions), _operator()
                    )
                )
                return EXIT_WAITING
            case run_ops.Finished(result):
                changed = "changed" if result.changed else "nothing changed"
                _print(f"\n{handle.id} done ({changed}).")
                return EXIT_OK
            case run_ops.Failed(message):
                err.print(message, markup=False, highlight=False)
                return EXIT_FAILED
    return EXIT_FAILED


def _unblocking(allowed: Sequence[OperatorAction]) -> list[OperatorAction]:
    """The actions that answer a wait (pause/resume do not)."""
    return [a for a in allowed if a not in (OperatorAction.PAUSE, OperatorAction.RESUME)]


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
            help="A run goes with another declaration: abort it and start a new run with this one.",
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
    env = _load(name, environments_dir)
    _render(env)  # bad values fail here, before anything starts
    redeclare = (
        run_ops.Redeclare.UPDATE_RUN
        if update_run
        else run_ops.Redeclare.RESTART
        if restart
        else run_ops.Redeclare.ASK
    )

    async def body(client: Client, settings: ClientSettings) -> int:
        try:
            started = await run_ops.start_or_attach(
                client, settings, env, by=_operator(by), dry_run=dry_run, redeclare=redeclare
            )
        except run_ops.DeclarationChanged as changed:
            _print(render.declaration_lines(changed.workflow_id, changed.running, changed.new))
            _print(render.redeclare_commands(env.name, environments_dir, dry_run))
            return EXIT_WAITING
        if started.restarted:
            _print(f"aborted run {started.restarted} of {started.handle.id} (another declaration)")
        if started.redeclared:
            _print(f"{started.handle.id} took the new declaration: {started.redeclared.effect}")
        verb = "attached to the running" if started.attached else "started"
        _print(f"{verb} {started.handle.id} (run {started.run_id}) on {settings.address}")
        url = settings.workflow_url(started.handle.id)
        if url:
            _print(f"Web UI: {url}")
        if no_wait:
            return EXIT_OK
        code = await _follow(started.handle, env.name, settings.task_queue)
        if code != EXIT_WAITING and url:
            _print(f"Web UI: {url}")
        return code

    raise typer.Exit(_run(ctx, body, start_embedded=True))


@app.command()
def status(ctx: typer.Context, name: EnvArg) -> None:
    """Show every step of provision-ENV: status, runs, last error, what it changed."""

    async def body(client: Client, settings: ClientSettings) -> int:
        handle = run_ops.handle_for(client, name)
        progress = await run_ops.progress(handle, settings.task_queue)
        out.print(render.status_table(handle.id, progress))
        if progress.refused:
            _print("operator signals the run did not act on:")
            _print([f"  {render.refused_line(r)}" for r in progress.refused])
        if progress.state == RunState.WAITING_FOR_OPERATOR:
            _print(f"waiting for: {progress.waiting_for}")
            _print(
                render.operator_commands(
                    name, handle.id, _unblocking(progress.allowed_actions), _operator()
                )
            )
            return EXIT_WAITING
        return EXIT_FAILED if progress.state == RunState.ABORTED else EXIT_OK

    raise typer.Exit(_run(ctx, body, start_embedded=False))


_ACTIONS: dict[
    OperatorAction, tuple[UpdateMethodMultiParam[[Any, Any], ActionReceipt], bool, str]
] = {
    OperatorAction.APPROVE: (
        BootstrapWorkflow.approve,
        True,
        "Approve provision-ENV's install (the gate before install_chart).",
    ),
    OperatorAction.RETRY: (
        BootstrapWorkflow.retry,
        True,
        "Run the step that waits for an operator again.",
    ),
    OperatorAction.SKIP: (
        BootstrapWorkflow.skip,
        True,
        "Skip the step that waits for an operator (recorded in the result).",
    ),
    OperatorAction.ABORT: (
        BootstrapWorkflow.abort,
        True,
        "Abort provision-ENV; it fails with a list of what was done.",
    ),
    OperatorAction.PAUSE: (
        BootstrapWorkflow.pause,
        False,
        "Hold provision-ENV before its next step.",
    ),
    OperatorAction.RESUME: (BootstrapWorkflow.resume, True, "Let a paused provision-ENV go on."),
}


def _action_command(action: OperatorAction) -> None:
    method, follow_by_default, doc = _ACTIONS[action]

    def command(
        ctx: typer.Context,
        name: EnvArg,
        by: ByOpt = "",
        reason: ReasonOpt = "",
        no_wait: NoWaitOpt = not follow_by_default,
    ) -> None:
        async def body(client: Client, settings: ClientSettings) -> int:
            handle = run_ops.handle_for(client, name)
            receipt = await run_ops.send(
                handle,
                method,
                OperatorRequest(by=_operator(by), reason=reason),
                task_queue=settings.task_queue,
            )
            _print(f"{handle.id} took {action.value}: {receipt.effect}")
            if no_wait:
                return EXIT_OK
            if action == OperatorAction.ABORT:
                outcome = await run_ops.final(handle)
                if isinstance(outcome, run_ops.Failed):
                    err.print(outcome.message, markup=False, highlight=False)
                    return EXIT_FAILED
                return EXIT_OK
            # The update completed once the run had taken the action: follow from there.
            return await _follow(handle, name, settings.task_queue)

        raise typer.Exit(_run(ctx, body, start_embedded=False))

    command.__doc__ = doc
    app.command(name=action.value)(command)


for _action in OperatorAction:
    _action_command(_action)


# --- drift: the drift-check workflow and its schedule -----------------------------------

DRIFT_EXIT = {
    DriftState.IN_SYNC: EXIT_OK,
    DriftState.REPAIRED: EXIT_OK,
    DriftState.DRIFTED: EXIT_DRIFTED,
    DriftState.CHECK_FAILED: EXIT_FAILED,
    DriftState.WAITING_FOR_APPROVAL: EXIT_WAITING,
}


@app.command()
def drift(
    ctx: typer.Context,
    name: EnvArg,
    environments_dir: EnvDirOpt = None,
    policy: PolicyOpt = None,
    no_wait: NoWaitOpt = False,
    by: ByOpt = "",
) -> None:
    """Compare ENV's declared state with what is live, now, and report or repair the drift.

    Exits 0 when in sync (or repaired), 4 when drift was found and not repaired, 1 when a
    check could not run, 2 when it waits for `approve` (policy ask), 3 for invalid input.
    """
    env = _load(name, environments_dir)
    _render(env)

    async def body(client: Client, settings: ClientSettings) -> int:
        handle = await drift_ops.start_check(client, settings, env, policy=policy, by=_operator(by))
        _print(f"drift check {handle.id} on {settings.address}")
        if url := settings.workflow_url(handle.id):
            _print(f"Web UI: {url}")
        if no_wait:
            return EXIT_OK
        async for event in drift_ops.follow_check(handle, settings.task_queue):
            match event:
                case drift_ops.CheckWaiting(progress):
                    _print(render.drift_lines(progress))
                    _print(f"\n{handle.id} found drift and waits for approval to repair it:")
                    _print(render.drift_approval_commands(env.name, handle.id, _operator()))
                    return EXIT_WAITING
                case drift_ops.CheckFinished(result):
                    _print(render.drift_lines(result))
                    _print(f"\n{env.name}: {result.state.value} (policy {result.policy.value}).")
                    return DRIFT_EXIT[result.state]
                case run_ops.WorkerMissing(queue):
                    _print(
                        f"   no worker answers on task queue {queue}: is `python worker.py` running?"
                    )
                case run_ops.WorkerBack():
                    _print("   a worker answers again")
        return EXIT_FAILED

    raise typer.Exit(_run(ctx, body, start_embedded=True))


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
    env = _load(name, environments_dir)
    _render(env)

    async def body(client: Client, settings: ClientSettings) -> int:
        upserted = await drift_ops.upsert_schedule(
            client, settings, env, policy=policy, by=_operator(by)
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

    raise typer.Exit(_run(ctx, body, start_embedded=True))


@app.command(name="approve-drift")
def approve_drift(ctx: typer.Context, name: EnvArg, by: ByOpt = "", reason: ReasonOpt = "") -> None:
    """Approve the repair that ENV's drift checks wait for (policy ask), started by hand or
    by the schedule. Exits 1 when none waits."""

    async def body(client: Client, settings: ClientSettings) -> int:
        request = OperatorRequest(by=_operator(by), reason=reason)
        approved = await drift_ops.approve_waiting(client, name, request, settings.task_queue)
        if not approved:
            err.print(f"no drift check of {name} waits for approval", markup=False)
            return EXIT_FAILED
        for workflow_id in approved:
            _print(f"sent approve to {workflow_id}")
        return EXIT_OK

    raise typer.Exit(_run(ctx, body, start_embedded=False))


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

    raise typer.Exit(_run(ctx, body, start_embedded=False))


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
    except (click.exceptions.Exit, typer.Exit) as exc:
        return exc.exit_code
    except CommandFailed as exc:
        err.print(str(exc), markup=False, highlight=False)
        return exc.code
    except (click.Abort, typer.Abort):
        err.print("aborted", markup=False)
        return EXIT_FAILED
    except (click.ClickException, typer.TyperException) as exc:
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
