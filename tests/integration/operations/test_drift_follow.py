"""`operations.drift.follow_check` shows each step's finding as the check has it (#20.3): while
a later step is still being checked (held here, as a frozen cluster or a slow API would hold
it), the findings of the steps before it have already been handed to the starter, which
prints them, instead of nothing until the run ends.

A real Temporal dev server (real time: a held activity is not timed out by skipped time),
DriftCheckWorkflow with the stand-in activities of tests/helpers/fakes.py.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from contracts.drift_check import DriftCheckInput, DriftState, FindingStatus
from declared_state.loader import load_environment
from declared_state.models import DriftPolicy
from operations import drift as drift_ops
from tests.helpers import new_worker
from tests.helpers.fakes import StepFakes
from workflows.drift_check import DriftCheckWorkflow


async def test_findings_arrive_while_a_later_step_is_still_checked(target_temporal):
    client = await Client.connect(target_temporal.address, data_converter=pydantic_data_converter)
    fakes = StepFakes(drifted={"ensure_db_secret"})
    held = fakes.hold["check_temporal"] = asyncio.Event()
    async with new_worker(client, DriftCheckWorkflow, activities=fakes.all()) as worker:
        handle = await client.start_workflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(environment=load_environment("staging"), policy=DriftPolicy.REPORT),
            id=f"drift-follow-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )
        arrived: list[tuple[str, FindingStatus]] = []
        finished = None
        events = drift_ops.follow_check(handle, worker.task_queue)

        async def follow() -> None:
            nonlocal finished
            async for event in events:
                match event:
                    case drift_ops.StepChecked(finding):
                        arrived.append((finding.step, finding.status))
                        if len(arrived) == 5:
                            # Every other finding is in while check_temporal is still held.
                            assert ("check_temporal", True) not in fakes.calls
                            assert not held.is_set()
                            held.set()
                    case drift_ops.CheckFinished(result):
                        finished = result

        try:
            await asyncio.wait_for(follow(), timeout=120)
        finally:
            held.set()  # never leave the worker waiting on its held activity

    assert finished is not None and finished.state == DriftState.DRIFTED
    # The checks run at once: the others arrive in any order, check_temporal last (held).
    assert sorted(arrived[:-1]) == sorted(
        [
            ("ensure_ca_bundle", FindingStatus.IN_SYNC),
            ("ensure_db_secret", FindingStatus.DRIFTED),
            ("install_chart", FindingStatus.IN_SYNC),
            ("check_live_objects", FindingStatus.IN_SYNC),
            ("register_namespaces", FindingStatus.IN_SYNC),
        ]
    )
    assert arrived[-1] == ("check_temporal", FindingStatus.IN_SYNC)
    # The result keeps the check order whatever order the findings came in.
    assert [f.step for f in finished.findings] == [
        "ensure_ca_bundle",
        "ensure_db_secret",
        "install_chart",
        "check_live_objects",
        "register_namespaces",
        "check_temporal",
    ]
