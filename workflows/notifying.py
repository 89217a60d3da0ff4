"""What a workflow tells people outside it: webhook notifications (the notify step) and the
worker's own Prometheus gauges (the workflow metric meter).

Notifications (contracts/notify.py): `_notify` starts the notify step for each webhook the
environment subscribes to the event and does not wait for it, so a slow or failing webhook
never holds the run; `_notifications_sent` waits for those still going before a run ends
(bounded by the step's deadline) so a run's last word (failed, repaired) is not dropped. A
notify step that fails for good is logged; it never fails the run. Each (event, state) is
sent once per run: the keys sent are kept, and a replay re-creates them without sending.
Only an environment that declares webhooks asks `workflow.patched(NOTIFY_PATCH)`, so runs
without webhooks record nothing new and old histories replay unchanged.

Gauges: `workflow.metric_meter()` records nothing while a workflow replays, so a gauge is
set by the worker that runs the workflow task where the value changes: a worker that starts
after that (a restart, another pod) shows the value from the run's next change on. Setting
a gauge emits no command, so no patch is needed. Names and labels (docs/observability.md):

- `temporal_bootstrap_drift_items{environment, kind}`: differences not ignored, per checked
  step (`kind` is the step that owns what differs: ensure_ca_bundle, install_chart,
  check_live_objects, ...), after the check and its repair; every checked step is set at
  every check (0 when in sync), so a repaired kind goes back to 0; a step that could not
  be checked keeps its last value (unknown is not 0);
- `temporal_bootstrap_drift_check_completed_timestamp_seconds{environment}`: when the last
  drift check that could check everything ended (a check that failed leaves it alone);
- `temporal_bootstrap_runs_waiting_for_operator{environment, run}`: 1 while that run
  (`provision`, `provision dry run`, `upgrade`, `drift check`) waits for an operator.

The SDK adds `namespace`, `task_queue` and `workflow_type` to every workflow metric.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import notify
    from contracts.notify import NOTIFY_PATCH, Notification, NotifyInput
    from declared_state.models import Environment, NotifyEvent
    from workflows.steps import execute_step

DRIFT_ITEMS = "temporal_bootstrap_drift_items"
DRIFT_CHECK_COMPLETED = "temporal_bootstrap_drift_check_completed_timestamp_seconds"
RUNS_WAITING = "temporal_bootstrap_runs_waiting_for_operator"

NOTIFY_BY = "on-call"
"""The operator name the commands in a notification carry (replace it with yours)."""

FIRST_ITEMS = 5
"""Drift notifications list this many differences; counts cover all."""


class Notifying:
    """Notifications and gauges for a workflow class; see the module docstring."""

    def __init__(self) -> None:
        self._notified: set[str] = set()
        self._sending: list[asyncio.Task[None]] = []

    def _notify(
        self,
        environment: Environment,
        event: NotifyEvent,
        state: str,
        title: str,
        *,
        lines: Iterable[str] = (),
        commands: Iterable[str] = (),
        counts: Mapping[str, int] | None = None,
    ) -> None:
        """Start telling the subscribed webhooks, once per (event, state) in this run."""
        webhooks = environment.notifications.for_event(event)
        key = f"{event.value}/{state}"
        if not webhooks or key in self._notified:
            return
        self._notified.add(key)
        if not workflow.patched(NOTIFY_PATCH):
            return
        info = workflow.info()
        notification = Notification(
            event=event,
            environment=environment.name,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            state=state,
            title=title,
            lines=tuple(lines),
            commands=tuple(commands),
            counts=dict(counts or {}),
        )
        for webhook in webhooks:
            self._sending.append(
                asyncio.create_task(
                    self._send(NotifyInput(notification=notification, webhook=webhook))
                )
            )

    async def _send(self, input: NotifyInput) -> None:
        try:
            await execute_step(notify.SPEC, input)
        except ActivityError as err:
            cause = err.cause
            why = (
                f"{cause.type}: {cause.message}"
                if isinstance(cause, ApplicationError)
                else str(cause or err)
            )
            workflow.logger.warning(
                "%s notification to webhook %s not delivered (%s); the run goes on",
                input.notification.event.value,
                input.webhook.name,
                why,
            )

    async def _notifications_sent(self) -> None:
        """Wait for the notifications still being sent (before the run ends)."""
        if self._sending:
            await asyncio.gather(*self._sending)
            self._sending.clear()

    # --- gauges ---------------------------------------------------------------------------

    @staticmethod
    def _set_waiting(environment: str, run: str, waiting: bool) -> None:
        workflow.metric_meter().create_gauge(
            RUNS_WAITING, "1 while the run waits for an operator"
        ).set(int(waiting), {"environment": environment, "run": run})

    @staticmethod
    def _set_drift(environment: str, items: Mapping[str, int], completed: datetime | None) -> None:
        meter = workflow.metric_meter()
        gauge = meter.create_gauge(DRIFT_ITEMS, "differences from the declaration, not ignored")
        for kind, count in items.items():
            gauge.set(count, {"environment": environment, "kind": kind})
        if completed is not None:
            meter.create_gauge_float(
                DRIFT_CHECK_COMPLETED, "end of the last drift check that checked everything", "s"
            ).set(completed.timestamp(), {"environment": environment})
