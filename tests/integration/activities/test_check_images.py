"""check_images, the image preflight, against the local stack's registry stand-in (OCI
distribution API with Docker Hub's token flow; the images the shipped charts pin) and the
real helm rendering the real chart."""

from __future__ import annotations

import urllib.parse

import pytest
from temporalio.exceptions import ApplicationError

from activities.check_images import CheckImages
from activities.install_chart import ChartInstaller
from adapters.errors import ErrorType
from contracts.check_images import CheckImagesInput, CheckImagesResult
from declared_state.models import Environment, ImageOverride, ImageRegistrySpec
from tests.helpers import attempt


@pytest.fixture
def step(helm_binaries, kube_standin) -> CheckImages:
    return CheckImages(ChartInstaller(helm_binaries["v4"], str(kube_standin.kubeconfig_path)))


def run(step: CheckImages, env: Environment, *job_images: str) -> CheckImagesResult:
    return attempt().run(
        step.check_images, CheckImagesInput(environment=env, job_images=job_images)
    )


def with_images(env: Environment, **images: ImageOverride) -> Environment:
    return env.model_copy(update={"images": env.images.model_copy(update=images)})


def test_every_image_the_chart_pins_is_found_through_the_token_flow(
    step, local_env, image_registry
):
    since = len(image_registry.requests)
    result = run(step, local_env)
    # chart 0.52.0's values.yaml: server 1.25.2, admin-tools 1.25.2-tctl-1.18.1-cli-1.1.1,
    # ui 2.31.2 (the four server Deployments share one image)
    assert {c.image: c.outcome for c in result.images} == {
        "temporalio/server:1.25.2": "found",
        "temporalio/admin-tools:1.25.2-tctl-1.18.1-cli-1.1.1": "found",
        "temporalio/ui:2.31.2": "found",
    }
    server = next(c for c in result.images if c.image == "temporalio/server:1.25.2")
    assert set(server.used_by) == {
        f"Deployment/temporal-{s}" for s in ("frontend", "history", "matching", "worker")
    }
    assert all(c.asked == image_registry.url for c in result.images)
    # #23.5: each found image's digest, as the registry names it, is recorded.
    assert {c.image: c.digest for c in result.images} == {
        c.image: image_registry.digest(c.image) for c in result.images
    }
    assert result.warnings == () and not result.changed
    # Docker Hub's dance, per repository: 401 with a challenge, an anonymous token for that
    # repository, the HEAD again. (The images are looked up at once, so only each one's own
    # requests are in order.)
    for repository in ("temporalio/server", "temporalio/admin-tools", "temporalio/ui"):
        flow = [
            (r["method"], r["path"], r["status"])
            for r in image_registry.requests[since:]
            if r["path"].startswith(f"/v2/{repository}/")
            or urllib.parse.parse_qs(r["query"]).get("scope") == [f"repository:{repository}:pull"]
        ]
        manifest = flow[0][1] if flow else "(no request)"
        assert flow == [
            ("HEAD", manifest, 401),
            ("GET", "/token", 200),
            ("HEAD", manifest, 200),
        ], repository


def test_a_missing_image_stops_the_run_naming_it_the_registry_and_what_to_do(
    step, local_env, image_registry
):
    env = with_images(local_env, web=ImageOverride(tag="0.0.0-nope"))
    with pytest.raises(ApplicationError) as info:
        run(step, env)
    error = info.value
    assert error.type == ErrorType.IMAGE_MISSING and error.non_retryable
    assert "temporalio/ui:0.0.0-nope is not in docker.io" in error.message
    assert f"asked {image_registry.url}: HTTP 404" in error.message
    assert "pulled by Deployment/temporal-web" in error.message
    assert "Nothing was written" in error.message
    assert "images.web" in error.message and "web temporalio/ui:2.31.2" in error.message


def test_the_schema_jobs_image_is_checked_too(step, local_env):
    with pytest.raises(ApplicationError) as info:
        run(step, local_env, "temporalio/admin-tools:1.26.2-nope")
    assert "temporalio/admin-tools:1.26.2-nope is not in docker.io" in info.value.message
    assert "pulled by schema Job" in info.value.message


def test_an_unreachable_registry_is_a_warning_unless_strict(step, local_env):
    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    registry = ImageRegistrySpec(mirrors={"docker.io": closed})
    env = local_env.model_copy(update={"image_registry": registry})
    result = run(step, env)
    assert {c.outcome for c in result.images} == {"unreachable"}
    assert len(result.warnings) == 3 and "cannot reach docker.io" in result.warnings[0]
    assert "3 not checked" in result.summary

    strict = env.model_copy(update={"image_registry": registry.model_copy(update={"strict": True})})
    with pytest.raises(ApplicationError) as info:
        run(step, strict)
    assert info.value.type == ErrorType.REGISTRY_UNREACHABLE and not info.value.non_retryable
    assert "image_registry.strict" in info.value.message


def test_a_repository_the_registry_does_not_have_is_denied_a_warning(step, local_env):
    env = with_images(local_env, server=ImageOverride(repository="example/no-such-server"))
    result = run(step, env)
    denied = [c for c in result.images if c.outcome == "denied"]
    assert [c.image for c in denied] == ["example/no-such-server:1.25.2"]
    assert "refuses to say whether example/no-such-server:1.25.2 exists" in result.warnings[0]
