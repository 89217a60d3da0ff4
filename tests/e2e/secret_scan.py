"""The secret scan of the end-to-end tests: where a DB password could leak, it is looked for,
plainly and base64-encoded.

Sources, each read the way an operator or an attacker with that access would read it:

- every workflow history on a Temporal server (`temporal workflow list` of open and closed
  runs, then `temporal workflow show -o json` of each run: inputs, results, signals,
  updates, activity failures and the heartbeat details a timeout writes there); every payload
  found in it is also decoded from base64 and scanned;
- the heartbeat details of every pending activity (`temporal workflow describe -o json`),
  which the server stores before any history holds them;
- log files (the worker's, the starter's, the Temporal servers', the stack's);
- every helm release's values (`--all`) and manifests, on every namespace of a cluster
  (`helm get all`);
- the command line of every process on the machine (/proc/*/cmdline).

A password inside a larger text is base64-encoded differently at each of the three byte
offsets it can start at; all three forms are searched for (their stable middle part), so a
base64 blob that contains the password anywhere is found.
"""

from __future__ import annotations

import base64
import binascii
import json
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Finding:
    source: str
    """What was scanned, e.g. `history drift-check-local/<run id>`."""
    form: str
    """`plain` or `base64`."""


def _base64_forms(secret: bytes) -> list[bytes]:
    """The base64 characters that encode `secret` at each of the three offsets it can start
    at within a larger blob: only the characters whose 6 bits all come from `secret`."""
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret + b"\0\0")
        first = -(-8 * offset // 6)  # ceil: the first character wholly inside the secret
        last = (8 * (offset + len(secret)) - 6) // 6  # the last one
        forms.append(encoded[first : last + 1])
    return [f for f in forms if len(f) >= 8]


@dataclass
class SecretScan:
    """Looks for `secrets` in whatever it is given; keeps what it scanned and found."""

    secrets: Iterable[str]
    findings: list[Finding] = field(default_factory=list)
    scanned: dict[str, int] = field(default_factory=dict)
    """How many sources of each kind were scanned (so a scan of nothing cannot pass)."""

    def __post_init__(self) -> None:
        self._plain = [s.encode() for s in self.secrets]
        self._encoded = [form for s in self._plain for form in _base64_forms(s)]

    # --- the search itself ----------------------------------------------------------
    def text(self, kind: str, source: str, data: str | bytes) -> None:
        blob = data.encode() if isinstance(data, str) else data
        self.scanned[kind] = self.scanned.get(kind, 0) + 1
        if any(s in blob for s in self._plain):
            self.findings.append(Finding(source, "plain"))
        elif any(f in blob for f in self._encoded):
            self.findings.append(Finding(source, "base64"))

    def _payloads(self, kind: str, source: str, document: Any) -> None:
        """Every base64 `data` field in a JSON document, decoded and scanned."""
        for value in _walk_data_fields(document):
            try:
                decoded = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
            self.text("payload", f"{source} (decoded payload)", decoded)

    # --- sources --------------------------------------------------------------------
    def temporal(self, temporal: str, address: str, namespace: str = "default") -> None:
        """Every run's history and every pending activity's heartbeat details."""
        listed = _run(
            [
                temporal,
                "workflow",
                "list",
                "--address",
                address,
                "--namespace",
                namespace,
                "-o",
                "json",
                "--limit",
                "10000",
            ]
        )
        runs = json.loads(listed or "[]") or []
        for execution in runs:
            wid = execution["execution"]["workflowId"]
            rid = execution["execution"]["runId"]
            base = [temporal, "workflow", "--address", address, "--namespace", namespace]
            shown = _run([*base[:2], "show", *base[2:], "-w", wid, "-r", rid, "-o", "json"])
            self.text("history", f"history {wid}/{rid}", shown)
            self._payloads("history", f"history {wid}/{rid}", json.loads(shown))
            if execution.get("status") in ("WORKFLOW_EXECUTION_STATUS_RUNNING", 1, "Running"):
                described = _run(
                    [*base[:2], "describe", *base[2:], "-w", wid, "-r", rid, "-o", "json"]
                )
                document = json.loads(described)
                for pending in document.get("pendingActivities") or []:
                    details = pending.get("heartbeatDetails")
                    if details:
                        source = (
                            f"heartbeat of {pending.get('activityType', {}).get('name')} in {wid}"
                        )
                        self.text("heartbeat", source, json.dumps(details))
                        self._payloads("heartbeat", source, details)

    def logs(self, files: Iterable[Path]) -> None:
        for path in files:
            try:
                self.text("log", f"log {path}", path.read_bytes())
            except OSError:
                continue  # removed in between (a rotated or cleaned-up log)

    def helm_releases(self, helm: str, kubeconfig: str) -> None:
        listed = json.loads(
            _run(
                [
                    helm,
                    "list",
                    "--all-namespaces",
                    "--max",
                    "0",
                    *_EVERY_STATE,
                    "-o",
                    "json",
                    "--kubeconfig",
                    kubeconfig,
                ]
            )
            or "[]"
        )
        for release in listed:
            name, namespace = release["name"], release["namespace"]
            for what in (["values", "--all"], ["manifest"], ["hooks"], ["notes"]):
                out = _run(
                    [helm, "get", *what, name, "-n", namespace, "--kubeconfig", kubeconfig],
                    check=False,
                )
                self.text("helm", f"helm get {what[0]} {namespace}/{name}", out)

    def process_arguments(self) -> None:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            self.text("process", f"argv of pid {proc.name}: {argv[:80]!r}", argv)


# `helm list` shows only deployed and failed releases unless asked (v4 has no --all).
_EVERY_STATE = (
    "--deployed",
    "--failed",
    "--pending",
    "--superseded",
    "--uninstalled",
    "--uninstalling",
)


def _walk_data_fields(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "data" and isinstance(value, str):
                yield value
            else:
                yield from _walk_data_fields(value)
    elif isinstance(document, list):
        for item in document:
            yield from _walk_data_fields(item)


def _run(argv: list[str], check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv[:4])} failed: {proc.stderr}")
    return proc.stdout
