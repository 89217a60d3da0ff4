"""notify: tell a webhook that a run waits for an operator, failed, or that a drift check
found or repaired drift (declared_state `notifications.webhooks`).

The workflows build a `Notification` (what happened, the lines people need, the commands
that unblock a wait) and run this step once per webhook subscribed to the event. The URL
never crosses this contract: the input names where the worker reads it (`Webhook`).

Once per run and state: a workflow sends each (event, state) once (`state` says which wait,
which attempt, which result; the workflows keep the keys they sent), so a replay or a
retried step never adds a notification. Delivery is at least once: a worker killed after
the POST and before the activity completed makes the retry POST again. The body and the
`Idempotency-Key` header carry `idempotency_key` (workflow id, run id, event, state), the
same on every attempt, so a receiver that keeps keys drops the repeat.

A notification never fails or holds a run: bounded retries (`NOTIFY_RETRY`, within
`NOTIFY_DEADLINE`), then the workflow logs the failure and goes on.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from temporalio import activity
from temporalio.common import RetryPolicy

from contracts.base import FrozenModel, StepResult
from contracts.step_spec import StepSpec
from declared_state.models import NotifyEvent, Webhook

NOTIFY_PATCH = "notify-webhooks"
"""Runs with this marker notify their environment's webhooks (only those that declare some
record it, so runs without webhooks replay as before)."""

NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
NOTIFY_DEADLINE = timedelta(minutes=3)
NOTIFY_ATTEMPT = timedelta(seconds=30)
"""One POST (the adapter's own timeout is shorter) and reading the URL."""


class Notification(FrozenModel):
    """What a webhook is told; no secret values (the workflows build it from run state)."""

    event: NotifyEvent
    environment: str
    workflow_id: str
    run_id: str
    state: str = Field(description="which wait/attempt/result of the run this is about")
    title: str
    lines: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    """The commands that unblock a wait (starter and temporal CLI)."""
    counts: dict[str, int] = Field(default_factory=dict)
    """Drift: differences per checked step."""

    @property
    def idempotency_key(self) -> str:
        """The same on every attempt of this notification, different for any other."""
        return f"{self.workflow_id}/{self.run_id}/{self.event.value}/{self.state}"


class NotifyInput(FrozenModel):
    notification: Notification
    webhook: Webhook


class NotifyResult(StepResult):
    webhook: str
    status: int
    """The receiver's HTTP status."""
    idempotency_key: str


@activity.defn(name="notify")
def notify(input: NotifyInput) -> NotifyResult:
    """Typed reference the workflows call; implemented by activities/notify.py."""
    raise NotImplementedError


SPEC: StepSpec[NotifyInput] = StepSpec(
    name="notify",
    activity=notify,
    make_input=lambda i: i,
    deadline=lambda i: NOTIFY_DEADLINE,
    start_to_close=lambda i: NOTIFY_ATTEMPT,
    retry=NOTIFY_RETRY,
)
"""How every workflow runs this step (contracts/step_spec.py)."""
