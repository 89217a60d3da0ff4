"""wait_frontend_healthy against real Temporal dev servers (the session target, a free port
nobody listens on, and a server that starts while the activity waits)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client as k8s
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.wait_frontend_healthy import WaitFrontendHealthy
from adapters.errors import ErrorType
from adapters.temporal_target import TargetTemporalClients
from contracts.wait_frontend_healthy import WaitFrontendHealthyInput, WaitFrontendHealthyResult
from declared_state.models import Environment, FrontendSpec
from local_stack.processes import LOOPBACK, free_port
from local_stack.temporal_servers import dev_server
from tests.helpers import in_namespace


def activity_env(start_to_close: timedelta = timedelta(seconds=60)) -> ActivityEnvironment:
    """An ActivityEnvironment whose info looks like a real attempt that just started."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        activity_type="wait_frontend_healthy",
        started_time=datetime.now(UTC),
        start_to_close_timeout=start_to_close,
        schedule_to_close_timeout=None,
    )
    return env


@pytest.fixture
def local_env(local_env: Environment, target_temporal) -> Environment:
    """local.yaml with its frontend dialled directly: the session's target server (the
    installed releases' frontends, reached by port-forward, are in test_frontend_port_forward.py)."""
    return pointed_at(local_env, target_temporal.address)


def pointed_at(env: Environment, address: str) -> Environment:
    return env.model_copy(update={"frontend": FrontendSpec(address=address)})


async def run(
    act_env: ActivityEnvironment, env: Environment, **fields: Any
) -> tuple[WaitFrontendHealthyResult, list[dict[str, Any]]]:
    beats: list[dict[str, Any]] = []
    act_env.on_heartbeat = lambda *details: beats.append(details[0])
    act = WaitFrontendHealthy(TargetTemporalClients())
    result = await act_env.run(
        act.wait_frontend_healthy, WaitFrontendHealthyInput(environment=env, **fields)
    )
    return result, beats


async def test_serving_frontend(local_env, target_temporal):
    result, beats = await run(activity_env(), local_env)

    assert result.status == "SERVING"
    assert result.address == target_temporal.address
    assert result.checks == 1
    assert beats == [{"attempt": 1, "last_answer": "SERVING", "elapsed_s": beats[0]["elapsed_s"]}]


async def test_frontend_down_gives_up_after_max_wait(local_env):
    address = f"{LOOPBACK}:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ApplicationError) as caught:
        await run(
            activity_env(),
            pointed_at(local_env, address),
            max_wait=timedelta(seconds=3),
            poll_interval=timedelta(milliseconds=500),
        )
    elapsed = time.monotonic() - started

    err = caught.value
    assert err.type == ErrorType.FRONTEND_UNHEALTHY
    assert not err.non_retryable
    assert address in err.message
    assert "last answer: unreachable" in err.message
    assert "Connection refused" in err.message
    assert 2.5 <= elapsed < 10


async def test_malformed_address_is_a_configuration_mismatch(local_env):
    # The SDK's ValueError used to escape unclassified, to be retried until the deadline.
    with pytest.raises(ApplicationError) as caught:
        await run(activity_env(), pointed_at(local_env, f"{LOOPBACK}:notaport"))

    err = caught.value
    assert err.type == ErrorType.CONFIGURATION_MISMATCH
    assert err.non_retryable
    assert "fix frontend.address" in err.message and "notaport" in err.message


async def test_attempt_timeout_caps_the_wait(local_env):
    """With max_wait at 5 minutes, the attempt's own 4 s start-to-close still bounds it."""
    address = f"{LOOPBACK}:{free_port()}"
    beats: list[dict[str, Any]] = []
    act_env = activity_env(start_to_close=timedelta(seconds=4))
    act_env.on_heartbeat = lambda *details: beats.append(details[0])
    started = time.monotonic()
    with pytest.raises(ApplicationError) as caught:
        await act_env.run(
            WaitFrontendHealthy(TargetTemporalClients()).wait_frontend_healthy,
            WaitFrontendHealthyInput(
                environment=pointed_at(local_env, address),
                poll_interval=timedelta(milliseconds=500),
            ),
        )
    elapsed = time.monotonic() - started

    assert caught.value.type == ErrorType.FRONTEND_UNHEALTHY
    assert elapsed < 4  # raised before the attempt would have timed out
    assert len(beats) >= 3
    assert [b["attempt"] for b in beats] == list(range(1, len(beats) + 1))
    assert all(b["last_answer"].startswith("unreachable: ") for b in beats)


async def test_frontend_that_comes_up_during_the_wait(local_env, tmp_path):
    late = dev_server("late", headless=True, log_path=tmp_path / "late.log")
    try:
        waiting = asyncio.create_task(
            run(
                activity_env(),
                pointed_at(local_env, late.address),
                max_wait=timedelta(seconds=60),
                poll_interval=timedelta(milliseconds=500),
            )
        )
        await asyncio.sleep(2)
        assert not waiting.done(), "the activity must still be waiting for the frontend"
        await asyncio.to_thread(late.start)
        result, beats = await asyncio.wait_for(waiting, 60)
    finally:
        late.stop()

    assert result.status == "SERVING"
    assert result.address == late.address
    assert result.checks == len(beats) >= 3
    assert beats[0]["last_answer"].startswith("unreachable: ")
    assert beats[-1]["last_answer"] == "SERVING"
    assert result.waited_seconds >= 2


async def test_cancellation_propagates(local_env):
    act_env = activity_env()
    waiting = asyncio.create_task(
        run(
            act_env,
            pointed_at(local_env, f"{LOOPBACK}:{free_port()}"),
            poll_interval=timedelta(milliseconds=200),
        )
    )
    await asyncio.sleep(1)
    assert not waiting.done()
    act_env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 5)


async def test_a_frontend_pod_in_image_pull_back_off_is_reported_at_once(
    local_env, kube_clients, kube_standin
):
    """max_wait is ten minutes: the step ends because kubelet cannot pull the frontend's
    image (the registry stand-in lacks the tag), naming it, not because time ran out."""
    env = in_namespace(
        pointed_at(local_env, f"{LOOPBACK}:{free_port()}"), f"frontend-nope-{free_port()}"
    )
    namespace, nope = env.kubernetes.namespace, "temporalio/server:1.25.2-nope"
    kube_clients.core_v1("standin").create_namespace(
        k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
    )
    labels = {"app.kubernetes.io/instance": "temporal", "app.kubernetes.io/component": "frontend"}
    kube_clients.apps_v1("standin").create_namespaced_deployment(
        namespace,
        k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name="temporal-frontend", labels=labels),
            spec=k8s.V1DeploymentSpec(
                selector=k8s.V1LabelSelector(match_labels=labels),
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels=labels),
                    spec=k8s.V1PodSpec(
                        containers=[k8s.V1Container(name="temporal-frontend", image=nope)]
                    ),
                ),
            ),
        ),
    )
    act = WaitFrontendHealthy(TargetTemporalClients(kube_clients))
    with pytest.raises(ApplicationError) as caught:
        await activity_env(timedelta(minutes=11)).run(
            act.wait_frontend_healthy,
            WaitFrontendHealthyInput(
                environment=env,
                max_wait=timedelta(minutes=10),
                poll_interval=timedelta(milliseconds=500),
            ),
        )
    assert caught.value.type == ErrorType.IMAGE_PULL_BACKOFF
    assert f"cannot pull {nope}: ImagePullBackOff" in caught.value.message
