"""adapters/errors/webhook.py and adapters/webhook.py against a receiver on 127.0.0.1: which
answers are retried, which are final, and that no message carries the URL or its token."""

from __future__ import annotations

import socket

import pytest
from temporalio.exceptions import ApplicationError

from adapters.errors import ErrorType
from adapters.errors.webhook import redact
from adapters.webhook import post_json, read_url
from declared_state.models import Webhook
from tests.helpers.webhook_receiver import webhook_receiver

HOOK = Webhook(name="ops", url_from_env="OPS_HOOK")
TOKEN = "s3cr3tT0ken"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (200, None),
        (204, None),
        (400, ErrorType.WEBHOOK_REFUSED),
        (403, ErrorType.WEBHOOK_REFUSED),
        (404, ErrorType.WEBHOOK_REFUSED),
        (410, ErrorType.WEBHOOK_REFUSED),
        (301, ErrorType.WEBHOOK_REFUSED),  # not followed: nobody declared the new place
        (408, ErrorType.WEBHOOK_UNAVAILABLE),
        (429, ErrorType.WEBHOOK_UNAVAILABLE),
        (500, ErrorType.WEBHOOK_UNAVAILABLE),
        (503, ErrorType.WEBHOOK_UNAVAILABLE),
    ],
)
def test_answers_are_delivered_refused_or_retried(status, error_type):
    with webhook_receiver() as receiver:
        receiver.statuses = [status]
        if error_type is None:
            assert post_json(HOOK, receiver.url, {"text": "hi"}, {"Idempotency-Key": "k"}) == status
            return
        with pytest.raises(ApplicationError) as caught:
            post_json(HOOK, receiver.url, {"text": "hi"}, {"Idempotency-Key": "k"})
    err = caught.value
    assert err.type == error_type.value
    assert err.non_retryable == (error_type is ErrorType.WEBHOOK_REFUSED)
    assert f"HTTP {status}" in err.message and TOKEN not in err.message
    assert receiver.posts[0].headers["Idempotency-Key"] == "k"


def test_no_answer_is_retryable_and_the_url_is_not_in_the_message():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T0/B0/{TOKEN}"
    with pytest.raises(ApplicationError) as caught:
        post_json(HOOK, url, {"text": "hi"}, {}, timeout=2)
    assert caught.value.type == ErrorType.WEBHOOK_UNAVAILABLE.value
    assert not caught.value.non_retryable
    assert TOKEN not in caught.value.message and url not in caught.value.message


def test_redact_removes_the_url_and_every_token_like_part():
    url = f"https://user:pw@hooks.example.com/services/T0/B0/{TOKEN}?sig=abcdef123"
    text = f"failed for {url}; path /services/T0/B0/{TOKEN}; token {TOKEN}; sig=abcdef123; pw"
    cleaned = redact(text, url)
    assert TOKEN not in cleaned and "abcdef123" not in cleaned and url not in cleaned


def test_the_url_comes_from_the_workers_environment_or_a_file(tmp_path):
    assert read_url(HOOK, {"OPS_HOOK": " https://h.example/x \n"}) == "https://h.example/x"
    for environ, problem in [({}, "is not set or empty"), ({"OPS_HOOK": "ftp://x"}, "http(s)")]:
        with pytest.raises(ApplicationError) as caught:
            read_url(HOOK, environ)
        assert caught.value.type == ErrorType.WEBHOOK_URL_MISSING.value
        assert caught.value.non_retryable and problem in caught.value.message
        assert "environment variable OPS_HOOK" in caught.value.message
    secret = tmp_path / "url"
    secret.write_text("https://h.example/from-file\n")
    assert read_url(Webhook(name="f", url_from_file=str(secret))) == "https://h.example/from-file"
    with pytest.raises(ApplicationError, match="cannot be read"):
        read_url(Webhook(name="f", url_from_file=str(tmp_path / "missing")))
