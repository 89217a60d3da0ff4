"""Webhook notifications from the workflows (#22.5), on the time-skipping test server with
the step fakes and the REAL notify activity posting to a receiver on 127.0.0.1
(tests/helpers/webhook_receiver.py): a wait for approval is told once, with the commands
that answer it, also when the first POST is answered 503 and the worker is replaced (its
replay sends nothing); each wait of a failing step once per attempt, then `failed` on abort;
a drift check that finds drift tells `drift_found` once, with counts and the first items; a
webhook that refuses (404) never fails the run; the URL is nowhere in the history.
"""

from __future__ import annotations

import base64
import re
import uuid

import pytest
from temporalio.client import WorkflowFailureError

from adapters.errors import ErrorType, activity_error
from contracts.bootstrap import BootstrapInput, RunState
from contracts.drift_check import DriftCheckInput, DriftState
from contracts.operator import OperatorRequest
from declared_state.loader import load_environment
from declared_state.models import DriftPolicy, Environment, NotificationsSpec, Webhook
from tests.helpers import assert_eventually, new_worker
from tests.helpers.fakes import StepFakes
from tests.helpers.webhook_receiver import webhook_receiver
from workflows.bootstrap import BootstrapWorkflow
from workflows.drift_check import DriftCheckWorkflow

URL_VAR = "TB_TEST_OPS_WEBHOOK"


def with_webhooks(env: Environment, *webhooks: Webhook, **fields) -> Environment:
    return env.model_copy(update={"notifications": NotificationsSpec(webhooks=webhooks), **fields})


OPS = Webhook(name="ops", url_from_env=URL_VAR)


@pytest.fixture
def receiver(monkeypatch):
    with webhook_receiver() as r:
        monkeypatch.setenv(URL_VAR, r.url)  # the worker's environment, as in a pod
        yield r


async def history_text(handle) -> str:
    """The history as JSON, with every payload decoded (they are base64 there)."""
    text = (await handle.fetch_history()).to_json()
    payloads = [
        base64.b64decode(data).decode("utf-8", "replace")
        for data in re.findall(r'"data": "([A-Za-z0-9+/=]+)"', text)
    ]
    return "\n".join([text, *payloads])


async def test_a_wait_for_approval_is_told_once_through_a_503_and_a_new_worker(
    time_skipping_env, receiver
):
    receiver.statuses = [503]  # the first POST fails: the step retries with the same key
    env = with_webhooks(load_environment("staging"), OPS, approval_required=True)
    fakes = StepFakes(missing=("ensure_ca_bundle", "install_chart", "register_namespaces"))
    queue = f"tq-{uuid.uuid4()}"
    client = time_skipping_env.client
    # No cache (no sticky queue): every workflow task replays the run from its history, as a
    # worker that was killed and started again does.
    uncached = {"task_queue": queue, "max_cached_workflows": 0}
    async with new_worker(client, BootstrapWorkflow, activities=fakes.all(), **uncached):
        handle = await client.start_workflow(
            BootstrapWorkflow.run,
            BootstrapInput(environment=env, requested_by="test"),
            id=f"provision-notify-{uuid.uuid4()}",
            task_queue=queue,
        )

        async def told() -> None:
            assert len(receiver.accepted("waiting")) == 1, receiver.posts

        await assert_eventually(told)
        # The first worker is gone; another one takes the approval and ends the run.
    async with new_worker(client, BootstrapWorkflow, activities=fakes.all(), **uncached):
        await handle.signal("no-such-signal")  # a workflow task: replayed from scratch
        await handle.execute_update(BootstrapWorkflow.approve, OperatorRequest(by="alice"))
        result = await handle.result()
    assert result.state == RunState.DONE

    [waiting] = receiver.accepted("waiting")
    assert receiver.accepted() == [waiting], "nothing else was told"
    keys = {p.headers["Idempotency-Key"] for p in receiver.posts}
    assert [p.status for p in receiver.posts] == [503, 200]
    run_id = handle.result_run_id
    assert keys == {f"{handle.id}/{run_id}/waiting/approval"}
    assert waiting.body["idempotency_key"] == f"{handle.id}/{run_id}/waiting/approval"
    assert waiting.path == "/services/T0000/B0000/s3cr3tT0ken"
    assert f"python starter.py approve {env.name}" in waiting.body["commands"]
    assert f"python starter.py abort {env.name}" in waiting.body["commands"]
    assert f"python starter.py approve {env.name}" in waiting.body["text"]
    assert waiting.body["environment"] == env.name and waiting.body["event"] == "waiting"
    text = await history_text(handle)
    assert URL_VAR in text and "s3cr3tT0ken" not in text and receiver.url not in text


