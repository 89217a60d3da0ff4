"""Running a step: its spec (contracts/step_spec.py, declared beside each step's contract)
turned into an activity call with the spec's input, timeouts and retry policy.

Workflows compose lists of specs (`BootstrapWorkflow.STEPS`, the upgrade's hop, the drift
check's dry runs, taken from `CATALOG` by `drift_checked`); a workflow that runs one step
under another record name (`hop 2: install_chart`) copies its spec with
`dataclasses.replace(spec, name=...)`. `activity_references` is what a list needs a worker
to register.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from temporalio import workflow

from contracts import (
    check_database,
    check_live_objects,
    check_temporal,
    ensure_ca_bundle,
    ensure_db_secret,
    install_chart,
    register_namespaces,
)
from contracts.base import StepResult
from contracts.step_spec import Gate, RunInput, StepItem, StepSpec

CATALOG: tuple[StepSpec[Any], ...] = (
    check_database.SPEC,
    ensure_ca_bundle.SPEC,
    ensure_db_secret.SPEC,
    install_chart.SPEC,
    check_live_objects.SPEC,
    register_namespaces.SPEC,
    check_temporal.SPEC,
)
"""The steps that keep an environment as declared, in the order they apply (the drift check
dry-runs the `drift_checked` ones in this order)."""


def activity_references(items: Iterable[StepItem]) -> tuple[Callable[..., Any], ...]:
    """The activity references a step list calls (gates call none)."""
    return tuple(item.activity for item in items if not isinstance(item, Gate))


async def execute_step(
    spec: StepSpec[RunInput],
    input: RunInput,
    *,
    dry_run: bool = False,
    within: timedelta | None = None,
    options: dict[str, Any] | None = None,
) -> StepResult:
    """Run a step's activity with its own timeouts and retry policy; `dry_run` asks it to
    report instead of change, `within` shortens its deadline, `options` set fields of its
    input (install_chart's `reapply`, say)."""
    activity_input = spec.make_input(input)
    update = {**(options or {}), **({"dry_run": True} if dry_run else {})}
    if update:
        activity_input = activity_input.model_copy(update=update)
    deadline = spec.deadline(input)
    start_to_close = spec.start_to_close(input)
    if within is not None:
        deadline = min(deadline, within)
        start_to_close = min(start_to_close, deadline)
    result: StepResult = await workflow.execute_activity(
        spec.activity,
        activity_input,
        schedule_to_close_timeout=deadline,
        start_to_close_timeout=start_to_close,
        heartbeat_timeout=spec.heartbeat(input) if spec.heartbeat else None,
        retry_policy=spec.retry,
    )
    return result
