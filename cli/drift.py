"""Commands on drift: a drift check now (`drift`, text or JSON records), its schedule
(`schedule`, `unschedule`) and the approval a check with policy ask waits for
(`approve-drift`). The exit codes of a check come from its state (`DRIFT_EXIT`)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer
from temporalio.client import Client

from cli.app import (
    EXIT_DRIFTED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_WAITING,
    ByOpt,
    EnvArg,
    EnvDirOpt,
    NoWaitOpt,
    PolicyOpt,
    ReasonOpt,
    app,
    connected,
    err,
    operator_name,
    operator_request,
    prepare,
    say,
    say_err,
)
from contracts.drift_check import DriftCheckResult, DriftState, drift_schedule_id
from contracts.operator import drift_approval_commands
from declared_state.models import (
    format_duration,
)
from operations import drift as drift_ops
from operations import render
from operations import runs as run_ops
from operations.settings import (
    ClientSettings,
)

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
    operator = operator_name(by)
    env = prepare(name, environments_dir).env
    as_json = output == DriftOutput.JSON
    info = say_err if as_json else say

    def report(result: DriftCheckResult, last: list[str]) -> None:
        if as_json:
            sys.stdout.write(render.drift_json(result) + "\n")
            info(last)
        else:
            say([*render.drift_lines(result), *last])

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
                    commands = drift_approval_commands(env.name, handle.id, operator_name())
                    report(progress, [waits, *commands])
                    return EXIT_WAITING
                case drift_ops.StepChecked(finding):
                    say_err(f"  checked:{render.drift_step_line(finding)}")
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

    connected(ctx, body, start_embedded=True)


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
    operator = operator_name(by)
    env = prepare(name, environments_dir).env

    async def body(client: Client, settings: ClientSettings) -> int:
        upserted = await drift_ops.upsert_schedule(
            client, settings, env, policy=policy, by=operator
        )
        effective = policy or env.drift_check.policy
        next_run = (
            f", next run {upserted.next_run:%Y-%m-%d %H:%M:%S %Z}" if upserted.next_run else ""
        )
        say(
            f"schedule {upserted.schedule_id} {'created' if upserted.created else 'updated'}: "
            f"drift check every {format_duration(env.drift_check.interval)}, policy "
            f"{effective.value}{next_run}"
        )
        say(f"  temporal schedule describe --schedule-id {upserted.schedule_id}")
        return EXIT_OK

    connected(ctx, body, start_embedded=True)


@app.command(name="approve-drift")
def approve_drift(ctx: typer.Context, name: EnvArg, by: ByOpt = "", reason: ReasonOpt = "") -> None:
    """Approve the repair that ENV's drift checks wait for (policy ask), started by hand or
    by the schedule. Exits 1 when none waits."""

    request = operator_request(by, reason)

    async def body(client: Client, settings: ClientSettings) -> int:
        approved = await drift_ops.approve_waiting(client, name, request, settings.task_queue)
        if not approved:
            err.print(f"no drift check of {name} waits for approval", markup=False)
            return EXIT_FAILED
        for workflow_id in approved:
            say(f"sent approve to {workflow_id}")
        return EXIT_OK

    connected(ctx, body, start_embedded=False)


@app.command()
def unschedule(ctx: typer.Context, name: EnvArg) -> None:
    """Delete ENV's drift-check schedule (nothing to delete is fine)."""

    async def body(client: Client, settings: ClientSettings) -> int:
        schedule_id = drift_schedule_id(name)
        if await drift_ops.delete_schedule(client, name):
            say(f"schedule {schedule_id} deleted")
        else:
            say(f"schedule {schedule_id} does not exist")
        return EXIT_OK

    connected(ctx, body, start_embedded=False)
