"""check_server_version and soak against a real Temporal dev server (the session target)
and an address nobody listens on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.check_server_version import CheckServerVersion
from activities.soak import Soak
from adapters.temporal_target import TargetTemporalClients
from contracts.check_server_version import CheckServerVersionInput
from contracts.soak import SoakInput
from declared_state.models import FrontendSpec
from local_stack.processes import LOOPBACK, free_port
from tests.helpers import attempt


@pytest.fixture
def direct_env(local_env, target_temporal):
    """local.yaml dialling the session's target server directly (no release installed)."""
    frontend = FrontendSpec(connect="direct", address=target_temporal.address)
    return local_env.model_copy(update={"frontend": frontend})


async def test_the_frontend_reports_at_least_the_hops_release(direct_env, target_temporal):
    step = CheckServerVersion(TargetTemporalClients())
    result = await attempt().run(
        step.check_server_version, CheckServerVersionInput(environment=direct_env, minimum="1.25.2")
    )
    assert result.address == target_temporal.address
    assert tuple(int(p) for p in result.server_version.split(".")[:2]) >= (1, 25)


async def test_an_older_release_answering_is_not_yet(direct_env):
    step = CheckServerVersion(TargetTemporalClients())
    with pytest.raises(ApplicationError) as info:
        await attempt().run(
            step.check_server_version,
            CheckServerVersionInput(environment=direct_env, minimum="9.0.0"),
        )
    assert (info.value.type, info.value.non_retryable) == ("ServerVersionBehind", False)
    assert "older than the 9.0.0 this hop deployed" in info.value.message


async def test_the_soak_holds_while_serving(direct_env):
    beats: list = []
    act = attempt()
    act.on_heartbeat = lambda *d: beats.append(d[0])
    result = await act.run(
        Soak(TargetTemporalClients()).soak,
        SoakInput(
            environment=direct_env,
            duration=timedelta(seconds=1.5),
            poll_interval=timedelta(seconds=0.5),
        ),
    )
    assert result.checks >= 3 and result.soaked_seconds >= 1.5
    assert all("SERVING" in b["phase"] for b in beats)


async def test_the_soak_stops_at_the_first_answer_that_is_not_serving(local_env):
    gone = local_env.model_copy(
        update={"frontend": FrontendSpec(address=f"{LOOPBACK}:{free_port()}")}
    )
    with pytest.raises(ApplicationError) as info:
        await attempt().run(
            Soak(TargetTemporalClients()).soak,
            SoakInput(environment=gone, duration=timedelta(minutes=5)),
        )
    assert (info.value.type, info.value.non_retryable) == ("SoakFailed", True)
    assert "0s into the 300s soak" in info.value.message
