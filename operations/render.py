"""How the starter shows runs, drift checks and environments to people.

Pure functions from the typed results of operations/ to lines and tables; the starter prints
them. Every command shown is one an operator can paste: the starter's own and the temporal
CLI's equivalent.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.table import Table

from contracts.bootstrap import BootstrapProgress, StepProgress, StepStatus
from contracts.bootstrap import declaration_changes as changed_paths
from contracts.drift_check import DriftCheckResult, FindingStatus
from contracts.operator import OperatorAction, RefusedInput
from declared_state.models import Environment
from operations.environments import EnvironmentSummary

# Keys whose values are never printed, whatever they hold.
SECRET_LIKE = re.compile(r"pass(word)?|secret|token|credential|api_?key|private|auth", re.I)

STEP_ICONS = {
    StepStatus.PENDING: " ",
    StepStatus.RUNNING: "…",
    StepStatus.WAITING_FOR_OPERATOR: "!",
    StepStatus.DONE: "✓",
    StepStatus.SKIPPED: "-",
    StepStatus.FAILED: "✗",
}
FINDING_ICONS = {
    FindingStatus.IN_SYNC: "✓",
    FindingStatus.DRIFTED: "≠",
    FindingStatus.CHECK_FAILED: "?",
    FindingStatus.REPAIRED: "✓",
    FindingStatus.REPAIR_FAILED: "✗",
}


def step_line(step: StepProgress) -> str:
    line = f" {STEP_ICONS.get(step.status, '?')} {step.name:<22} {step.status.value}"
    if step.attempts > 1:
        line += f" (run {step.attempts})"
    if step.summary:
        line += f": {step.summary}"
    if step.status in (StepStatus.WAITING_FOR_OPERATOR, StepStatus.FAILED) and step.last_error:
        line += f"\n     {step.last_error_type}: {step.last_error}"
        if step.retry_state and step.retry_state != "NON_RETRYABLE_FAILURE":
            line += f" (retries ended: {step.retry_state})"
    return line


def temporal_cli_action(workflow_id: str, action: OperatorAction, by: str) -> str:
    """The temporal CLI's way to send an action: an update, so a refusal comes back."""
    return (
        f"temporal workflow update execute --workflow-id {workflow_id} --name {action.value} "
        f'--input \'{{"by": "{by}"}}\''
    )


def operator_commands(
    env_name: str, workflow_id: str, actions: Iterable[OperatorAction], by: str
) -> list[str]:
    """For each action: the starter command and the temporal CLI update that do it."""
    lines = []
    for action in actions:
        lines.append(f"  python starter.py {action.value} {env_name}")
        lines.append(f"  {temporal_cli_action(workflow_id, action, by)}")
    return lines


def refused_line(refused: RefusedInput) -> str:
    return f"refused signal {refused.name!r} at {refused.at:%Y-%m-%d %H:%M:%S %Z}: {refused.why}"


def _at(document: Any, path: str) -> Any:
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            document = (
                document[index] if isinstance(document, list) and index < len(document) else None
            )
        else:
            document = document.get(part) if isinstance(document, dict) else None
    return document


def declaration_lines(workflow_id: str, running: Environment | None, new: Environment) -> list[str]:
    """What differs between a running run's declaration and the files now: key paths, with
    old -> new values except for secret-like keys."""
    lines = [f"{workflow_id} is going with another declaration than the files now; differs at:"]
    if running is None:
        return [*lines, "  everything: its declaration cannot be read by this version"]
    old_doc, new_doc = running.model_dump(mode="json"), new.model_dump(mode="json")
    for path in changed_paths(running, new):
        if SECRET_LIKE.search(path):
            lines.append(f"  {path} (value not shown)")
        else:
            old, now = _at(old_doc, path), _at(new_doc, path)
            lines.append(f"  {path}: {_short(old)} -> {_short(now)}")
    return lines


def _short(value: Any) -> str:
    text = "(unset)" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def redeclare_commands(env_name: str, environments_dir: Path | None, dry_run: bool) -> list[str]:
    """The two ways on when a run goes with another declaration."""
    base = f"python starter.py provision {env_name}"
    if environments_dir is not None:
        base += f" --environments-dir {shlex.quote(str(environments_dir))}"
    if dry_run:
        base += " --dry-run"
    return [
        "choose one:",
        f"  {base} --update-run   # hand the run this declaration; its waiting step runs again",
        f"  {base} --restart      # abort the run and start a new one with this declaration",
    ]


def status_table(workflow_id: str, progress: BootstrapProgress) -> Table:
    table = Table(title=f"{workflow_id}: {progress.state.value}", title_justify="left")
    for column in ("step", "status", "runs", "changed", "summary / last error"):
        table.add_column(column)
    for step in progress.steps:
        text = step.summary
        if step.last_error and step.status != StepStatus.DONE:
            text = f"{step.last_error_type}: {step.last_error}"
        changed = "" if step.changed is None else ("yes" if step.changed else "no")
        table.add_row(step.name, step.status.value, str(step.attempts), changed, text)
    return table


def summary_table(name: str, summary: EnvironmentSummary) -> Table:
    table = Table(title=f"environment {name}: valid", show_header=False, title_justify="left")
    for key, value in summary.rows:
        table.add_row(key, value)
    return table


def drift_lines(result: DriftCheckResult) -> list[str]:
    lines = []
    for finding in result.findings:
        line = f" {FINDING_ICONS[finding.status]} {finding.step:<22} {finding.status.value}"
        if finding.action and finding.status != FindingStatus.IN_SYNC:
            verb = "did" if finding.status == FindingStatus.REPAIRED else "would"
            line += f" ({verb}: {finding.action})"
        lines.append(line)
        lines.extend(f"     {difference}" for difference in finding.drift)
        if finding.error:
            lines.append(f"     {finding.error}")
    return lines


def drift_approval_commands(env_name: str, workflow_id: str, by: str) -> list[str]:
    return [
        f"  python starter.py approve-drift {env_name}",
        f"  {temporal_cli_action(workflow_id, OperatorAction.APPROVE, by)}",
    ]
