"""#23.7: the worker's health endpoint answers the kubelet's probes from the state the worker
keeps: live while its event loop runs, ready while it polls and its Temporal server answers.
A real HTTP server on 127.0.0.1 and a free port; the Temporal check is a coroutine the test
controls (the worker's real check runs in tests/e2e/test_in_cluster_rbac.py)."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

import pytest

from operations.health import (
    STALL_AFTER,
    HealthSettingError,
    parse_listen,
    start_from_environment,
)
from tests.helpers import assert_eventually


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


async def probe(endpoint, path: str) -> tuple[int, str]:
    return await asyncio.to_thread(get, endpoint.address + path)


async def test_ready_only_while_polling_and_the_server_answers():
    endpoint = start_from_environment({"TEMPORAL_BOOTSTRAP_HEALTH_PORT": "127.0.0.1:0"})
    assert endpoint is not None

    async def check_server() -> None:
        pass

    try:
        assert (await probe(endpoint, "/livez"))[0] == 200
        status, text = await probe(endpoint, "/readyz")
        assert (status, text.strip()) == (503, "not polling its task queue")
        endpoint.state.polling = True
        endpoint.watch(check_server)

        async def ready() -> None:
            assert (await probe(endpoint, "/readyz"))[0] == 200

        await assert_eventually(ready, timeout=10)
        endpoint.state.polling = False  # shutting down
        assert (await probe(endpoint, "/readyz"))[0] == 503
        assert (await probe(endpoint, "/nothing"))[0] == 404
    finally:
        endpoint.stop()


async def test_unready_with_the_reason_while_the_server_does_not_answer():
    endpoint = start_from_environment({"TEMPORAL_BOOTSTRAP_HEALTH_PORT": "127.0.0.1:0"})
    assert endpoint is not None

    async def check_server() -> None:
        raise RuntimeError("connection refused")

    try:
        endpoint.state.polling = True
        endpoint.watch(check_server)

        async def unready_with_reason() -> None:
            status, text = await probe(endpoint, "/readyz")
            assert status == 503 and "connection refused" in text, text

        await assert_eventually(unready_with_reason, timeout=10)
        assert (await probe(endpoint, "/livez"))[0] == 200
    finally:
        endpoint.stop()


async def test_not_alive_when_the_event_loop_stops_stamping():
    endpoint = start_from_environment({"TEMPORAL_BOOTSTRAP_HEALTH_PORT": "127.0.0.1:0"})
    assert endpoint is not None
    try:
        # The loop is blocked past STALL_AFTER (this test blocks it: `get` without await),
        # and the probe, served from its own thread, still answers and says so. The time
        # is simulated by an old stamp, not waited for.
        endpoint.state.loop_stamp = time.monotonic() - STALL_AFTER - 1
        status, text = get(endpoint.address + "/livez")
        assert status == 503 and "event loop stalled" in text
    finally:
        endpoint.stop()


def test_unset_means_no_endpoint():
    assert start_from_environment({}) is None


@pytest.mark.parametrize("value", ["http", "8080x", "70000", "host:"])
def test_a_bad_setting_is_one_line_naming_the_variable(value):
    with pytest.raises(HealthSettingError) as refused:
        parse_listen(value)
    assert str(refused.value).startswith(f"TEMPORAL_BOOTSTRAP_HEALTH_PORT={value!r}")


def test_a_bare_port_listens_on_every_address_for_the_kubelet():
    assert parse_listen("8080") == ("0.0.0.0", 8080)
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
