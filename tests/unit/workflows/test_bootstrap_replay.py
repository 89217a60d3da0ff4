"""Determinism: recorded histories of BootstrapWorkflow, DriftCheckWorkflow and
UpgradeWorkflow must replay against today's code.

A change that would break workflows already running (reordered commands, a new activity
call without versioning) fails here. The JSON files are recorded by
tests/histories/record_histories.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.bootstrap import BootstrapWorkflow
from workflows.drift_check import DriftCheckWorkflow
from workflows.upgrade import UpgradeWorkflow

HISTORIES = sorted((Path(__file__).resolve().parents[2] / "histories").glob("*.json"))


def test_histories_are_recorded():
    assert {p.stem for p in HISTORIES} >= {
        "replay-all-steps",
        "replay-retry",
        "replay-abort",
        "replay-drift-remediate",
        "replay-drift-ask",
        "replay-upgrade",
        "replay-drift-live-remediate",
        "replay-operator-input",
        "replay-drift-left-alone",
    }


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    replayer = Replayer(
        workflows=[BootstrapWorkflow, DriftCheckWorkflow, UpgradeWorkflow],
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
