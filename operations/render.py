"""How the starter shows runs, drift checks and environments to people.

Pure functions from the typed results of operations/ to lines and tables; the starter prints
them. Every command shown is one an operator can paste: the starter's own and the temporal
CLI's equivalent.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from contracts.base import DriftItem
from contracts.bootstrap import BootstrapProgress, BootstrapResult, StepProgress, StepStatus
from contracts.bootstrap import declaration_changes as changed_paths
from contracts.drift_check import (
    REPAIRED_BY,
    DriftCheckResult,
    DriftFinding,
    FindingStatus,
    drift_records,
)
from contracts.operator import RefusedInput
from contracts.upgrade import UpgradeProgress, UpgradeResult, snapshot_id
from declared_state.loader import display_path
from declared_state.models import Environment
from operations.environments import EnvironmentSummary, WebUiExposure
from operations.helmfile.report import Severity
from operations.manifest_diff import Difference

if TYPE_CHECKING:  # the helmfile parser loads only for `import-helmfile`
    from operations.helmfile_import import ImportPlan

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
        f"  {base} --update-run   # hand the run this declaration; its waiting step runs again"
        " (at the approval gate: approval is asked again)",
        f"  {base} --restart      # abort the run and start a new one with this declaration",
    ]


def status_lines(progress: BootstrapProgress) -> list[str]:
    """What `status` shows below its table: an upgrade's hop and cluster, refused signals."""
    lines = []
    if isinstance(progress, UpgradeProgress):
        hop = f"hop {progress.hop} of {len(progress.plan)}; " if progress.hop else ""
        lines.append(f"{hop}the cluster: {progress.cluster}")
    if progress.refused:
        older = (
            f" ({progress.refused_dropped} older one(s) not listed; the run's history has all)"
            if progress.refused_dropped
            else ""
        )
        lines.append(f"operator signals the run did not act on{older}:")
        lines += [f"  {refused_line(r)}" for r in progress.refused]
    return lines


def waiting_lines(workflow_id: str, progress: BootstrapProgress) -> list[str]:
    """A followed run that now waits for an operator (the commands follow these lines)."""
    lines = [f"\n{workflow_id} waits for an operator: {progress.waiting_for}"]
    if isinstance(progress, UpgradeProgress):
        lines.append(f"the cluster: {progress.cluster}")
    return [*lines, "unblock it with one of:"]


def finished_lines(workflow_id: str, result: BootstrapResult) -> list[str]:
    if isinstance(result, UpgradeResult):
        return upgrade_done_lines(workflow_id, result)
    return [f"\n{workflow_id} done ({'changed' if result.changed else 'nothing changed'})."]


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
    """Who reaches the new cluster's Web UI, then who can sign in: a public or plain-HTTP UI
    is said in capitals."""
    if not exposure.enabled:
        return f"no ingress (web_ingress.enabled: false), {sign_in_text(exposure)}"
    parts = [str(exposure.url)]
    if exposure.plain_http:
        parts[0] += " (PLAIN HTTP: no web_ingress.tls_secret)"
    if exposure.public:
        parts.append("PUBLIC: no access control (web_ingress.public: true)")
    if exposure.allowed_cidrs:
        parts.append(f"allowed from {', '.join(exposure.allowed_cidrs)}")
    if exposure.auth_url:
        parts.append(f"behind auth {exposure.auth_url}")
    parts.append(sign_in_text(exposure))
    return ", ".join(parts)


def sign_in_text(exposure: WebUiExposure) -> str:
    """Who can sign in to the UI itself (web_ui.auth)."""
    if exposure.oidc_provider:
        return (
            f"sign-in: OIDC, whoever {exposure.oidc_provider} lets sign in to client "
            f"{exposure.oidc_client} (the UI adds no roles of its own)"
        )
    return "no sign-in: whoever reaches it uses it (web_ui.auth: none)"


def exposure_line(exposure: WebUiExposure) -> str:
    """The provision's plan line for the Web UI, printed before the run starts."""
    return f"new cluster's Web UI: {exposure_text(exposure)}"


