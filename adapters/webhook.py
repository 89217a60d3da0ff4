"""POST a JSON document to a webhook (stdlib urllib: the product installs without extras).

`read_url` finds a webhook's URL where its declaration says (the worker's environment
variable, or a file such as a mounted Secret key); `post_json` sends one POST and returns the
receiver's status, raising only through adapters/errors/webhook.py's table, whose messages
never contain the URL. Redirects are not followed (a webhook that moved is refused: 3xx is
not delivered, and following it would resend the body to a place nobody declared).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.errors.webhook import (
    webhook_status_error,
    webhook_unreachable_error,
    webhook_url_error,
)
from declared_state.models import Webhook

POST_TIMEOUT = 10.0
"""Seconds for one POST (connect and answer); within the step's start-to-close."""


def read_url(webhook: Webhook, environ: Mapping[str, str] | None = None) -> str:
    """The webhook's URL, read where its declaration says; raises WebhookUrlMissing."""
    environ = os.environ if environ is None else environ
    if webhook.url_from_env is not None:
        url = environ.get(webhook.url_from_env, "").strip()
        if not url:
            raise webhook_url_error(webhook.name, webhook.source, "is not set or empty")
    else:
        assert webhook.url_from_file is not None  # the model sets exactly one
        try:
            url = Path(webhook.url_from_file).read_text().strip()
        except OSError as exc:
            raise webhook_url_error(
                webhook.name, webhook.source, f"cannot be read ({type(exc).__name__})"
            ) from None
        if not url:
            raise webhook_url_error(webhook.name, webhook.source, "is empty")
    if not url.startswith(("https://", "http://")):
        # Never quote it: a mistyped URL is still a token.
        raise webhook_url_error(webhook.name, webhook.source, "does not hold an http(s) URL")
    return url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_json(
    webhook: Webhook,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    timeout: float = POST_TIMEOUT,
) -> int:
    """POST `body` as JSON; the 2xx status the receiver answered. Raises the table's
    ApplicationError for any other answer or none."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        retry_after = exc.headers.get("Retry-After") if exc.headers else None
        exc.close()
        raise webhook_status_error(status, webhook.name, webhook.source, retry_after) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise webhook_unreachable_error(webhook.name, url, exc) from None
    if not 200 <= status < 300:
        raise webhook_status_error(status, webhook.name, webhook.source)
    return status
