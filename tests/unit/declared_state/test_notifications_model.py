"""`notifications.webhooks` in an environment file: a URL is refused (it is a secret), exactly
one source, a real env var name, known events."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from declared_state.models import NotificationsSpec, NotifyEvent, Webhook


def test_a_webhook_names_where_its_url_is_never_the_url():
    with pytest.raises(ValidationError, match="a webhook URL is a secret"):
        Webhook.model_validate({"name": "ops", "url": "https://hooks.slack.com/services/x"})
    with pytest.raises(ValidationError, match="exactly one of url_from_env and url_from_file"):
        Webhook.model_validate({"name": "ops"})
    with pytest.raises(ValidationError, match="exactly one"):
        Webhook.model_validate({"name": "ops", "url_from_env": "A", "url_from_file": "/f"})
    with pytest.raises(ValidationError, match="not an environment variable name"):
        Webhook.model_validate({"name": "ops", "url_from_env": "OPS-HOOK"})
    with pytest.raises(ValidationError, match="events"):
        Webhook.model_validate({"name": "ops", "url_from_env": "A", "events": ["drift"]})
    hook = Webhook.model_validate({"name": "ops", "url_from_env": "OPS_HOOK"})
    assert hook.events == tuple(NotifyEvent)


def test_events_route_to_the_webhooks_that_ask_for_them():
    spec = NotificationsSpec.model_validate(
        {
            "webhooks": [
                {"name": "all", "url_from_env": "A"},
                {"name": "drift", "url_from_env": "B", "events": ["drift_found"]},
            ]
        }
    )
    assert [w.name for w in spec.for_event(NotifyEvent.DRIFT_FOUND)] == ["all", "drift"]
    assert [w.name for w in spec.for_event(NotifyEvent.WAITING)] == ["all"]
    with pytest.raises(ValidationError, match="unique"):
        NotificationsSpec.model_validate(
            {"webhooks": [{"name": "a", "url_from_env": "A"}, {"name": "a", "url_from_env": "B"}]}
        )
