"""Operations on upgrade runs (`upgrade-<env>`, and `upgrade-<env>-plan` for a plan), for the
starter and for tests.

An upgrade is planned by the worker (it reads the live versions from the cluster, which the
starter never talks to), so `plan` runs the workflow in plan-only mode and returns its
result; `start_or_attach` starts (or attaches to) the real run, `follow` yields the same
typed events as a provisioning run plus `PlanReady` once the plan is known. Operator actions
are the provisioning run's (`operations.runs.send` with `UpgradeWorkflow.retry`, ...).

An upgrade and a provisioning run of one environment would both run helm on the same
release: each refuses to start while the other runs. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeAlias

from temporalio.client import Client, WorkflowHandle

from contracts.bootstrap import StepStatus, bootstrap_workflow_id
from contracts.upgrade import (
    FIRST_STEP,
    UpgradeInput,
    UpgradeProgress,
    UpgradeResult,
    upgrade_workflow_id,
)
from declared_state.models import Environment
from operations import runs
from operations.settings import ClientSettings
from workflows.upgrade import UpgradeWorkflow

UpgradeHandle: TypeAlias = WorkflowHandle[UpgradeWorkflow, UpgradeResult]


def handle_for(client: Client, environment: str, *, plan_only: bool = False) -> UpgradeHandle:
    return client.get_workflow_handle_for(
        UpgradeWorkflow.run, upgrade_workflow_id(environment, plan_only=plan_only)
    )


async def _start(
    client: Client, settings: ClientSettings, env: Environment, *, by: str, plan_only: bool
) -> runs.Started:
    return await runs.start_or_attach_run(
        client,
        settings,
        UpgradeWorkflow.run,
        UpgradeInput(environment=env, requested_by=by, plan_only=plan_only),
        upgrade_workflow_id(env.name, plan_only=plan_only),
    )


async def start_or_attach(
    client: Client, settings: ClientSettings, env: Environment, *, by: str
) -> runs.Started:
    """Start `upgrade-<env>` or, when one runs, attach to it (never a second run); refused
    while `provision-<env>` runs."""
    await runs.refuse_while_running(
        client, bootstrap_workflow_id(env.name), f"upgrading {env.name}"
    )
    return await _start(client, settings, env, by=by, plan_only=False)


async def plan(
    client: Client, settings: ClientSettings, env: Environment, *, by: str
) -> runs.Finished | runs.Failed:
    """Read the live versions and plan the hops (`upgrade-<env>-plan`); changes nothing."""
    started = await _start(client, settings, env, by=by, plan_only=True)
    return await runs.final(started.handle)


async def progress(
    handle: WorkflowHandle[UpgradeWorkflow, UpgradeResult], task_queue: str
) -> UpgradeProgress:
    answer = await runs.progress(handle, task_queue, UpgradeWorkflow.progress, kind="upgrade run")
    assert isinstance(answer, UpgradeProgress)
    return answer


@dataclass(frozen=True)
class PlanReady:
    """The run has read the live versions and planned its hops."""

    progress: UpgradeProgress


UpgradeEvent: TypeAlias = runs.FollowEvent | PlanReady


async def follow(handle: UpgradeHandle, task_queue: str) -> AsyncIterator[UpgradeEvent]:
    """The provisioning run's events, with `PlanReady` once the plan is known."""
    plan_shown = False
    async for event in runs.follow(handle, task_queue, UpgradeWorkflow.progress):
        if not plan_shown and (
            isinstance(event, runs.StepChanged)
            and event.step.name == FIRST_STEP
            and event.step.status == StepStatus.DONE
        ):
            plan_shown = True
            try:
                ready: UpgradeProgress | None = await progress(handle, task_queue)
            except runs.OperationError:
                ready = None  # the worker went away; the run's own events say so next
            if ready is not None:
                yield PlanReady(ready)
        yield event
