"""Re-record the workflow histories the replay test checks (run by hand, then commit the JSON).

    .venv/bin/python tests/histories/record_histories.py [bootstrap] [drift]   # default: both

Record again only on purpose: a history recorded before a change is what proves the change
does not break workflows that are already running.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from pathlib import Path

from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "workflows"))

from test_bootstrap_workflow_logic import (  # noqa: E402
    TASK_QUEUE,
    FakeActivities,
    bootstrap_input,
    until,
    waiting,
)
from test_drift_check_logic import TASK_QUEUE as DRIFT_TASK_QUEUE  # noqa: E402
from test_drift_check_logic import DriftFakes  # noqa: E402

from activities.errors import ErrorType, activity_error  # noqa: E402
from declared_state.loader import load_environment  # noqa: E402
from declared_state.models import DriftPolicy  # noqa: E402
from workflows.bootstrap import BootstrapWorkflow  # noqa: E402
from workflows.bootstrap_models import OperatorSignal  # noqa: E402
from workflows.drift_check import DriftCheckWorkflow  # noqa: E402
from workflows.drift_check_models import DriftCheckInput, DriftState  # noqa: E402


async def main(which: set[str]) -> None:
    path = shutil.which("temporal-test-server", path=str(Path(sys.executable).parent))
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=pydantic_data_converter
    )
    if "bootstrap" in which:
        await record_bootstrap(env)
    if "drift" in which:
        await record_drift_checks(env)
    await env.shutdown()


async def record_bootstrap(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities()
    async with (
        Worker(
            env.client, task_queue=TASK_QUEUE, workflows=[BootstrapWorkflow], activities=fakes.all()
        ),
    ):
        # 1. every step succeeds
        handle = await env.client.start_workflow(
            BootstrapWorkflow.run, bootstrap_input(), id="replay-all-steps", task_queue=TASK_QUEUE
        )
        await handle.result()
        await save(handle)
        # 2. stale schema: waits for an operator, then `retry`
        fakes.failures["check_database"] = (
            1,
            activity_error("schema outdated", ErrorType.SCHEMA_OUTDATED),
        )
        handle = await env.client.start_workflow(
            BootstrapWorkflow.run, bootstrap_input(), id="replay-retry", task_queue=TASK_QUEUE
        )
        await until(handle, waiting)
        await handle.signal(BootstrapWorkflow.retry, OperatorSignal(by="dba"))
        await handle.result()
        await save(handle)
        # 3. approval gate, then abort
        handle = await env.client.start_workflow(
            BootstrapWorkflow.run,
            bootstrap_input(approval=True),
            id="replay-abort",
            task_queue=TASK_QUEUE,
        )
        await until(handle, waiting)
        await handle.signal(BootstrapWorkflow.abort, OperatorSignal(by="cab"))
        with contextlib.suppress(WorkflowFailureError):  # the abort is the recorded outcome
            await handle.result()
        await save(handle)


async def record_drift_checks(env: WorkflowEnvironment) -> None:
    fakes = DriftFakes()
    async with Worker(
        env.client,
        task_queue=DRIFT_TASK_QUEUE,
        workflows=[DriftCheckWorkflow],
        activities=fakes.all(),
    ):
        staging = load_environment("staging")
        # 4. drift in two steps, remediated
        fakes.drifted = {"ensure_ca_bundle", "install_chart"}
        handle = await env.client.start_workflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(environment=staging, policy=DriftPolicy.REMEDIATE),
            id="replay-drift-remediate",
            task_queue=DRIFT_TASK_QUEUE,
        )
        await handle.result()
        await save(handle)
        # 5. policy ask: approved while waiting
        fakes.drifted = {"register_namespaces"}
        handle = await env.client.start_workflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(environment=staging, policy=DriftPolicy.ASK),
            id="replay-drift-ask",
            task_queue=DRIFT_TASK_QUEUE,
        )
        while (await handle.query(DriftCheckWorkflow.progress)).state != (
            DriftState.WAITING_FOR_APPROVAL
        ):
            await asyncio.sleep(0.1)
        await handle.signal(DriftCheckWorkflow.approve, OperatorSignal(by="oncall"))
        await handle.result()
        await save(handle)


async def save(handle) -> None:
    history = await handle.fetch_history()
    (HERE / f"{handle.id}.json").write_text(history.to_json())
    print(f"recorded {handle.id}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(main(set(sys.argv[1:]) or {"bootstrap", "drift"}))