def drift_lines(result: DriftCheckResult) -> list[str]:
    """Each checked step with its status and counts; under it the differences grouped by
    object, each saying whether remediate can repair it (and how, or what does); ignored
    differences are counted, not shown; what could not be checked is listed, and what a step
    left alone because the declaration says so (`i`, information)."""
    lines = []
    for finding in result.findings:
        lines.append(drift_step_line(finding))
        for (kind, name), items in _by_object(finding.shown).items():
            what = f"{kind} {name}".strip() or finding.step
            lines.append(f"     {what}: {_plural(len(items), 'difference')}")
            for item in items:
                lines.append(f"       {_without_object(item.message, kind, name)}")
                lines.append(f"         repairable: {_repair_text(finding.step, item)}")
        for item in finding.unchecked:
            lines.append(f"     ? {item.message}")
        for note in finding.notes:
            lines.append(f"     i {note}")
        if finding.error:
            lines.append(f"     {finding.error}")
    skewed = [d for f in result.findings for d in f.shown if d.version_skew]
    if skewed:
        lines.append(
            f" The release was left alone: {_plural(len(skewed), 'difference')} come from "
            "version skew (the cluster runs another chart or server version than declared); "
            f"remediate never moves versions: python starter.py upgrade {result.environment}"
        )
    return lines


