"""Webhook answers -> ErrorType, for the notify step (adapters/webhook.py posts).

- 2xx: delivered, no error;
- 408 (request timeout), 429 (rate limited) and every 5xx: WebhookUnavailable, retryable:
  the receiver may take the same POST later (a `Retry-After` in seconds becomes the next
  retry's delay, capped);
- any other 4xx (400 bad body, 401/403 revoked token, 404 deleted webhook, 410 gone):
  WebhookRefused, permanent: the same POST gets the same answer until someone fixes the
  webhook;
- no answer (timeout, refused connection, DNS, TLS): WebhookUnavailable, retryable.

The URL is a secret (its path is the token of most webhook services): messages name the
webhook and where its URL comes from, never the URL. Library text is quoted only after
`redact` removed the URL and each of its parts that could be a token.
"""

from __future__ import annotations

import urllib.parse
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from adapters.errors import ErrorType, activity_error

RETRYABLE_4XX = frozenset({408, 429})
MAX_RETRY_AFTER = timedelta(seconds=60)


def status_error_type(status: int) -> ErrorType | None:
    """None for a delivered POST, else what the status means."""
    if 200 <= status < 300:
        return None
    if status >= 500 or status in RETRYABLE_4XX:
        return ErrorType.WEBHOOK_UNAVAILABLE
    return ErrorType.WEBHOOK_REFUSED


def redact(text: str, url: str) -> str:
    """`text` without the URL, its path or query (the token), or its credentials."""
    parts = urllib.parse.urlsplit(url)
    secrets = [url, parts.path, parts.query, parts.username or "", parts.password or ""]
    secrets += [piece for piece in parts.path.split("/") if len(piece) >= 6]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text


def webhook_status_error(
    status: int, webhook: str, source: str, retry_after: str | None = None
) -> ApplicationError:
    error_type = status_error_type(status)
    assert error_type is not None, "a 2xx is not an error"
    delay = None
    if error_type is ErrorType.WEBHOOK_UNAVAILABLE and retry_after and retry_after.isdigit():
        delay = min(timedelta(seconds=int(retry_after)), MAX_RETRY_AFTER)
    if error_type is ErrorType.WEBHOOK_REFUSED:
        advice = f"check the URL in {source} (a revoked or deleted webhook answers so)"
    else:
        advice = "retrying"
    return activity_error(
        f"webhook {webhook} answered HTTP {status}; {advice}", error_type, next_retry_delay=delay
    )


def webhook_unreachable_error(webhook: str, url: str, exc: BaseException) -> ApplicationError:
    reason = getattr(exc, "reason", None) or exc
    detail = redact(f"{type(exc).__name__}: {reason}", url)
    return activity_error(
        f"webhook {webhook} did not answer ({detail}); retrying", ErrorType.WEBHOOK_UNAVAILABLE
    )


def webhook_url_error(webhook: str, source: str, problem: str) -> ApplicationError:
    return activity_error(
        f"webhook {webhook}: its URL comes from {source}, which {problem}; set it in the "
        "worker's environment (deploy/README.md) and retry",
        ErrorType.WEBHOOK_URL_MISSING,
    )
