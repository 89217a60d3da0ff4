"""The fault suite's table: which faults are tried (one catalogue), and what each test
measured (the outcome, what an operator saw, that nothing was lost or duplicated).

Each fault test calls `fault_table.record(FAULT_ID, ...)` with what it observed; at the end
of the session the rows are printed as a Markdown table (pytest's terminal summary) and
written to `<basetemp>/fault-table.md`, or to `$FAULT_TABLE` when set. docs/reliability.md
holds a table produced this way (`FAULT_TABLE=/tmp/t.md pytest tests/e2e -k fault`), and
tests/e2e/test_faults.py checks that it lists every fault of the catalogue.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from adapters.helm_release_record import decode_release

# id -> what is done to the system (the catalogue; the tests measure the rest).
FAULTS: dict[str, str] = {
    "mariadb-frozen": "MariaDB (the RDS stand-in) frozen (SIGSTOP) during check_database, "
    "thawed after the step retried",
    "kubernetes-503-burst": "Kubernetes API answers 503 to the next 3 Secret/ConfigMap calls "
    "during provisioning",
    "malformed-signals": "temporal CLI signals: retry with two inputs, approve with "
    '`{"by": 123}`, with an extra key, as a bare string, and `approv` (item 1, 2)',
    "stale-declaration": "wrong rds.port provisioned, fixed in the file while the run waits, "
    "`provision` again (item 3)",
    "worker-killed-helm-survives": "worker SIGKILLed mid install_chart; its helm lives on (item 5)",
    "worker-and-helm-killed": "worker and its helm SIGKILLed mid install_chart (release left "
    "pending-install)",
    "worker-killed-after-helm": "worker SIGKILLed after helm finished, before the activity "
    "reported",
    "worker-sigterm-mid-install": "worker SIGTERMed (pod eviction, Ctrl-C) mid install_chart",
    "worker-killed-mid-register": "worker SIGKILLed mid register_namespaces, one namespace "
    "registered, the other's call in flight (item 4)",
    "bootstrap-server-restart": "the bootstrap Temporal server restarted mid install_chart",
    "embedded-server-restart": "the embedded bootstrap server (no TEMPORAL_ADDRESS) stopped "
    "mid install_chart; the next starter command brings it back",
    "kubernetes-500-429-drift": "Kubernetes API answers 500 ×3 and 429 ×3 (Retry-After 1) "
    "during a drift check",
    "frontend-restart-registering": "the target Temporal frontend down and restarted while "
    "register_namespaces registers",
    "worker-killed-snapshot-waiter": "worker SIGKILLed while snapshot_database waits for an "
    "RDS snapshot that stays `creating` (upgrade hop 0.52.0 -> 0.55.0)",
    "worker-killed-upgrade-helm-wait": "worker SIGKILLed while an upgrade hop's `helm upgrade "
    "--wait` waits for a Deployment that is not ready; its helm lives on",
    "worker-killed-remediate-helm-wait": "worker SIGKILLed while a drift remediate's `helm "
    "upgrade --wait` (install_chart re-applying) waits for a Deployment that is not ready",
}


@dataclass
class FaultRow:
    fault: str
    outcome: str
    operator_sees: str
    kept: str
    """What shows nothing was lost or duplicated (helm revisions, namespaces, approvals)."""
    seconds: float


@dataclass
class FaultTable:
    rows: list[FaultRow] = field(default_factory=list)

    def record(
        self, fault: str, *, outcome: str, operator_sees: str, kept: str, since: float
    ) -> None:
        assert fault in FAULTS, f"unknown fault {fault!r}: add it to FAULTS"
        self.rows.append(
            FaultRow(fault, outcome, operator_sees, kept, round(time.monotonic() - since))
        )

    def markdown(self) -> str:
        lines = [
            "| fault | injected | outcome | what an operator sees | nothing lost or duplicated "
            "| time to outcome |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        order = list(FAULTS)
        for row in sorted(self.rows, key=lambda r: order.index(r.fault)):
            cells = (
                f"`{row.fault}`",
                FAULTS[row.fault],
                row.outcome,
                row.operator_sees,
                row.kept,
                f"{row.seconds} s",
            )
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def write(self, basetemp: Path) -> Path | None:
        if not self.rows:
            return None
        target = Path(os.environ.get("FAULT_TABLE") or basetemp / "fault-table.md")
        target.write_text(self.markdown())
        return target


def helm_revisions(history: list[dict]) -> str:
    """`1 deployed` or `1 failed → 2 deployed`: a helm history for the table."""
    return " → ".join(f"{r['revision']} {r['status']}" for r in history) or "none"


def release_history(kube_standin, namespace: str, release: str = "temporal") -> list[dict]:
    """What `helm history` lists, from helm's own records (one Secret per revision, its
    `version` and `status` labels, the chart in the release it holds: helm's storage driver,
    adapters/helm_release_record.py) read from the stand-in in the test's process: for the
    waits that poll a release's state, without a helm process per poll. Assertions about the
    outcome still ask helm."""
    records = [
        secret
        for secret in kube_standin.stored("v1", "Secret", namespace)
        if secret.get("type") == "helm.sh/release.v1"
        and secret["metadata"].get("labels", {}).get("name") == release
    ]
    history = []
    for secret in sorted(records, key=lambda s: int(s["metadata"]["labels"]["version"])):
        chart = decode_release(secret["data"]["release"])["chart"]["metadata"]
        history.append(
            {
                "revision": int(secret["metadata"]["labels"]["version"]),
                "status": secret["metadata"]["labels"]["status"],
                "chart": f"{chart['name']}-{chart['version']}",
            }
        )
    return history