def drift_step_line(finding: DriftFinding) -> str:
    """One step's status and counts (`drift` prints it as each step's check ends, and as the
    head of that step's part of the report)."""
    line = f" {FINDING_ICONS[finding.status]} {finding.step:<22} {finding.status.value}"
    counts = _counts(finding)
    if counts:
        line += f": {counts}"
    return line + _action(finding)


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
    """`starter.py drift ENV --output json`: the run's state, one record per difference
    (or per thing that could not be checked), as the `progress` query carries them, and the
    notes (information: what a step left alone on purpose)."""
    document = {
        "environment": result.environment,
        "policy": result.policy.value,
        "state": result.state.value,
        "checked_at": result.checked_at.isoformat() if result.checked_at else None,
        "records": [r.model_dump(mode="json") for r in drift_records(result.findings)],
        # Information, never drift: what a step left alone because the declaration says so.
        "notes": [{"step": f.step, "message": n} for f in result.findings for n in f.notes],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _short_duration(value: timedelta) -> str:
    """`5m`, `1h30m`, `45s`: hours, minutes and seconds, without the zero parts."""
    hours, rest = divmod(int(value.total_seconds()), 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts) or "0s"


_UNKNOWN_IMAGE = "(the chart's own default: not in the image table)"


def _schema_change(before: str | None, after: str) -> str:
    return f"{after} (unchanged)" if before == after else f"{before or 'missing'} -> {after}"


def upgrade_plan_lines(
    env: Environment, run: UpgradeProgress | UpgradeResult, *, applying: bool = False
) -> list[str]:
    """The plan, terraform-style: where the cluster is, each hop, what every hop does."""
    db = env.database
    schema = run.live_schema
    lines = [
        f"Upgrade plan for {env.name}: declared chart {env.chart.version} "
        f"(server {env.chart.target_server_version})",
        f"  now: server {run.live_server}, chart {run.live_chart or 'unknown'}, schema "
        f"{db.default_store} {schema[0] or 'missing'}, {db.visibility_store} "
        f"{schema[1] or 'missing'}",
    ]
    if not run.plan:
        lines += ["", "No changes. The cluster runs the declared chart and server."]
        return lines
    rows = [
        ("hop", "chart", "server", f"schema {db.default_store}", f"schema {db.visibility_store}")
    ]
    before = schema
    for hop in run.plan:
        rows.append(
            (
                str(hop.number),
                f"{hop.from_chart or '?'} -> {hop.chart}",
                f"{hop.from_server} -> {hop.server}",
                _schema_change(before[0], hop.default_schema),
                _schema_change(before[1], hop.visibility_schema),
            )
        )
        before = (hop.default_schema, hop.visibility_schema)
    widths = [max(len(row[i]) for row in rows) + 2 for i in range(len(rows[0]))]
    lines.append("")
    lines += [
        "  " + "".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines += ["", "Images each hop runs (as its chart pins them, with the environment's images):"]
    for hop in run.plan:
        lines.append(f"  hop {hop.number} (chart {hop.chart}):")
        lines += [
            f"    {name.replace('_', '-'):<12}{image.reference if image else _UNKNOWN_IMAGE}"
            for name, image in (hop.images.components() if hop.images else ())
        ]
    first = run.plan[0]
    approval = "approval, " if env.approval_required else ""
    lines += [
        "",
        f"Each hop: {approval}image preflight, RDS snapshot ({snapshot_id(env.name, first)}, "
        f"...), schema Job (the hop's admin-tools image, both databases), helm upgrade to the hop's chart "
        f"(images pinned), frontend health and reported version, soak "
        f"{_short_duration(env.upgrade.soak)}.",
        f"Plan: {len(run.plan)} hop{'s' if len(run.plan) != 1 else ''} to chart "
        f"{env.chart.version}."
        + ("" if applying else f" Apply with: python starter.py upgrade {env.name}"),
    ]
    return lines


def upgrade_done_lines(workflow_id: str, result: UpgradeResult) -> list[str]:
    if not result.plan:
        return [f"\n{workflow_id} done: nothing to do, the cluster runs the declared chart."]
    last = result.plan[-1]
    lines = [
        f"\n{workflow_id} done: {len(result.plan)} hop(s), now chart {last.chart}, server "
        f"{last.server} (from {result.live_server}, chart {result.live_chart})."
    ]
    if result.snapshots:
        lines.append("Snapshots taken before each hop (restore one to go back):")
        lines += [f"  {snapshot}" for snapshot in result.snapshots]
    return lines


# --- import-helmfile ----------------------------------------------------------------------


def planned_file_lines(plan: ImportPlan) -> list[str]:
    """Each file the import would write, with its content."""
    lines = []
    for planned in plan.files:
        state = "exists: written only with --force" if planned.exists else "new"
        lines.append(f"--- {display_path(str(planned.path))} ({state})")
        lines.extend(planned.text.rstrip("\n").splitlines())
        lines.append("")
    return lines


def report_lines(plan: ImportPlan) -> list[str]:
    """The report: per environment, every item numbered (the numbers --compare refers to)."""
    lines = []
    for env in plan.environments:
        problems = sum(1 for i in env.items if i.severity == Severity.PROBLEM)
        notes = len(env.items) - problems
        lines.append(
            f"report for {env.name} (release {env.release}, chart {env.chart}): "
            f"{problems} problem{'s' * (problems != 1)}, {notes} note{'s' * (notes != 1)}"
            + (" - NOT IMPORTABLE, nothing is written" if env.blocked else "")
        )
        for number, item in enumerate(env.items, start=1):
            label = "PROBLEM" if item.severity == Severity.PROBLEM else "note"
            lines.append(f" {number:>2}. {label:<7} {item.file}: {item.key}")
            lines.append(f"     found:   {item.finding}")
            if item.why:
                lines.append(f"     why:     {item.why}")
            lines.append(f"     instead: {item.instead}")
        if env.invalid:
            lines.append(f"  the imported {env.name}.yaml does not validate:")
            lines.extend(f"    {problem}" for problem in env.invalid)
        lines.append("")
    return lines


def comparison_lines(plan: ImportPlan) -> list[str]:
    """The render comparison: every unexplained difference in full, the explained ones with
    the report items that explain them."""
    lines = []
    for comparison in plan.comparisons:
        head = (
            f"comparison for {comparison.environment} ({comparison.chart}, helm template): "
            "original helmfile values vs imported environment"
        )
        if comparison.error:
            lines += [head, f"  not compared: {comparison.error}", ""]
            continue
        explained, unexplained = comparison.explained, comparison.unexplained
        added = comparison.added
        differ = len(explained) + len(unexplained) + len(added)
        lines.append(head)
        lines.append(
            f"  {comparison.fields} fields compared: {differ} differ, "
            f"{len(explained)} explained by the report, {len(unexplained)} not explained, "
            f"{len(added)} added by temporal-bootstrap"
        )
        if added:
            objects = len({d.object for d in added})
            lines.append(
                f"  + added by temporal-bootstrap: {ADDED}: {len(added)} "
                f"field{'s' * (len(added) != 1)} in {objects} object{'s' * (objects != 1)}, e.g."
            )
            lines.extend(f"      {_difference(d)}" for d in added[:EXAMPLES])
        groups: dict[tuple[int, ...], list[Difference]] = {}
        for difference, items in explained:
            groups.setdefault(items, []).append(difference)
        for items, grouped in groups.items():
            numbers = ", ".join(str(n) for n in items)
            label = (
                f"report item{'s' * (len(items) > 1)} {numbers}"
                if items
                else "the report items together"
            )
            objects = len({d.object for d in grouped})
            lines.append(
                f"  = {label}: {len(grouped)} field{'s' * (len(grouped) != 1)} "
                f"in {objects} object{'s' * (objects != 1)}, e.g."
            )
            lines.extend(f"      {_difference(d)}" for d in grouped[:EXAMPLES])
        for difference in unexplained:
            lines.append(f"  ≠ {_difference(difference)}   [NOT EXPLAINED]")
        lines.append("")
    return lines


EXAMPLES = 3
ADDED = (
    "Pod Security restricted, 1.x: frontend gRPC readiness, DB passwords as files "
    "(docs/security.md)"
)
"""What the model adds to every rendering on purpose (declared_state/chart_values.py)."""
"""Explained differences shown per report item (every unexplained one is shown)."""


def _difference(difference: Difference) -> str:
    if not difference.field:
        return f"{difference.object}: {difference.original} -> {difference.imported}"
    return (
        f"{difference.object}: {difference.field}: {difference.original} -> {difference.imported}"
    )
