"""Contract tests against the stand-in with the official `kubernetes` Python client."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from typing import Any

import kubernetes
import pytest
from kubernetes import client, watch

from local_stack.kube_api_standin import KubeApiStandIn
from local_stack.kube_api_standin.identity import ADMIN_TOKEN


def _reason(exc: client.ApiException) -> str:
    return json.loads(exc.body)["reason"]


def _deployment(name: str, image: str = "nginx:1", **labels: str) -> dict:
    labels = {"app": name, **labels}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                        },
                        {"name": "sidecar", "image": "busybox"},
                    ]
                },
            },
        },
    }


def _when(apps: client.AppsV1Api, name: str, **status: object):
    """The Deployment once its status has the given fields, for wait_for."""

    def check() -> object:
        dep = apps.read_namespaced_deployment(name, "default")
        got = dep.status.to_dict() if dep.status else {}
        return dep if all(got.get(k) == v for k, v in status.items()) else None

    return check


def test_configmap_crud_with_label_and_field_selectors(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "team"}})
    for name, app in (("one", "a"), ("two", "b"), ("three", "a")):
        core.create_namespaced_config_map(
            "team", {"metadata": {"name": name, "labels": {"app": app}}, "data": {"k": name}}
        )

    def names(**kw: str) -> list[str]:
        return sorted(c.metadata.name for c in core.list_namespaced_config_map("team", **kw).items)

    assert names(label_selector="app=a") == ["one", "three"]
    assert names(label_selector="app!=a") == ["two"]
    assert names(label_selector="app in (a,b),app notin (b)") == ["one", "three"]
    assert names(label_selector="!app") == []
    assert names(field_selector="metadata.name=two") == ["two"]
    cross = core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=team")
    assert len(cross.items) == 3

    got = core.read_namespaced_config_map("one", "team")
    assert got.metadata.uid and got.metadata.creation_timestamp and got.data == {"k": "one"}
    patched = core.patch_namespaced_config_map("one", "team", {"data": {"extra": "x"}})
    assert patched.data == {"k": "one", "extra": "x"}
    assert int(patched.metadata.resource_version) > int(got.metadata.resource_version)

    replaced = core.replace_namespaced_config_map(
        "one", "team", {**patched.to_dict(), "data": {"only": "this"}}
    )
    assert replaced.data == {"only": "this"}
    assert replaced.metadata.uid == got.metadata.uid

    core.delete_namespaced_config_map("one", "team")
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_config_map("one", "team")
    assert (err.value.status, _reason(err.value)) == (404, "NotFound")


def test_error_reasons(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map("missing", {"metadata": {"name": "c"}})
    assert (err.value.status, _reason(err.value)) == (404, "NotFound")

    core.create_namespace({"metadata": {"name": "dup"}})
    first = core.create_namespaced_config_map(
        "dup", {"metadata": {"name": "c"}, "data": {"v": "1"}}
    )
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map("dup", {"metadata": {"name": "c"}})
    assert (err.value.status, _reason(err.value)) == (409, "AlreadyExists")

    core.patch_namespaced_config_map(
        "c", "dup", {"data": {"v": "2"}}
    )  # first's version is now stale
    stale = {**first.to_dict(), "data": {"v": "3"}}
    with pytest.raises(client.ApiException) as err:
        core.replace_namespaced_config_map("c", "dup", stale)
    assert (err.value.status, _reason(err.value)) == (409, "Conflict")
    assert core.read_namespaced_config_map("c", "dup").data == {"v": "2"}


def test_secret_string_data_is_folded_into_data(core: client.CoreV1Api) -> None:
    body = {
        "metadata": {"name": "db", "labels": {"owner": "me"}},
        "stringData": {"password": "s3cret"},
    }
    core.create_namespaced_secret("default", body)
    secret = core.read_namespaced_secret("db", "default")
    assert secret.string_data is None
    assert base64.b64decode(secret.data["password"]) == b"s3cret"
    assert secret.type == "Opaque"
    assert [
        s.metadata.name
        for s in core.list_namespaced_secret("default", label_selector="owner=me").items
    ] == ["db"]


def test_namespace_delete_cascades(
    core: client.CoreV1Api, apps: client.AppsV1Api, wait_for
) -> None:
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    core.create_namespaced_secret("doomed", {"metadata": {"name": "s"}})
    apps.create_namespaced_deployment("doomed", _deployment("web"))
    wait_for(lambda: apps.list_namespaced_replica_set("doomed").items, what="ReplicaSet")
    core.create_namespace({"metadata": {"name": "kept"}})
    core.create_namespaced_config_map("kept", {"metadata": {"name": "c"}})

    core.delete_namespace("doomed")
    assert core.read_namespace("doomed").status.phase == "Terminating"
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map("doomed", {"metadata": {"name": "late"}})
    assert (err.value.status, _reason(err.value)) == (403, "Forbidden")

    def gone() -> bool:
        try:
            core.read_namespace("doomed")
        except client.ApiException as e:
            return _reason(e) == "NotFound"
        return False

    wait_for(gone, what="namespace finalized")
    assert not core.list_config_map_for_all_namespaces(
        field_selector="metadata.namespace=doomed"
    ).items
    assert not core.list_secret_for_all_namespaces(field_selector="metadata.namespace=doomed").items
    assert not apps.list_replica_set_for_all_namespaces().items
    assert core.read_namespaced_config_map("c", "kept")


def test_deployment_becomes_available_with_an_owned_replica_set(
    apps: client.AppsV1Api, wait_for
) -> None:
    dep = apps.create_namespaced_deployment("default", _deployment("api"))
    assert dep.metadata.generation == 1
    assert dep.status is None or not dep.status.available_replicas  # the controller acts later
    ready = wait_for(_when(apps, "api", available_replicas=2))
    conditions = {c.type: (c.status, c.reason) for c in ready.status.conditions}
    assert conditions["Available"] == ("True", "MinimumReplicasAvailable")
    assert conditions["Progressing"] == ("True", "NewReplicaSetAvailable")
    assert ready.status.observed_generation == 1

    (rs,) = apps.list_namespaced_replica_set("default", label_selector="app=api").items
    (owner,) = rs.metadata.owner_references
    assert (owner.kind, owner.uid, owner.controller) == ("Deployment", dep.metadata.uid, True)
    assert rs.spec.template.spec.containers == dep.spec.template.spec.containers
    assert rs.status.ready_replicas == 2

    # A strategic merge patch that reorders containers and merges env by name.
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "main"}],
                    "containers": [
                        {"name": "main", "image": "nginx:2", "env": [{"name": "X", "value": "9"}]}
                    ],
                }
            }
        }
    }
    patched = apps.patch_namespaced_deployment("api", "default", patch)
    containers = patched.spec.template.spec.containers
    assert [c.name for c in containers] == ["sidecar", "main"]
    assert containers[1].image == "nginx:2"
    assert {e.name: e.value for e in containers[1].env} == {"X": "9", "Y": "2"}
    assert patched.metadata.generation == 2

    wait_for(_when(apps, "api", observed_generation=2, available_replicas=2))
    sets = {
        next(c.image for c in r.spec.template.spec.containers if c.name == "main"): r
        for r in apps.list_namespaced_replica_set("default").items
    }
    assert sets["nginx:2"].spec.replicas == 2
    wait_for(
        lambda: (
            apps.read_namespaced_replica_set(sets["nginx:1"].metadata.name, "default").spec.replicas
            == 0
        )
    )

    apps.delete_namespaced_deployment("api", "default")
    assert not apps.list_namespaced_replica_set("default").items  # owned ReplicaSets are collected


def test_status_subresource_is_separate_from_spec(apps: client.AppsV1Api, wait_for) -> None:
    standin_status = {"replicas": 7, "observedGeneration": 1}
    apps.create_namespaced_deployment("default", {**_deployment("s"), "status": standin_status})
    dep = wait_for(_when(apps, "s", replicas=2))
    # A PUT of the main resource keeps the status as it is ...
    body = apps.api_client.sanitize_for_serialization(dep)
    body["status"]["replicas"] = 99
    assert apps.replace_namespaced_deployment("s", "default", body).status.replicas == 2
    # ... while /status changes only the status, and generation stays.
    updated = apps.patch_namespaced_deployment_status(
        "s", "default", {"status": {"replicas": 5}, "spec": {"replicas": 9}}
    )
    assert (updated.status.replicas, updated.spec.replicas, updated.metadata.generation) == (
        5,
        2,
        1,
    )


def test_never_ready_deployment_reports_unavailable(
    standin: KubeApiStandIn, apps: client.AppsV1Api, wait_for
) -> None:
    standin.never_ready("stuck", namespace="default")
    apps.create_namespaced_deployment("default", _deployment("stuck"))
    dep = wait_for(_when(apps, "stuck", observed_generation=1))
    assert not dep.status.available_replicas
    assert {c.type: c.status for c in dep.status.conditions}["Available"] == "False"
    standin.allow_ready("stuck", namespace="default")
    wait_for(_when(apps, "stuck", available_replicas=2), what="ready")


def test_never_ready_over_the_admin_endpoint(
    standin: KubeApiStandIn, apps: client.AppsV1Api, wait_for
) -> None:
    _post(standin, "/_standin/never-ready", {"namespace": "default", "name": "held"})
    apps.create_namespaced_deployment("default", _deployment("held"))
    apps.create_namespaced_deployment("default", _deployment("free"))
    wait_for(_when(apps, "free", available_replicas=2))
    assert not apps.read_namespaced_deployment("held", "default").status.available_replicas


def test_json_merge_and_server_side_apply_patches(
    api_client: client.ApiClient, core: client.CoreV1Api
) -> None:
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "p"}, "data": {"a": "1", "b": "2"}}
    )
    ops = [{"op": "replace", "path": "/data/a", "value": "10"}, {"op": "remove", "path": "/data/b"}]
    assert core.patch_namespaced_config_map("p", "default", ops).data == {"a": "10"}
    merged = core.patch_namespaced_config_map(
        "p",
        "default",
        {"data": {"a": None, "c": "3"}},
        _content_type="application/merge-patch+json",
    )
    assert merged.data == {"c": "3"}

    dyn = kubernetes.dynamic.DynamicClient(api_client)
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    dyn.server_side_apply(
        namespaces,
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "applied"}},
        field_manager="t",
    )
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa", "namespace": "applied"},
        "data": {"x": "1", "y": "2"},
    }
    dyn.server_side_apply(configmaps, body=config, field_manager="t")
    # Fields the same manager stops applying are removed.
    dyn.server_side_apply(configmaps, body={**config, "data": {"x": "5"}}, field_manager="t")
    assert core.read_namespaced_config_map("ssa", "applied").data == {"x": "5"}


def test_watch_replays_history_and_streams_live_events(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "w"}})
    core.create_namespaced_config_map("w", {"metadata": {"name": "before"}})
    since = core.list_namespaced_config_map("w").metadata.resource_version
    core.create_namespaced_config_map(
        "w", {"metadata": {"name": "after", "labels": {"watch": "me"}}}
    )
    core.patch_namespaced_config_map("before", "w", {"data": {"k": "v"}})

    def later() -> None:
        core.delete_namespaced_config_map("after", "w")

    timer = threading.Timer(0.5, later)
    timer.start()
    seen = []
    stream = watch.Watch().stream(
        core.list_namespaced_config_map, "w", resource_version=since, timeout_seconds=2
    )
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name))
    timer.join()
    assert seen == [("ADDED", "after"), ("MODIFIED", "before"), ("DELETED", "after")]

    labelled = watch.Watch().stream(
        core.list_namespaced_config_map, "w", label_selector="watch=me", timeout_seconds=1
    )
    assert [
        e["object"].metadata.name for e in labelled
    ] == []  # "after" is gone, "before" is unlabelled


def test_watch_with_initial_events_ends_them_with_a_bookmark(
    standin: KubeApiStandIn, core: client.CoreV1Api
) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "existing"}})
    query = "watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
    with _open(standin, f"/api/v1/namespaces/default/configmaps?{query}") as resp:
        events = [json.loads(line) for line in resp.read().splitlines()]
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "existing"),
        ("BOOKMARK", None),
    ]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_fault_bursts_of_500_and_429(standin: KubeApiStandIn, core: client.CoreV1Api) -> None:
    standin.inject_faults(r"/namespaces/default/configmaps", status=500, count=2)
    for _ in range(2):
        with pytest.raises(client.ApiException) as err:
            core.list_namespaced_config_map("default")
        assert (err.value.status, _reason(err.value)) == (500, "InternalError")
    core.list_namespaced_config_map("default")  # the burst is over
    core.list_namespace()  # and never touched other paths

    # A 429 without Retry-After reaches the caller ...
    _post(
        standin,
        "/_standin/faults",
        {"path_regex": "^/api/v1/namespaces$", "status": 429, "count": 1},
    )
    with pytest.raises(client.ApiException) as err:
        core.list_namespace()
    assert (err.value.status, _reason(err.value)) == (429, "TooManyRequests")

    # ... while with Retry-After the client (urllib3) waits and retries through the burst.
    standin.inject_faults("^/api/v1/namespaces$", status=429, count=2, retry_after=1)
    started = time.monotonic()
    assert core.list_namespace().items
    assert time.monotonic() - started >= 1.5
    statuses = [r["status"] for r in standin.requests if r["path"] == "/api/v1/namespaces"]
    assert statuses[-3:] == [429, 429, 200]


def test_reset_over_the_admin_endpoint(standin: KubeApiStandIn, core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "gone-after-reset"}})
    _post(standin, "/_standin/reset", {})
    assert sorted(n.metadata.name for n in core.list_namespace().items) == [
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
    ]


async def test_runs_inside_a_running_event_loop() -> None:
    import aiohttp

    server = await KubeApiStandIn.start_in_loop(port=0)
    try:
        async with (
            aiohttp.ClientSession(headers=ADMIN) as session,
            session.get(
                server.url + "/api/v1/namespaces/default", ssl=server.client_ssl_context()
            ) as resp,
        ):
            assert resp.status == 200
            assert (await resp.json())["metadata"]["name"] == "default"
    finally:
        await server.stop_async()


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _open(standin: KubeApiStandIn, path: str, body: dict | None = None) -> Any:
    """A plain HTTPS request as the stand-in's admin (urllib, no kubernetes client)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        standin.url + path,
        data,
        {"Content-Type": "application/json", **ADMIN},
        method="GET" if body is None else "POST",
    )
    return urllib.request.urlopen(req, timeout=10, context=standin.client_ssl_context())


def _post(standin: KubeApiStandIn, path: str, body: dict) -> dict:
    with _open(standin, path, body) as resp:
        return json.loads(resp.read())
