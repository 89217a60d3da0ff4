"""notify: POST one notification to one webhook (contracts/notify.py says when and why).

The body is Slack-compatible: `text` is what a Slack (or Mattermost, Teams workflow, ...)
incoming webhook shows; the structured fields beside it (`event`, `environment`,
`workflow_id`, `run_id`, `state`, `title`, `lines`, `commands`, `counts`,
`idempotency_key`) are for receivers that route or deduplicate; Slack ignores them.

At least once: the POST and the activity's completion are two steps, and a worker killed
between them (or a receiver that stored the POST and then answered 5xx or too late) makes a
retry POST again. Every attempt carries the same `Idempotency-Key` header (and body field);
a receiver that keeps the keys it saw drops the repeat. Nothing in the worker can know
whether a POST whose answer was lost arrived, so no local record could prevent the repeat.

The URL is read in the worker (adapters/webhook.py `read_url`) on every attempt and is
never logged, returned, heartbeated or put in an error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity

from adapters.webhook import post_json, read_url
from contracts.notify import Notification, NotifyInput, NotifyResult
from declared_state.models import NotifyEvent

_ICON = {
    NotifyEvent.WAITING: ":raised_hand:",
    NotifyEvent.FAILED: ":x:",
    NotifyEvent.DRIFT_FOUND: ":warning:",
    NotifyEvent.DRIFT_REPAIRED: ":white_check_mark:",
}


def slack_body(notification: Notification) -> dict[str, Any]:
    """The JSON document a webhook receives."""
    text = [f"{_ICON[notification.event]} *{notification.environment}*: {notification.title}"]
    text += [f"• {line}" for line in notification.lines]
    if notification.commands:
        text.append("Unblock it with one of:")
        text.append("```" + "\n".join(c.strip() for c in notification.commands) + "```")
    text.append(f"_{notification.workflow_id} (run {notification.run_id})_")
    return {
        "text": "\n".join(text),
        "event": notification.event.value,
        "environment": notification.environment,
        "workflow_id": notification.workflow_id,
        "run_id": notification.run_id,
        "state": notification.state,
        "title": notification.title,
        "lines": list(notification.lines),
        "commands": [c.strip() for c in notification.commands],
        "counts": dict(notification.counts),
        "idempotency_key": notification.idempotency_key,
    }


@activity.defn(name="notify")
async def notify(input: NotifyInput) -> NotifyResult:
    webhook, notification = input.webhook, input.notification
    key = notification.idempotency_key
    url = read_url(webhook)
    # urllib blocks: in a thread, so the worker's event loop (heartbeats, other activities)
    # goes on; the POST's own timeout bounds it.
    status = await asyncio.to_thread(
        post_json, webhook, url, slack_body(notification), {"Idempotency-Key": key}
    )
    activity.logger.info(
        "%s notification %s sent to webhook %s (HTTP %d)",
        notification.event.value,
        key,
        webhook.name,
        status,
    )
    return NotifyResult(
        webhook=webhook.name,
        status=status,
        idempotency_key=key,
        changed=True,
        summary=f"{notification.event.value} sent to {webhook.name} (HTTP {status})",
    )
