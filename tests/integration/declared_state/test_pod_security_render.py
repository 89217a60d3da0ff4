"""Every shipped chart (both values layouts), rendered by the real helm with the staging
environment, passes Pod Security "restricted" (#23.1).

Each pod template is checked by the stand-in's PodSecurity rules (written from
k8s.io/pod-security-admission, independently of the values code), and each container's user
against the user its image declares (from the images' Dockerfiles: temporalio/server and
admin-tools uid 1000; temporalio/ui uid 5000 before 2.38.3, 1000 from it), read from the
image reference in the manifest, not from the chart version the values code keys on.
"""

from __future__ import annotations

from typing import Any

import pytest

from declared_state.chart_values import build_chart_values
from declared_state.versions import version_key
from local_stack.kube_api_standin import pod_security

from .test_chart_values_render import SHIPPED, environment, render_values

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def image_uid(image: str) -> int:
    repository, _, tag = image.rpartition(":")
    if repository.endswith("temporalio/ui"):
        return 5000 if version_key(tag) < (2, 38, 3) else 1000
    assert repository.endswith(("temporalio/server", "temporalio/admin-tools")), image
    return 1000


def pod_templates(docs: Any) -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for d in docs
        if d.get("kind") in WORKLOAD_KINDS
    ]


@pytest.fixture(params=SHIPPED)
def templates(request, helm_binaries) -> list[tuple[str, dict[str, Any]]]:
    env = environment(request.param)
    docs = render_values(helm_binaries["v3"], env, build_chart_values(env))
    return pod_templates(docs)


def test_every_pod_passes_restricted_and_runs_as_its_images_user(templates) -> None:
    names = {name for name, _ in templates}
    assert {"temporal-frontend", "temporal-web", "temporal-admintools"} <= names, names
    for name, spec in templates:
        assert pod_security.violations("restricted", spec) == [], name
        security = spec["securityContext"]
        for c in spec["containers"]:
            assert security["runAsUser"] == image_uid(c["image"]), (name, c["image"])
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_a_values_override_that_allows_privilege_escalation_is_refused(helm_binaries) -> None:
    """The check above is not vacuous: the same render with one field broken fails it."""
    env = environment("1.6.0")
    values = build_chart_values(env)
    values["web"]["containerSecurityContext"]["allowPrivilegeEscalation"] = True
    docs = render_values(helm_binaries["v3"], env, values)
    (web,) = [spec for name, spec in pod_templates(docs) if name == "temporal-web"]
    assert pod_security.violations("restricted", web) == [
        (
            "allowPrivilegeEscalation != false",
            'container "temporal-web" must set securityContext.allowPrivilegeEscalation=false',
        )
    ]


def test_read_only_root_where_the_image_writes_nothing(templates) -> None:
    for name, spec in templates:
        for c in spec["containers"]:
            read_only = c["securityContext"]["readOnlyRootFilesystem"]
            # Servers before 1.30 render their config with dockerize into the image's root.
            tag = c["image"].rpartition(":")[2]
            writes = "temporalio/server" in c["image"] and version_key(tag) < (1, 30, 0)
            assert read_only is not writes, (name, c["image"])
            if "temporalio/ui" in c["image"] and version_key(tag) < (2, 38, 3):
                mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
                assert "/home/ui-server/config" in mounts, name