async def test_each_wait_of_a_failing_step_is_told_then_the_abort(time_skipping_env, receiver):
    env = with_webhooks(load_environment("staging"), OPS)
    fakes = StepFakes(missing=("ensure_ca_bundle", "install_chart", "register_namespaces"))
    fakes.failures["check_database"] = (
        -1,
        activity_error("schema of temporal is 1.12", ErrorType.SCHEMA_OUTDATED),
    )
    client = time_skipping_env.client
    async with new_worker(client, BootstrapWorkflow, activities=fakes.all()) as worker:
        handle = await client.start_workflow(
            BootstrapWorkflow.run,
            BootstrapInput(environment=env, requested_by="test"),
            id=f"provision-notify-{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )

        async def told(n: int) -> None:
            assert len(receiver.accepted("waiting")) == n, receiver.posts

        await assert_eventually(lambda: told(1))
        await handle.execute_update(BootstrapWorkflow.retry, OperatorRequest(by="alice"))
        await assert_eventually(lambda: told(2))
        await handle.execute_update(BootstrapWorkflow.abort, OperatorRequest(by="alice"))
        with pytest.raises(WorkflowFailureError):
            await handle.result()

    states = [p.body["state"] for p in receiver.accepted()]
    assert states == ["check_database/attempt-1", "check_database/attempt-2", "aborted"]
    first = receiver.accepted("waiting")[0].body
    assert (
        "SchemaOutdated" in first["lines"][0] and "schema of temporal is 1.12" in first["lines"][0]
    )
    assert f"python starter.py retry {env.name}" in first["commands"]
    assert [p.body["event"] for p in receiver.accepted()][-1] == "failed"


async def test_drift_found_is_told_once_and_a_refusing_webhook_fails_nothing(
    time_skipping_env, receiver, monkeypatch
):
    with webhook_receiver("/gone") as gone:
        gone.statuses = [404] * 10
        monkeypatch.setenv("TB_TEST_GONE_WEBHOOK", gone.url)
        env = with_webhooks(
            load_environment("staging"),
            OPS,
            Webhook(name="gone", url_from_env="TB_TEST_GONE_WEBHOOK"),
            Webhook(name="repairs-only", url_from_env="TB_UNSET", events=("drift_repaired",)),
        )
        fakes = StepFakes(drifted=("ensure_ca_bundle", "install_chart"))
        async with new_worker(
            time_skipping_env.client, DriftCheckWorkflow, activities=fakes.all()
        ) as worker:
            handle = await time_skipping_env.client.start_workflow(
                DriftCheckWorkflow.run,
                DriftCheckInput(environment=env, policy=DriftPolicy.REPORT),
                id=f"drift-check-notify-{uuid.uuid4()}",
                task_queue=worker.task_queue,
            )
            result = await handle.result()
        assert result.state == DriftState.DRIFTED
        assert len(gone.posts) == 1, "a 404 is not retried"

    [found] = receiver.accepted()
    assert found.body["event"] == "drift_found"
    assert found.body["counts"] == {"ensure_ca_bundle": 1, "install_chart": 1}
    assert found.body["title"].startswith("drift found: 2 difference(s)")
    assert any("server.replicaCount" in line for line in found.body["lines"])
    assert found.body["commands"] == []  # policy report: nothing waits
