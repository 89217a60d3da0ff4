"""The stand-in kubelet's image pulls (images.py) with the real Python client: a pod (of a
Deployment, or of a Job) whose image the linked registry stand-in does not have waits in
ErrImagePull, then ImagePullBackOff, with the Events kubelet's image manager writes
(pkg/kubelet/images/image_manager.go), and starts once the image is there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from local_stack.kube_api_standin import KubeApiStandIn
from local_stack.registry import RegistryStandIn

from .conftest import NS, deployment, pods_of, ready, waiting

IMAGE = "example/app:1"


@pytest.fixture
def registry(standin: KubeApiStandIn) -> Iterator[RegistryStandIn]:
    with RegistryStandIn.start(images=set()) as registry:
        standin.use_registry(registry.has)
        try:
            yield registry
        finally:
            standin.use_registry(None)


def events(core: client.CoreV1Api, pod: client.V1Pod) -> list[tuple[str, str, str]]:
    found = core.list_namespaced_event(
        NS, field_selector=f"involvedObject.name={pod.metadata.name}"
    ).items
    return [(e.type, e.reason, e.message) for e in found]


def test_a_missing_image_goes_to_image_pull_back_off_and_recovers_once_pushed(
    registry, core, apps, wait_for
):
    apps.create_namespaced_deployment(NS, deployment("app", container={"image": IMAGE}))
    (pod,) = wait_for(
        lambda: (
            (p := pods_of(core, "app"))
            and p[0].status.container_statuses
            and waiting(p[0])[0] == "ImagePullBackOff"
            and p
        ),
        what="ImagePullBackOff",
    )
    assert pod.status.phase == "Pending" and not ready(pod)
    assert waiting(pod) == ("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"')
    name = "docker.io/example/app:1"
    error = (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{name}": '
        f'failed to resolve reference "{name}": {name}: not found'
    )
    seen = events(core, pod)
    for expected in [
        ("Normal", "Pulling", f'Pulling image "{IMAGE}"'),
        ("Warning", "Failed", f'Failed to pull image "{IMAGE}": {error}'),
        ("Warning", "Failed", "Error: ErrImagePull"),
        ("Normal", "BackOff", f'Back-off pulling image "{IMAGE}"'),
        ("Warning", "Failed", "Error: ImagePullBackOff"),
    ]:
        assert expected in seen, expected

    registry.add(IMAGE)  # pushed: the next pull after the back-off succeeds
    wait_for(lambda: ready(pods_of(core, "app")[0]), timeout=30, what="the pod to start")


def test_a_job_pod_waits_in_image_pull_back_off_and_the_job_stays_active(
    registry, core, wait_for, api_client
):
    batch = client.BatchV1Api(api_client)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pull"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": IMAGE, "command": ["true"]}],
                }
            },
        },
    }
    batch.create_namespaced_job(NS, job)
    (pod,) = wait_for(
        lambda: (
            (p := core.list_namespaced_pod(NS, label_selector="job-name=pull").items)
            and p[0].status.container_statuses
            and waiting(p[0])[0] == "ImagePullBackOff"
            and p
        ),
        what="ImagePullBackOff",
    )
    assert ("Warning", "Failed", "Error: ErrImagePull") in events(core, pod)
    assert (batch.read_namespaced_job("pull", NS).status.active or 0) == 1
    registry.add(IMAGE)
    wait_for(
        lambda: any(
            c.type == "Complete" and c.status == "True"
            for c in batch.read_namespaced_job("pull", NS).status.conditions or []
        ),
        timeout=30,
        what="the Job to complete",
    )
