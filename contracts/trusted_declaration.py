"""Trusted declarations (#23.8): what a worker with `TEMPORAL_BOOTSTRAP_TRUSTED_ENVIRONMENTS`
refuses, and how two declarations are compared. I/O-free: the worker reads its trusted copies
(activities/trusted_declarations.py); the workflows only recognise the refusal.

A run carries its whole declaration (the `Environment`) in its input, and whoever can start
a workflow on the bootstrap server's task queue can hand the worker any declaration. A
worker given a folder of trusted environment files compares every declaration an activity
receives with its own copy of that environment, by the SHA-256 of the normalized model (its
JSON dump with sorted keys: formatting, key order, comments and base.yaml layering do not
count, only what the model holds), and refuses a different one before the activity does
anything. The refusal names the differing key paths (`declaration_changes`), never values.
"""

from __future__ import annotations

import hashlib
import json

from declared_state.models import Environment

UNTRUSTED_DECLARATION = "UntrustedDeclaration"
"""The ApplicationError type of the refusal (`adapters.errors.ErrorType.UNTRUSTED_DECLARATION`):
non-retryable, and the workflows end the run with it instead of waiting for an operator,
because no retry, skip or redeclare of the same run can make the declaration trusted."""


def declaration_digest(env: Environment) -> str:
    """`sha256:<hex>` of the normalized declaration: equal for equal models, whatever the
    files looked like."""
    canonical = json.dumps(
        env.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
