"""Re-record the workflow histories the replay test checks (run by hand, then commit the JSON).

    .venv/bin/python tests/histories/record_histories.py

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

from activities.errors import ErrorType, activity_error  # noqa: E402
from workflows.bootstrap import BootstrapWorkflow  # noqa: E402
from workflows.bootstrap_models import OperatorSignal  # noqa: E402


async def main() -> None:
    path = shutil.which("temporal-test-server", path=str(Path(sys.executable).parent))
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=pydantic_data_converter
    )
    fakes = FakeActivities()
    async with (
        env,
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


async def save(handle) -> None:
    history = await handle.fetch_history()
    (HERE / f"{handle.id}.json").write_text(history.to_json())
    print(f"recorded {handle.id}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(main())
