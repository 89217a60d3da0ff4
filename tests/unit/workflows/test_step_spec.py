"""#19.1: a step is declared once, by its StepSpec beside its contract, and workflows and the
worker take it from there.

This module is a whole new step as a contributor writes one, in one place: its contract
(Input, Result, typed reference, SPEC) and its activity. It is composed into the bootstrap's
step list (a subclass's `STEPS`), the worker registers it from the specs
(`worker.registered_activities`), and a run on the time-skipping server runs it, at once with
the steps its spec does not need (`after=()`), recorded in list order. No other file knows it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.worker import UnsandboxedWorkflowRunner

from contracts.base import FrozenModel, StepResult
from contracts.bootstrap import BootstrapInput, BootstrapResult, StepStatus, UnlistedStepResult
from contracts.step_spec import PREFLIGHT_RETRY, Gate, StepSpec, waves
from declared_state.loader import load_environment
from declared_state.models import Environment, StepTimeouts
from tests.helpers import new_worker
from tests.helpers.fakes import StepFakes
from worker import registered_activities
from workflows.bootstrap import BootstrapWorkflow

# --- the new step's contract (contracts/check_dns.py) ---------------------------------


class CheckDnsInput(FrozenModel):
    environment: Environment
    dry_run: bool = False


class CheckDnsResult(StepResult):
    resolved: str


@activity.defn(name="test_only_check_dns")
def check_dns(input: CheckDnsInput) -> CheckDnsResult:
    """Typed reference the workflows call."""
    raise NotImplementedError


SPEC: StepSpec[BootstrapInput] = StepSpec(
    name="check_dns",
    activity=check_dns,
    make_input=lambda i: CheckDnsInput(environment=i.environment),
    deadline=lambda i: timedelta(minutes=2),  # no StepDeadlines field needed
    start_to_close=lambda i: timedelta(minutes=1),
    retry=PREFLIGHT_RETRY,
    after=(),
    read_only=True,
)

# --- the new step's activity (activities/check_dns.py) ---------------------------------

dns_started: list[asyncio.Event] = []  # set by the test, on its own event loop


@activity.defn(name="test_only_check_dns")
async def check_dns_impl(input: CheckDnsInput) -> CheckDnsResult:
    for started in dns_started:
        started.set()
    return CheckDnsResult(
        resolved=input.environment.rds.endpoint,
        changed=False,
        summary=f"{input.environment.rds.endpoint} resolves",
    )


# --- composed into a workflow's list --------------------------------------------------


@workflow.defn(name="BootstrapWithDnsCheck")
class BootstrapWithDnsCheck(BootstrapWorkflow):
    STEPS = (*BootstrapWorkflow.STEPS[:4], SPEC, *BootstrapWorkflow.STEPS[4:])

    @workflow.run  # the SDK wants a workflow's run on its own class
    async def run(self, input: BootstrapInput) -> BootstrapResult:
        return await super().run(input)


def test_the_new_step_runs_with_the_steps_it_does_not_need():
    groups = [[item.name for item in group] for group in waves(BootstrapWithDnsCheck.STEPS)]
    assert groups == [
        ["check_images"],  # the image preflight, before anything is written
        ["check_database", "ensure_ca_bundle", "ensure_db_secret", "check_dns"],
        ["approval"],
        ["install_chart"],
        ["wait_frontend_healthy"],
        ["register_namespaces"],
    ]


def test_the_worker_refuses_a_spec_without_an_implementation():
    with pytest.raises(LookupError, match="test_only_check_dns"):
        registered_activities([BootstrapWithDnsCheck], StepFakes().all())


def test_waves_keep_a_step_after_what_it_needs_and_a_gate_alone():
    needs_secret = StepSpec[BootstrapInput](**{**vars(SPEC), "after": ("ensure_db_secret",)})
    items = [*BootstrapWorkflow.STEPS[:4], needs_secret, Gate(name="g", before="x")]
    assert [[i.name for i in g] for g in waves(items)] == [
        ["check_images"],
        ["check_database", "ensure_ca_bundle", "ensure_db_secret"],
        ["check_dns"],
        ["g"],
    ]
    with pytest.raises(ValueError, match="twice"):
        waves([SPEC, SPEC])


async def test_a_step_declared_by_its_spec_alone_runs_in_a_bootstrap(time_skipping_env):
    fakes = StepFakes(missing=("ensure_ca_bundle", "install_chart", "register_namespaces"))
    # ensure_db_secret is held until the new step has started: they run at once.
    fakes.hold["ensure_db_secret"] = asyncio.Event()
    started = asyncio.Event()
    dns_started[:] = [started]
    activities = registered_activities([BootstrapWithDnsCheck], [*fakes.all(), check_dns_impl])
    async with new_worker(
        time_skipping_env.client,
        BootstrapWithDnsCheck,
        activities=activities,
        workflow_runner=UnsandboxedWorkflowRunner(),  # the workflow lives in a test module
    ) as worker:
        handle = await time_skipping_env.client.start_workflow(
            BootstrapWithDnsCheck.run,
            BootstrapInput(environment=load_environment("staging"), requested_by="test"),
            id=f"provision-dns-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
        # Run one by one, check_dns would wait behind the held step forever (a guard, not a
        # speed goal).
        await asyncio.wait_for(started.wait(), timeout=60)
        fakes.hold["ensure_db_secret"].set()
        result = await handle.result()

    assert [s.name for s in result.steps] == [item.name for item in BootstrapWithDnsCheck.STEPS]
    dns = result.steps[4]
    assert dns.status == StepStatus.DONE
    assert isinstance(dns.result, UnlistedStepResult)
    endpoint = load_environment("staging").rds.endpoint
    assert dns.result.summary == f"{endpoint} resolves"
    assert dns.result.model_extra == {"resolved": endpoint}
    assert all(s.status in (StepStatus.DONE, StepStatus.SKIPPED) for s in result.steps)


async def test_the_declared_heartbeat_timeout_is_what_the_server_schedules(time_skipping_env):
    """`step_timeouts.heartbeat` reaches the server as the heartbeat timeout of every step
    that waits (how soon a dead worker's attempt is retried elsewhere), and install_chart
    recovers a pending release once it is that old; the image preflight keeps its own."""
    declared = load_environment("staging").model_copy(
        update={"step_timeouts": StepTimeouts(heartbeat=timedelta(seconds=12))}
    )
    fakes = StepFakes(missing=("ensure_ca_bundle", "install_chart", "register_namespaces"))
    async with new_worker(
        time_skipping_env.client,
        BootstrapWorkflow,
        activities=registered_activities([BootstrapWorkflow], fakes.all()),
    ) as worker:
        handle = await time_skipping_env.client.start_workflow(
            BootstrapWorkflow.run,
            BootstrapInput(environment=declared, requested_by="test"),
            id=f"provision-heartbeat-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
        await handle.result()
        scheduled = {
            event.activity_task_scheduled_event_attributes.activity_type.name: (
                event.activity_task_scheduled_event_attributes.heartbeat_timeout.ToSeconds()
            )
            async for event in handle.fetch_history_events()
            if event.HasField("activity_task_scheduled_event_attributes")
        }

    assert scheduled == {
        "check_images": 30,
        "check_database": 0,
        "ensure_ca_bundle": 0,
        "ensure_db_secret": 0,
        "install_chart": 12,
        "wait_frontend_healthy": 12,
        "register_namespaces": 12,
    }
    (install,) = fakes.inputs["install_chart"]
    assert install.pending_grace == timedelta(seconds=12)
