"""Commands on provisioning and upgrade runs: provision, status, the operator actions
(approve, retry, skip, abort, pause, resume) and upgrade. Each calls one operation of
operations/actions.py, which picks the workflow and follows the run; here only the
arguments are checked and the outcome printed."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import (
    EXIT_INVALID,
    ByOpt,
    CommandFailed,
    DryRunRunOpt,
    EnvArg,
    EnvDirOpt,
    NoWaitOpt,
    ReasonOpt,
    UpgradeRunOpt,
    app,
    operator_name,
    operator_request,
    prepare,
    run_operation,
)
from contracts.operator import OperatorAction
from operations import actions
from operations import runs as run_ops


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
    operator = operator_name(by)
    env = prepare(name, environments_dir).env
    redeclare = (
        run_ops.Redeclare.UPDATE_RUN
        if update_run
        else run_ops.Redeclare.RESTART
        if restart
        else run_ops.Redeclare.ASK
    )
    run_operation(
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
    run_operation(
        ctx,
        lambda client, settings: actions.status(
            client, name, kind, settings.task_queue, by=operator_name()
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
        request = operator_request(by, reason)
        kind = _run_kind(upgrade, dry_run)
        run_operation(
            ctx,
            lambda client, settings: actions.act(
                client,
                settings,
                name,
                kind,
                action,
                request,
                follow_run=not no_wait,
                by=operator_name(),
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
    operator = operator_name(by)
    env = prepare(name, environments_dir).env
    run_operation(
        ctx,
        lambda client, settings: (
            actions.upgrade_plan(client, settings, env, by=operator)
            if plan
            else actions.upgrade_apply(client, settings, env, by=operator, follow_run=not no_wait)
        ),
        start_embedded=True,
    )
