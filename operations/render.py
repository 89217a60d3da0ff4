"""How the starter shows runs, drift checks and environments to people.

Pure functions from the typed results of operations/ to lines and tables; the starter prints
them. Every command shown is one an operator can paste: the starter's own and the temporal
CLI's equivalent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from rich.table import Table

from contracts.base import DriftItem
from contracts.bootstrap import BootstrapProgress, StepProgress, StepStatus
from contracts.drift_check import (
    REPAIRED_BY,
    DriftCheckResult,
    DriftFinding,
    FindingStatus,
    drift_records,
)
from contracts.operator import OperatorAction
from operations.environments import EnvironmentSummary, WebUiExposure

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
    FindingStatus.NOT_RESTORED: "✗",
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


def operator_commands(
    env_name: str, workflow_id: str, actions: Iterable[OperatorAction], by: str
) -> list[str]:
    """For each action: the starter command and the temporal CLI signal that do it."""
    lines = []
    for action in actions:
        lines.append(f"  python starter.py {action.value} {env_name}")
        lines.append(
            f"  temporal workflow signal --workflow-id {workflow_id} --name {action.value} "
            f'--input \'{{"by": "{by}"}}\''
        )
    return lines


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
    table.add_row("Web UI exposure", exposure_text(summary.exposure))
    return table


def exposure_text(exposure: WebUiExposure) -> str:
    """Who reaches the new cluster's Web UI: a public or plain-HTTP UI is said in capitals."""
    if not exposure.enabled:
        return "no ingress (web_ingress.enabled: false)"
    parts = [str(exposure.url)]
    if exposure.plain_http:
        parts[0] += " (PLAIN HTTP: no web_ingress.tls_secret)"
    if exposure.public:
        parts.append("PUBLIC: no access control (web_ingress.public: true)")
    if exposure.allowed_cidrs:
        parts.append(f"allowed from {', '.join(exposure.allowed_cidrs)}")
    if exposure.auth_url:
        parts.append(f"behind auth {exposure.auth_url}")
    return ", ".join(parts)


def exposure_line(exposure: WebUiExposure) -> str:
    """The provision's plan line for the Web UI, printed before the run starts."""
    return f"new cluster's Web UI: {exposure_text(exposure)}"


def drift_lines(result: DriftCheckResult) -> list[str]:
    """Each checked step with its status and counts; under it the differences grouped by
    object, each saying whether remediate can repair it (and how, or what does); ignored
    differences are counted, not shown; what could not be checked is listed."""
    lines = []
    for finding in result.findings:
        line = f" {FINDING_ICONS[finding.status]} {finding.step:<22} {finding.status.value}"
        counts = _counts(finding)
        if counts:
            line += f": {counts}"
        line += _action(finding)
        lines.append(line)
        for (kind, name), items in _by_object(finding.shown).items():
            what = f"{kind} {name}".strip() or finding.step
            lines.append(f"     {what}: {_plural(len(items), 'difference')}")
            for item in items:
                lines.append(f"       {_without_object(item.message, kind, name)}")
                lines.append(f"         repairable: {_repair_text(finding.step, item)}")
        for item in finding.unchecked:
            lines.append(f"     ? {item.message}")
        if finding.error:
            lines.append(f"     {finding.error}")
    return lines


def _action(finding: DriftFinding) -> str:
    """What the step would do, or what the repair did (for a read-only check: the step that
    repairs it); a check's own summary says nothing its counts do not."""
    if not finding.action or finding.status == FindingStatus.IN_SYNC:
        return ""
    repairer = REPAIRED_BY.get(finding.step, (finding.step, {}))
    if finding.status == FindingStatus.DRIFTED:
        return "" if repairer != (finding.step, {}) else f" (would: {finding.action})"
    who = f"{repairer[0]} did" if repairer and repairer[0] != finding.step else "did"
    return f" ({who}: {finding.action})"


def _counts(finding: DriftFinding) -> str:
    shown = finding.shown
    parts = []
    if shown:
        objects = len({(d.kind, d.namespace, d.name) for d in shown})
        parts.append(f"{_plural(len(shown), 'difference')} in {_plural(objects, 'object')}")
    if finding.ignored:
        parts.append(f"{finding.ignored} ignored (drift_check.ignore)")
    if finding.unchecked:
        parts.append(f"{len(finding.unchecked)} could not be checked")
    return ", ".join(parts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _by_object(items: Iterable[DriftItem]) -> dict[tuple[str, str], list[DriftItem]]:
    groups: dict[tuple[str, str], list[DriftItem]] = {}
    for item in items:
        groups.setdefault((item.kind, item.name), []).append(item)
    return groups


def _without_object(message: str, kind: str, name: str) -> str:
    """A live object's line without its `Kind name: ` prefix (the group header says it)."""
    return message.removeprefix(f"{kind} {name}: ")


def _repair_text(step: str, item: DriftItem) -> str:
    if item.repairable:
        return f"yes ({item.how or f'remediate runs {step} for real'})"
    return f"no ({item.how or 'not by remediate'})"


def drift_json(result: DriftCheckResult) -> str:
    """`starter.py drift ENV --output json`: the run's state and one record per difference
    (or per thing that could not be checked), as the `progress` query carries them."""
    document = {
        "environment": result.environment,
        "policy": result.policy.value,
        "state": result.state.value,
        "checked_at": result.checked_at.isoformat() if result.checked_at else None,
        "records": [r.model_dump(mode="json") for r in drift_records(result.findings)],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def drift_approval_commands(env_name: str, workflow_id: str, by: str) -> list[str]:
    return [
        f"  python starter.py approve-drift {env_name}",
        f"  temporal workflow signal --workflow-id {workflow_id} --name approve "
        f'--input \'{{"by": "{by}"}}\'',
    ]
