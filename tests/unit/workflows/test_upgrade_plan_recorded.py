"""#21.4: an upgrade's plan is recorded in its history, not recomputed on replay.

A new release of this tool edits the version tables (declared_state/versions.py) while an
upgrade waits, possibly for days, at a hop's approval. Its worker must replay the waiting
run and then take the hops that were planned (and shown to the operator who approves them),
not the ones today's tables would plan. The tables' "newer row" is simulated the way a
release would add it: a chart 0.55.1 deploying server 1.26.3 becomes the 1.26 hop.

- the history recorded by tests/histories/record_histories.py while a run waits at hop 1's
  approval replays under the changed tables;
- a run on the time-skipping server, waiting at hop 1's approval when the tables change,
  replayed from its whole history on every task (no worker cache), completes the recorded
  plan: 0.55.0 then 0.63.0.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from contracts.bootstrap import RunState
from contracts.operator import OperatorRequest
from contracts.upgrade import UpgradeInput, UpgradeProgress
from declared_state import versions
from declared_state.loader import load_environment
from declared_state.models import ChartSpec
from declared_state.upgrade_path import plan_upgrade
from tests.helpers import assert_eventually, new_worker
from tests.helpers.fakes import StepFakes
from workflows.upgrade import UpgradeWorkflow

WAITING = Path(__file__).resolve().parents[2] / "histories" / "replay-upgrade-waiting-approval.json"
RECORDED_CHARTS = ["0.55.0", "0.63.0"]  # what the tables planned from 1.25.2 to 0.63.0


def ship_newer_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables as a later release might ship them: a 1.26.3 patch with chart 0.55.1,
    now the chart an upgrade through 1.26 takes."""
    monkeypatch.setattr(
        versions,
        "CHART_LINES",
        (versions._line("0.55.1", "0.55.1", "1.26.3"), *versions.CHART_LINES),
    )
    monkeypatch.setitem(
        versions.UPGRADE_PATH, (1, 26), (versions.ChartRelease("0.55.1", "1.26.3"),)
    )
    replanned = plan_upgrade("1.25.2", "0.52.0", ChartSpec(version="0.63.0"))
    assert [h.chart for h in replanned] == ["0.55.1", "0.63.0"], "the tables did not change"


@pytest.fixture
def newer_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    ship_newer_tables(monkeypatch)


def upgrade_input() -> UpgradeInput:
    env = load_environment("staging").model_copy(
        update={"approval_required": True, "chart": ChartSpec(version="0.63.0")}
    )
    return UpgradeInput(environment=env, requested_by="test")


def _recorded_plan_charts(history: dict) -> list[str]:
    """The hops' charts the plan_upgrade local activity returned, read from its marker."""
    results = [
        e["markerRecordedEventAttributes"]["details"]["result"]["payloads"][0]["data"]
        for e in history["events"]
        if "result" in e.get("markerRecordedEventAttributes", {}).get("details", {})
    ]
    assert len(results) == 1, "one plan recorded"
    return [hop["chart"] for hop in json.loads(base64.b64decode(results[0]))["hops"]]


async def test_a_history_waiting_at_a_hops_approval_replays_under_newer_tables(newer_tables):
    recorded = json.loads(WAITING.read_text())
    assert _recorded_plan_charts(recorded) == RECORDED_CHARTS
    replayer = Replayer(workflows=[UpgradeWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(
        WorkflowHistory.from_json(WAITING.stem, recorded), raise_on_replay_failure=True
    )
    assert result.replay_failure is None


async def test_a_waiting_upgrade_completes_its_recorded_plan_after_the_tables_change(
    time_skipping_env, monkeypatch: pytest.MonkeyPatch
):
    fakes = StepFakes()
    async with new_worker(
        time_skipping_env.client,
        UpgradeWorkflow,
        activities=fakes.all(),
        # Every workflow task replays the whole history, as a new release's worker does.
        max_cached_workflows=0,
        workflow_failure_exception_types=[NondeterminismError],
    ) as worker:
        handle = await time_skipping_env.client.start_workflow(
            UpgradeWorkflow.run,
            upgrade_input(),
            id=f"upgrade-plan-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )

        async def waits_before(hop: int) -> UpgradeProgress:
            progress = await handle.query(UpgradeWorkflow.progress, result_type=UpgradeProgress)
            assert progress.state == RunState.WAITING_FOR_OPERATOR
            assert f"before hop {hop}" in (progress.waiting_for or "")
            return progress

        planned = await assert_eventually(lambda: waits_before(1))
        assert [h.chart for h in planned.plan] == RECORDED_CHARTS
        assert fakes.events == []

        # The new release's tables arrive while the run waits for its operator.
        ship_newer_tables(monkeypatch)

        await handle.signal(UpgradeWorkflow.approve_signal, OperatorRequest(by="cab"))
        await assert_eventually(lambda: waits_before(2))
        await handle.signal(UpgradeWorkflow.approve_signal, OperatorRequest(by="cab"))
        result = await handle.result()

    assert [h.chart for h in result.plan] == RECORDED_CHARTS
    assert [e for e in fakes.events if e.startswith("install")] == [
        "install 0.55.0",
        "install 0.63.0",
    ]
    assert (fakes.live_chart, fakes.live_server) == ("0.63.0", "1.27.2")
