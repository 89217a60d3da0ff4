"""The commands operators run on provisioning and upgrade runs, as operations: each picks the
workflow for the run it addresses, does its one thing, and yields what to show (`Say`) and how
it ended (`Outcome`, operations/outcome.py). The CLI parses arguments, calls one of these and
maps the outcome to an exit code; it imports no workflow.

- `RunKind` names the run an action addresses: `provision-ENV` or `upgrade-ENV`. The
  workflow class (and so the update an action is sent as) comes from it, in one place
  (`WORKFLOWS`), so an action can never address one run with another run's method.
- `act` sends an operator action (`approve`, `retry`, ...) and follows the run from there;
  `status` shows where a run stands; `provision` and `upgrade` start (or attach to) a run and
  follow it; `follow` is the one follow loop: typed events from operations.runs /
  operations.upgrade become lines (operations/render.py) until the run ends or waits.

Failures the caller must map are the typed exceptions of operations.runs (`ActionRefused`:
invalid input, exit 3; any other `OperationError`: failed, exit 1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from contracts.bootstrap import BootstrapProgress, RunState
from contracts.operator import OperatorAction, OperatorRequest, operator_commands
from contracts.upgrade import UpgradeProgress, UpgradeResult
from declared_state.models import Environment
from operations import environments, render, runs, upgrade
from operations.outcome import Outcome, Report, Say, say_all
from operations.settings import ClientSettings
from workflows.bootstrap import BootstrapWorkflow
from workflows.operated import OperatedRun
from workflows.upgrade import UpgradeWorkflow


class RunKind(StrEnum):
    """The run an operator action addresses."""

    PROVISION = "provision"
    DRY_RUN = "dry-run"
    """provision-ENV-dry-run: it may wait for an operator too (#20.4)."""
    UPGRADE = "upgrade"

    @property
    def option(self) -> str:
        """What the starter's commands add to address this run."""
        return {RunKind.UPGRADE: " --upgrade", RunKind.DRY_RUN: " --dry-run"}.get(self, "")

    @property
    def described(self) -> str:
        """How a message names this kind of run ("no upgrade run upgrade-ENV")."""
        return {RunKind.UPGRADE: "upgrade run", RunKind.DRY_RUN: "dry run"}.get(
            self, "provisioning run"
        )


WORKFLOWS: dict[RunKind, type[OperatedRun]] = {
    RunKind.PROVISION: BootstrapWorkflow,
    RunKind.DRY_RUN: BootstrapWorkflow,
    RunKind.UPGRADE: UpgradeWorkflow,
}

ACTION_HELP = {
    OperatorAction.APPROVE: "Approve provision-ENV's install (the gate before install_chart), "
    "or with --upgrade the next hop of upgrade-ENV.",
    OperatorAction.RETRY: "Run the step that waits for an operator again.",
    OperatorAction.SKIP: "Skip the step that waits for an operator (recorded in the result).",
    OperatorAction.ABORT: "Abort provision-ENV (or upgrade-ENV); it fails with a list of what "
    "was done.",
    OperatorAction.PAUSE: "Hold provision-ENV before its next step.",
    OperatorAction.RESUME: "Let a paused provision-ENV go on.",
}
FOLLOWS_BY_DEFAULT = frozenset(OperatorAction) - {OperatorAction.PAUSE}
"""Actions after which the command follows the run unless told not to (pause holds it)."""


def handle_for(client: Client, env_name: str, kind: RunKind) -> WorkflowHandle[Any, Any]:
    if kind is RunKind.UPGRADE:
        return upgrade.handle_for(client, env_name)
    return runs.handle_for(client, env_name, dry_run=kind is RunKind.DRY_RUN)


def action_method(kind: RunKind, action: OperatorAction) -> Any:
    """The update `action` is sent as to a run of `kind` (by method reference)."""
    return getattr(WORKFLOWS[kind], action.value)


async def send(
    client: Client,
    env_name: str,
    kind: RunKind,
    action: OperatorAction,
    request: OperatorRequest,
    task_queue: str,
) -> tuple[WorkflowHandle[Any, Any], str]:
    """Send `action` to the run of `kind`; (its handle, what the run does because of it)."""
    handle = handle_for(client, env_name, kind)
    receipt = await runs.send(handle, action_method(kind, action), request, task_queue=task_queue)
    return handle, receipt.effect


async def act(
    client: Client,
    settings: ClientSettings,
    env_name: str,
    kind: RunKind,
    action: OperatorAction,
    request: OperatorRequest,
    *,
    follow_run: bool,
    by: str,
) -> Report:
    """An operator action, then (unless `follow_run` is False) the run from there."""
    handle, effect = await send(client, env_name, kind, action, request, settings.task_queue)
    yield Say(f"{handle.id} took {action.value}: {effect}")
    if not follow_run:
        yield Outcome.DONE
    elif action == OperatorAction.ABORT:
        ended = await runs.final(handle)
        if isinstance(ended, runs.Failed):
            yield Say(ended.message, stderr=True)
            yield Outcome.FAILED
        else:
            yield Outcome.DONE
    else:  # the update completed once the run had taken the action: follow from there
        async for item in follow(handle, env_name, kind, settings.task_queue, by=by):
            yield item


def _unblocking(allowed: Sequence[OperatorAction]) -> list[OperatorAction]:
    """The actions that answer a wait (pause/resume do not)."""
    return [a for a in allowed if a not in (OperatorAction.PAUSE, OperatorAction.RESUME)]


def _waiting_commands(
    env_name: str, workflow_id: str, kind: RunKind, progress: BootstrapProgress, by: str
) -> list[str]:
    return operator_commands(
        env_name, workflow_id, _unblocking(progress.allowed_actions), by, kind.option
    )


async def status(
    client: Client, env_name: str, kind: RunKind, task_queue: str, *, by: str
) -> Report:
    """Every step of the run, its refused signals, and what it waits for."""
    handle = handle_for(client, env_name, kind)
    progress: BootstrapProgress = (
        await upgrade.progress(handle, task_queue)
        if kind is RunKind.UPGRADE
        else await runs.progress(handle, task_queue, kind=kind.described)
    )
    yield Say(render.status_table(handle.id, progress))
    for line in render.status_lines(progress):
        yield Say(line)
    if progress.state == RunState.WAITING_FOR_OPERATOR:
        yield Say(f"waiting for: {progress.waiting_for}")
        for line in _waiting_commands(env_name, handle.id, kind, progress, by):
            yield Say(line)
        yield Outcome.WAITING
    else:
        yield Outcome.FAILED if progress.state == RunState.ABORTED else Outcome.DONE


def _event_lines(event: upgrade.UpgradeEvent, handle_id: str, env: Environment | None) -> list[str]:
    """What a follow event shows while the run goes on (the ending events aside)."""
    match event:
        case upgrade.PlanReady(progress) if env is not None:
            return ["", *render.upgrade_plan_lines(env, progress, applying=True), ""]
        case runs.StepChanged(step):
            return [render.step_line(step)]
        case runs.ActivityNote(text):
            return [f"   {text}"]
        case runs.WorkerMissing(queue):
            return [
                f"   no worker answers on task queue {queue}: is `python worker.py` running? "
                "(still following; the run waits for it)"
            ]
        case runs.WorkerBack():
            return ["   a worker answers again"]
        case runs.InputRefused(refused):
            return [f"   {render.refused_line(refused)}"]
    return []


async def follow(
    handle: WorkflowHandle[Any, Any],
    env_name: str,
    kind: RunKind,
    task_queue: str,
    *,
    by: str,
    env: Environment | None = None,
) -> Report:
    """A run's progress until it ends or waits for an operator (then the commands that
    unblock it). An upgrade run's plan is shown once known (when `env` is given)."""
    events: AsyncIterator[upgrade.UpgradeEvent] = (
        upgrade.follow(handle, task_queue)
        if kind is RunKind.UPGRADE
        else runs.follow(handle, task_queue)
    )
    async for event in events:
        match event:
            case runs.WaitingForOperator(progress):
                for item in say_all(render.waiting_lines(handle.id, progress)):
                    yield item
                for line in _waiting_commands(env_name, handle.id, kind, progress, by):
                    yield Say(line)
                yield Outcome.WAITING
                return
            case runs.Finished(result):
                for item in say_all(render.finished_lines(handle.id, result)):
                    yield item
                yield Outcome.DONE
                return
            case runs.Failed(message):
                yield Say(message, stderr=True)
                yield Outcome.FAILED
                return
            case _:
                for item in say_all(_event_lines(event, handle.id, env)):
                    yield item
    yield Outcome.FAILED


def _announce(started: runs.Started, settings: ClientSettings) -> tuple[list[str], str | None]:
    """Which run is followed now, and its Web UI link (when there is one)."""
    verb = "attached to the running" if started.attached else "started"
    lines = [f"{verb} {started.handle.id} (run {started.run_id}) on {settings.address}"]
    url = settings.workflow_url(started.handle.id)
    if url:
        lines.append(f"Web UI: {url}")
    return lines, url


async def provision(
    client: Client,
    settings: ClientSettings,
    env: Environment,
    *,
    by: str,
    dry_run: bool,
    redeclare: runs.Redeclare,
    follow_run: bool,
    environments_dir: Path | None,
) -> Report:
    """Start provision-ENV (or attach to it) and follow it; a run going with another
    declaration is not attached to silently (the differences and the ways on, WAITING)."""
    yield Say(render.exposure_line(environments.web_ui_exposure(env)))
    try:
        started = await runs.start_or_attach(
            client, settings, env, by=by, dry_run=dry_run, redeclare=redeclare
        )
    except runs.DeclarationChanged as changed:
        lines = render.declaration_lines(changed.workflow_id, changed.running, changed.new)
        lines += render.redeclare_commands(env.name, environments_dir, dry_run)
        for item in say_all(lines):
            yield item
        yield Outcome.WAITING
        return
    if started.restarted:
        yield Say(f"aborted run {started.restarted} of {started.handle.id} (another declaration)")
    if started.redeclared:
        yield Say(f"{started.handle.id} took the new declaration: {started.redeclared.effect}")
    lines, url = _announce(started, settings)
    for item in say_all(lines):
        yield item
    if not follow_run:
        yield Outcome.DONE
        return
    kind = RunKind.DRY_RUN if dry_run else RunKind.PROVISION
    async for said in follow(started.handle, env.name, kind, settings.task_queue, by=by):
        if (said is Outcome.DONE or said is Outcome.FAILED) and url:
            yield Say(f"Web UI: {url}")
        yield said


async def upgrade_plan(
    client: Client, settings: ClientSettings, env: Environment, *, by: str
) -> Report:
    """The hops from what runs to the declared chart (WAITING when there are some)."""
    ended = await upgrade.plan(client, settings, env, by=by)
    if isinstance(ended, runs.Failed):
        yield Say(ended.message, stderr=True)
        yield Outcome.FAILED
        return
    result = ended.result
    assert isinstance(result, UpgradeResult)
    for item in say_all(render.upgrade_plan_lines(env, result)):
        yield item
    yield Outcome.WAITING if result.plan else Outcome.DONE


async def upgrade_apply(
    client: Client, settings: ClientSettings, env: Environment, *, by: str, follow_run: bool
) -> Report:
    """Start upgrade-ENV (or attach to it) and follow it."""
    started = await upgrade.start_or_attach(client, settings, env, by=by)
    for item in say_all(_announce(started, settings)[0]):
        yield item
    if not follow_run:
        yield Outcome.DONE
        return
    async for said in follow(
        started.handle, env.name, RunKind.UPGRADE, settings.task_queue, by=by, env=env
    ):
        yield said


__all__ = [
    "ACTION_HELP",
    "FOLLOWS_BY_DEFAULT",
    "RunKind",
    "UpgradeProgress",
    "act",
    "action_method",
    "follow",
    "handle_for",
    "provision",
    "send",
    "status",
    "upgrade_apply",
    "upgrade_plan",
]
