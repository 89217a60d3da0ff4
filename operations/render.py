"""How the starter shows runs, drift checks and environments to people.

Pure functions from the typed results of operations/ to lines and tables; the starter prints
them. Every command shown is one an operator can paste: the starter's own and the temporal
CLI's equivalent.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from contracts.bootstrap import BootstrapProgress, StepProgress, StepStatus
from contracts.drift_check import DriftCheckResult, FindingStatus
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
        f"  temporal workflow signal --workflow-id {workflow_id} --name approve "
        f'--input \'{{"by": "{by}"}}\'',
    ]
