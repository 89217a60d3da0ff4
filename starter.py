"""temporal-bootstrap operator CLI.

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

Every operator action is also a temporal CLI signal, e.g.
    temporal workflow signal --workflow-id provision-staging --name approve --input '{"by": "alice"}'
    temporal workflow query --workflow-id provision-staging --type progress

The bootstrap server comes from TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, TEMPORAL_TLS_*,
TEMPORAL_API_KEY); without it, the embedded local dev server is used (started if needed).

Exit codes (stable, for scripts): 0 done (drift: in sync or repaired), 1 failed or aborted
(drift: a check failed), 2 waiting for an operator, 3 invalid input (bad environment file,
unknown environment), 4 drift found and not repaired.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

import bootstrap_server
from contracts.bootstrap import (
    BootstrapInput,
    BootstrapProgress,
    BootstrapResult,
    RunState,
    StepProgress,
    StepStatus,
    bootstrap_workflow_id,
)
from contracts.drift_check import (
    DriftCheckInput,
    DriftCheckResult,
    DriftState,
    FindingStatus,
    drift_check_workflow_id,
    drift_schedule_id,
)
from contracts.operator import OperatorAction, OperatorRequest
from declared_state.loader import DEFAULT_DIR, InvalidEnvironment, load_environment
from declared_state.models import DriftPolicy, Environment, format_duration
from workflows.bootstrap import BootstrapWorkflow
from workflows.drift_check import DriftCheckWorkflow

EXIT_OK, EXIT_FAILED, EXIT_WAITING, EXIT_INVALID, EXIT_DRIFTED = 0, 1, 2, 3, 4

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
    if name == "local":
        # The local environment lives in the local stack: use its addresses unless set.
        bootstrap_server.apply_local_stack_env()
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


# --- provisioning: the bootstrap workflow ----------------------------------------------

NoWaitOpt = Annotated[
    bool, typer.Option("--no-wait", help="Return at once instead of following the run.")
]
ByOpt = Annotated[str, typer.Option("--by", help="Who acts (recorded in the workflow's history).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Free text recorded with the action.")]
STEP_ICONS = {
    "pending": " ",
    "running": "…",
    "waiting for operator": "!",
    "done": "✓",
    "skipped": "-",
    "failed": "✗",
}


def _operator() -> str:
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "operator"


def _settings(env_name: str, start_embedded: bool) -> bootstrap_server.ClientSettings:
    if env_name == "local":
        # The local environment lives in the local stack: use its addresses unless set.
        bootstrap_server.apply_local_stack_env()
    settings = bootstrap_server.resolve(start_embedded=start_embedded)
    if settings is None:
        err.print(
            "no bootstrap server: set TEMPORAL_ADDRESS, or start `python worker.py` "
            "(it starts the embedded local server)",
            markup=False,
        )
        raise typer.Exit(EXIT_FAILED)
    return settings


async def _handle(
    env_name: str, start_embedded: bool = False
) -> tuple[Any, bootstrap_server.ClientSettings]:
    settings = _settings(env_name, start_embedded)
    client = await settings.connect()
    return client.get_workflow_handle(
        bootstrap_workflow_id(env_name), result_type=BootstrapResult
    ), settings


def _signal_commands(env_name: str, allowed: tuple[OperatorAction, ...]) -> list[str]:
    wid = bootstrap_workflow_id(env_name)
    actions = [a.value for a in allowed]
    lines = []
    for action in actions:
        lines.append(f"  python starter.py {action} {env_name}")
        lines.append(
            f"  temporal workflow signal --workflow-id {wid} --name {action} "
            f'--input \'{{"by": "{_operator()}"}}\''
        )
    return lines


def _print_step(step: StepProgress) -> None:
    icon = STEP_ICONS.get(step.status.value, "?")
    line = f" {icon} {step.name:<22} {step.status.value}"
    if step.attempts > 1:
        line += f" (run {step.attempts})"
    if step.summary:
        line += f": {step.summary}"
    if step.status in (StepStatus.WAITING_FOR_OPERATOR, StepStatus.FAILED) and step.last_error:
        line += f"\n     {step.last_error_type}: {step.last_error}"
        if step.retry_state and step.retry_state != "NON_RETRYABLE_FAILURE":
            line += f" (retries ended: {step.retry_state})"
    out.print(line, markup=False, highlight=False)


# Queries need a worker; one that does not answer in this long is treated as absent.
QUERY_TIMEOUT = timedelta(seconds=10)


async def _pending_activity_note(handle: Any) -> str | None:
    """What the running activity last reported (its heartbeat phase or last answer) and,
    when it is retrying, its attempt and last error; from the server, no worker needed."""
    try:
        desc = await handle.describe()
    except RPCError:
        return None
    for pending in desc.raw_description.pending_activities:
        parts = []
        if pending.HasField("heartbeat_details"):
            details = await handle._client.data_converter.decode(pending.heartbeat_details.payloads)
            latest = details[-1] if details and isinstance(details[-1], dict) else {}
            if reported := latest.get("phase") or latest.get("last_answer"):
                parts.append(str(reported))
        if pending.attempt > 1:
            last = pending.last_failure.message if pending.HasField("last_failure") else ""
            parts.append(f"attempt {pending.attempt}" + (f", last error: {last}" if last else ""))
        if parts:
            return f"{pending.activity_type.name}: {'; '.join(parts)}"
    return None


async def _follow(handle: Any, env_name: str, settings: bootstrap_server.ClientSettings) -> int:
    """Print step changes until the run ends or waits for an operator; return the exit code."""
    shown: dict[str, tuple[str, int]] = {}
    last_note = None
    worker_missing = False
    while True:
        try:
            progress: BootstrapProgress = await handle.query(
                BootstrapWorkflow.progress,
                result_type=BootstrapProgress,
                rpc_timeout=QUERY_TIMEOUT,
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                err.print(f"cannot query {handle.id}: {exc.message}", markup=False)
                return EXIT_FAILED
            if not await _is_running(handle):
                break
            if not worker_missing:
                out.print(
                    f"   no worker answers on task queue {settings.task_queue}: is "
                    "`python worker.py` running? (still following; the run waits for it)",
                    markup=False,
                    highlight=False,
                )
                worker_missing = True
            await asyncio.sleep(2)
            continue
        if worker_missing:
            out.print("   a worker answers again", markup=False, highlight=False)
            worker_missing = False
        for step in progress.steps:
            key = (step.status.value, step.attempts)
            if shown.get(step.name) != key and step.status != StepStatus.PENDING:
                shown[step.name] = key
                _print_step(step)
        if progress.state == RunState.WAITING_FOR_OPERATOR:
            out.print(f"\n{handle.id} waits for an operator: {progress.waiting_for}", markup=False)
            out.print("unblock it with one of:", markup=False)
            for line in _signal_commands(env_name, progress.allowed_actions):
                out.print(line, markup=False, highlight=False)
            return EXIT_WAITING
        if progress.state in (RunState.DONE, RunState.ABORTED):
            break
        note = await _pending_activity_note(handle)
        if note and note != last_note:
            out.print(f"   {note}", markup=False, highlight=False)
            last_note = note
        await asyncio.sleep(1)
    return await _final(handle, settings)


async def _final(handle: Any, settings: bootstrap_server.ClientSettings) -> int:
    url = settings.workflow_url(handle.id)
    try:
        result: BootstrapResult = await handle.result()
    except WorkflowFailureError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        err.print(f"{handle.id} failed: {message}", markup=False, highlight=False)
        if url:
            out.print(f"Web UI: {url}", markup=False)
        return EXIT_FAILED
    changed = "changed" if result.changed else "nothing changed"
    out.print(f"\n{handle.id} done ({changed}).", markup=False)
    if url:
        out.print(f"Web UI: {url}", markup=False)
    return EXIT_OK


async def _provision(env: Environment, no_wait: bool, dry_run: bool, by: str) -> int:
    handle, settings = await _handle(env.name, start_embedded=True)
    client = handle._client
    snapshot = BootstrapInput(environment=env, requested_by=by, dry_run=dry_run)
    workflow_id = bootstrap_workflow_id(env.name) + ("-dry-run" if dry_run else "")
    running = await _is_running(client.get_workflow_handle(workflow_id))
    handle = await client.start_workflow(
        BootstrapWorkflow.run,
        snapshot,
        id=workflow_id,
        task_queue=settings.task_queue,
        # A second `provision` while one runs attaches to it instead of starting another.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    desc = await handle.describe()
    verb = "attached to the running" if running else "started"
    out.print(f"{verb} {workflow_id} (run {desc.run_id}) on {settings.address}", markup=False)
    if url := settings.workflow_url(workflow_id):
        out.print(f"Web UI: {url}", markup=False)
    if no_wait:
        return EXIT_OK
    return await _follow(handle, env.name, settings)


@app.command()
def provision(
    name: EnvArg,
    environments_dir: EnvDirOpt = DEFAULT_DIR,
    no_wait: NoWaitOpt = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Validate, render and run the read-only preflight only."),
    ] = False,
    by: ByOpt = "",
) -> None:
    """Provision ENV: start provision-ENV (or attach to the running one) and follow it.

    Exits 0 when done, 1 when failed or aborted, 2 when a step waits for an operator
    (the commands that unblock it are printed), 3 for invalid input.
    """
    env = load_or_exit(name, environments_dir)
    render_or_exit(env)  # bad values fail here, before anything starts
    raise typer.Exit(asyncio.run(_provision(env, no_wait, dry_run, by or _operator())))


@app.command()
def status(name: EnvArg) -> None:
    """Show every step of provision-ENV: status, runs, last error, what it changed."""

    async def run() -> int:
        handle, settings = await _handle(name)
        try:
            progress: BootstrapProgress = await handle.query(
                BootstrapWorkflow.progress, result_type=BootstrapProgress, rpc_timeout=QUERY_TIMEOUT
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                err.print(f"no provisioning run {handle.id}: {exc.message}", markup=False)
            else:
                err.print(
                    f"{handle.id} exists but no worker answers its progress query on task queue "
                    f"{settings.task_queue}: start `python worker.py` ({exc.message})",
                    markup=False,
                )
            return EXIT_FAILED
        table = Table(title=f"{handle.id}: {progress.state.value}", title_justify="left")
        for column in ("step", "status", "runs", "changed", "summary / last error"):
            table.add_column(column)
        for step in progress.steps:
            text = step.summary
            if step.last_error and step.status != StepStatus.DONE:
                text = f"{step.last_error_type}: {step.last_error}"
            changed = "" if step.changed is None else ("yes" if step.changed else "no")
            table.add_row(step.name, step.status.value, str(step.attempts), changed, text)
        out.print(table)
        if progress.state == RunState.WAITING_FOR_OPERATOR:
            out.print(f"waiting for: {progress.waiting_for}", markup=False)
            for line in _signal_commands(name, progress.allowed_actions):
                out.print(line, markup=False, highlight=False)
            return EXIT_WAITING
        return EXIT_FAILED if progress.state == RunState.ABORTED else EXIT_OK

    raise typer.Exit(asyncio.run(run()))


def _signal_command(signal_name: str, follow_by_default: bool, doc: str) -> None:
    def command(
        name: EnvArg,
        by: ByOpt = "",
        reason: ReasonOpt = "",
        no_wait: NoWaitOpt = not follow_by_default,
    ) -> None:
        async def run() -> int:
            handle, settings = await _handle(name)
            try:
                await handle.signal(
                    signal_name, OperatorRequest(by=by or _operator(), reason=reason)
                )
            except RPCError as exc:
                err.print(f"cannot signal {handle.id}: {exc.message}", markup=False)
                return EXIT_FAILED
            out.print(f"sent {signal_name} to {handle.id}", markup=False)
            if no_wait:
                return EXIT_OK
            if signal_name == "abort":
                return await _final(handle, settings)
            await asyncio.sleep(0.5)  # let the workflow act on the signal before following
            return await _follow(handle, name, settings)

        raise typer.Exit(asyncio.run(run()))

    command.__doc__ = doc
    app.command(name=signal_name)(command)


_signal_command("approve", True, "Approve provision-ENV's install (the gate before install_chart).")
_signal_command("retry", True, "Run the step that waits for an operator again.")
_signal_command("skip", True, "Skip the step that waits for an operator (recorded in the result).")
_signal_command("abort", True, "Abort provision-ENV; it fails with a list of what was done.")
_signal_command("pause", False, "Hold provision-ENV before its next step.")
_signal_command("resume", True, "Let a paused provision-ENV go on.")


# --- drift: the drift-check workflow and its schedule -----------------------------------

PolicyOpt = Annotated[
    DriftPolicy | None,
    typer.Option(
        "--policy",
        help="report: list the drift; remediate: repair it; ask: wait for `approve`, then "
        "repair. Default: the environment's drift_check.policy.",
    ),
]
FINDING_ICONS = {
    FindingStatus.IN_SYNC: "✓",
    FindingStatus.DRIFTED: "≠",
    FindingStatus.CHECK_FAILED: "?",
    FindingStatus.REPAIRED: "✓",
    FindingStatus.REPAIR_FAILED: "✗",
}
DRIFT_EXIT = {
    DriftState.IN_SYNC: EXIT_OK,
    DriftState.REPAIRED: EXIT_OK,
    DriftState.DRIFTED: EXIT_DRIFTED,
    DriftState.CHECK_FAILED: EXIT_FAILED,
    DriftState.WAITING_FOR_APPROVAL: EXIT_WAITING,
}


def _print_drift(result: DriftCheckResult) -> None:
    for finding in result.findings:
        line = f" {FINDING_ICONS[finding.status]} {finding.step:<22} {finding.status.value}"
        if finding.action and finding.status != FindingStatus.IN_SYNC:
            line += f" ({'did' if finding.status == FindingStatus.REPAIRED else 'would'}: "
            line += f"{finding.action})"
        out.print(line, markup=False, highlight=False)
        for difference in finding.drift:
            out.print(f"     {difference}", markup=False, highlight=False)
        if finding.error:
            out.print(f"     {finding.error}", markup=False, highlight=False)


async def _drift(env: Environment, policy: DriftPolicy | None, no_wait: bool, by: str) -> int:
    settings = _settings(env.name, start_embedded=True)
    client = await settings.connect()
    workflow_id = drift_check_workflow_id(env.name)
    handle = await client.start_workflow(
        DriftCheckWorkflow.run,
        DriftCheckInput(environment=env, requested_by=by, policy=policy),
        id=workflow_id,
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    out.print(f"drift check {workflow_id} on {settings.address}", markup=False)
    if url := settings.workflow_url(workflow_id):
        out.print(f"Web UI: {url}", markup=False)
    if no_wait:
        return EXIT_OK
    while True:
        progress = await handle.query(DriftCheckWorkflow.progress)
        if progress.state == DriftState.WAITING_FOR_APPROVAL:
            _print_drift(progress)
            out.print(f"\n{workflow_id} found drift and waits for approval to repair it:")
            out.print(f"  python starter.py approve-drift {env.name}", markup=False)
            out.print(
                f"  temporal workflow signal --workflow-id {workflow_id} --name approve "
                f'--input \'{{"by": "{_operator()}"}}\'',
                markup=False,
                highlight=False,
            )
            return EXIT_WAITING
        if progress.state not in (DriftState.CHECKING, DriftState.REPAIRING):
            break
        await asyncio.sleep(1)
    result = await handle.result()
    _print_drift(result)
    out.print(f"\n{env.name}: {result.state.value} (policy {result.policy.value}).", markup=False)
    return DRIFT_EXIT[result.state]


@app.command()
def drift(
    name: EnvArg,
    environments_dir: EnvDirOpt = DEFAULT_DIR,
    policy: PolicyOpt = None,
    no_wait: NoWaitOpt = False,
    by: ByOpt = "",
) -> None:
    """Compare ENV's declared state with what is live, now, and report or repair the drift.

    Exits 0 when in sync (or repaired), 4 when drift was found and not repaired, 1 when a
    check could not run, 2 when it waits for `approve` (policy ask), 3 for invalid input.
    """
    env = load_or_exit(name, environments_dir)
    render_or_exit(env)
    raise typer.Exit(asyncio.run(_drift(env, policy, no_wait, by or _operator())))


@app.command()
def schedule(
    name: EnvArg,
    environments_dir: EnvDirOpt = DEFAULT_DIR,
    policy: PolicyOpt = None,
    by: ByOpt = "",
) -> None:
    """Run the drift check of ENV every drift_check.interval (a Temporal Schedule).

    The schedule carries a snapshot of the environment files: run this again after editing
    them. Creates the schedule, or updates it in place.
    """
    env = load_or_exit(name, environments_dir)
    render_or_exit(env)

    async def run() -> int:
        settings = _settings(env.name, start_embedded=True)
        client = await settings.connect()
        schedule_id = drift_schedule_id(env.name)
        snapshot = DriftCheckInput(environment=env, requested_by=by or _operator(), policy=policy)
        definition = Schedule(
            action=ScheduleActionStartWorkflow(
                DriftCheckWorkflow.run,
                snapshot,
                id=f"{schedule_id}-scheduled",
                task_queue=settings.task_queue,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=env.drift_check.interval)]),
            # A check still waiting for approval is not stacked with another one.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(note=f"declared by {snapshot.requested_by}"),
        )
        try:
            handle = await client.create_schedule(schedule_id, definition)
            verb = "created"
        except ScheduleAlreadyRunningError:
            handle = client.get_schedule_handle(schedule_id)
            await handle.update(lambda _: ScheduleUpdate(schedule=definition))
            verb = "updated"
        description = await handle.describe()
        upcoming = description.info.next_action_times[:1]
        out.print(
            f"schedule {schedule_id} {verb}: drift check every "
            f"{format_duration(env.drift_check.interval)}, policy "
            f"{snapshot.effective_policy.value}"
            + (f", next run {upcoming[0]:%Y-%m-%d %H:%M:%S %Z}" if upcoming else ""),
            markup=False,
        )
        out.print(f"  temporal schedule describe --schedule-id {schedule_id}", markup=False)
        return EXIT_OK

    raise typer.Exit(asyncio.run(run()))


@app.command(name="approve-drift")
def approve_drift(name: EnvArg, by: ByOpt = "", reason: ReasonOpt = "") -> None:
    """Approve the repair that ENV's drift checks wait for (policy ask), started by hand or
    by the schedule. Exits 1 when none waits."""

    async def run() -> int:
        client = await _settings(name, start_embedded=False).connect()
        own = drift_check_workflow_id(name)
        waiting = []
        running = client.list_workflows(
            "WorkflowType = 'DriftCheckWorkflow' AND ExecutionStatus = 'Running'"
        )
        async for execution in running:
            if execution.id != own and not execution.id.startswith(f"{own}-scheduled"):
                continue
            handle = client.get_workflow_handle_for(
                DriftCheckWorkflow.run, execution.id, run_id=execution.run_id
            )
            progress = await handle.query(DriftCheckWorkflow.progress)
            if progress.state == DriftState.WAITING_FOR_APPROVAL:
                waiting.append(handle)
        if not waiting:
            err.print(f"no drift check of {name} waits for approval", markup=False)
            return EXIT_FAILED
        for handle in waiting:
            await handle.signal(
                DriftCheckWorkflow.approve, OperatorRequest(by=by or _operator(), reason=reason)
            )
            out.print(f"sent approve to {handle.id}", markup=False)
        return EXIT_OK

    raise typer.Exit(asyncio.run(run()))


@app.command()
def unschedule(name: EnvArg) -> None:
    """Delete ENV's drift-check schedule (nothing to delete is fine)."""

    async def run() -> int:
        client = await _settings(name, start_embedded=False).connect()
        schedule_id = drift_schedule_id(name)
        try:
            await client.get_schedule_handle(schedule_id).delete()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                err.print(f"cannot delete schedule {schedule_id}: {exc.message}", markup=False)
                return EXIT_FAILED
            out.print(f"schedule {schedule_id} does not exist", markup=False)
            return EXIT_OK
        out.print(f"schedule {schedule_id} deleted", markup=False)
        return EXIT_OK

    raise typer.Exit(asyncio.run(run()))


async def _is_running(handle: Any) -> bool:
    try:
        return bool((await handle.describe()).status == WorkflowExecutionStatus.RUNNING)
    except RPCError:
        return False


def main() -> None:
    try:
        app()
        code = EXIT_OK
    except SystemExit as exc:
        code = (
            exc.code
            if isinstance(exc.code, int)
            else (EXIT_OK if exc.code is None else EXIT_FAILED)
        )
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal SDK's runtime can abort at interpreter finalization (PyGILState_Release,
    # a known open SDK issue, exit 134): end with the command's real status instead.
    os._exit(code)


if __name__ == "__main__":
    main()
