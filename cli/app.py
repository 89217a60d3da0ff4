"""What every command shares: the typer app and its usage text, the exit codes, the options
several commands take, and the few helpers that make a command thin (prepare an environment
once, connect, run one operation and print what it says, exit with its outcome's code).

Failure modes are mapped here, once: invalid input (a bad ENV, a bad environment file, an
argument over its limit) is `CommandFailed(EXIT_INVALID)` before anything is read from or
sent to a server; a missing or unreachable bootstrap server, a refused action and an
operation's error each end in one line on stderr and their exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from temporalio.client import Client

from contracts.operator import OperatorRequest
from declared_state.loader import InvalidEnvironment
from declared_state.models import (
    DriftPolicy,
    environment_name_problem,
)
from declared_state.paths import ENVIRONMENTS_VARIABLE, environments_dir
from operations import environments
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

USAGE = """temporal-bootstrap operator CLI (also installed as the `temporal-bootstrap` command).

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

EXIT_OK, EXIT_FAILED, EXIT_WAITING, EXIT_INVALID, EXIT_DRIFTED = 0, 1, 2, 3, 4
EXIT_CODES = {
    Outcome.DONE: EXIT_OK,
    Outcome.FAILED: EXIT_FAILED,
    Outcome.WAITING: EXIT_WAITING,
    Outcome.INVALID: EXIT_INVALID,
    Outcome.DRIFTED: EXIT_DRIFTED,
}

app = typer.Typer(
    help=USAGE,
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


def operator_name(by: str = "") -> str:
    return _limited("--by", by) or os.environ.get("USER") or os.environ.get("LOGNAME") or "operator"


def environments_folder(directory: Path | None) -> Path:
    return directory or environments_dir()


def prepare(name: str, directory: Path | None) -> environments.Prepared:
    """Load, validate and render an environment once; on any problem print every one of
    them and exit 3 (before anything starts)."""
    try:
        return environments.prepare(name, environments_folder(directory))
    except InvalidEnvironment as exc:
        lines = [f"invalid environment {name!r}:", *(f"  {p}" for p in exc.problems)]
        raise CommandFailed(EXIT_INVALID, "\n".join(lines)) from None
    except environments.RenderFailed as exc:
        raise CommandFailed(EXIT_INVALID, str(exc)) from None


def connected(
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


def run_operation(
    ctx: typer.Context,
    operation: Callable[[Client, ClientSettings], AsyncIterator[Say | Outcome]],
    *,
    start_embedded: bool,
) -> NoReturn:
    """Run one operation: print what it says, exit with its outcome's code."""
    connected(
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


def operator_request(by: str, reason: str) -> OperatorRequest:
    """The request an operator action carries."""
    _limited("--reason", reason)
    return OperatorRequest(by=operator_name(by), reason=reason)


def say(lines: str | Sequence[str]) -> None:
    for line in [lines] if isinstance(lines, str) else lines:
        out.print(line, markup=False, highlight=False)


def say_err(lines: str | Sequence[str]) -> None:
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
