"""The comparison rules of adapters/object_diff.py, one by one, on hand-written objects
(what the API server does to real objects is tested against the stand-in in
test_check_live_objects.py)."""

from __future__ import annotations

import base64
import hashlib

from adapters.object_diff import MISSING, Difference, brief, compare, shown


def paths(kind: str, live: dict, declared: dict) -> list[str]:
    return [d.path for d in compare(kind, live, declared)]


def container(**fields) -> dict:
    return {"spec": {"template": {"spec": {"containers": [{"name": "app", **fields}]}}}}


def test_only_what_the_manifest_sets_is_compared():
    declared = {"metadata": {"name": "x", "labels": {"app": "x"}}, "spec": {"replicas": 1}}
    live = {
        "metadata": {
            "name": "x",
            "uid": "u",
            "resourceVersion": "9",
            "labels": {"app": "x", "added-by-someone": "y"},
            "annotations": {"deployment.kubernetes.io/revision": "3"},
        },
        "spec": {"replicas": 1, "strategy": {"type": "RollingUpdate"}},
        "status": {"replicas": 1},
    }
    assert compare("Deployment", live, declared) == []
    live["metadata"]["labels"] = {}
    assert compare("Deployment", live, declared) == [
        Difference("/metadata/labels/app", MISSING, "x")
    ]


def test_configmap_and_secret_content_is_compared_both_ways():
    assert paths("ConfigMap", {"data": {"a": "1", "hand": "2"}}, {"data": {"a": "1"}}) == [
        "/data/hand"
    ]
    assert paths("ConfigMap", {"data": {"hand": "2"}}, {}) == ["/data/hand"]


def test_lists_with_merge_keys_match_by_key_and_extra_elements_are_drift():
    declared = container(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    live = container(
        env=[{"name": "B", "value": "2"}, {"name": "A", "value": "9"}, {"name": "C", "value": "3"}]
    )
    base = "/spec/template/spec/containers/0/env"
    assert compare("Deployment", live, declared) == [
        Difference(f"{base}/0/value", "9", "1"),  # A: declared index 0
        Difference(f"{base}/2", {"name": "C", "value": "3"}, MISSING),  # extra: live index
    ]
    args_live = container(args=["--a", "--b"])
    assert paths("Deployment", args_live, container(args=["--b", "--a"])) == [
        "/spec/template/spec/containers/0/args/0",
        "/spec/template/spec/containers/0/args/1",
    ]


def test_declared_empty_values_equal_absent_fields():
    declared = container(env=[{"name": "E", "value": ""}], securityContext={}, args=[])
    live = container(env=[{"name": "E"}])
    assert compare("Deployment", live, declared) == []
    assert paths("Deployment", container(), container(image="x:1")) == [
        "/spec/template/spec/containers/0/image"
    ]


def test_quantities_compare_by_value_and_other_scalars_strictly():
    declared = container(resources={"limits": {"cpu": "1000m", "memory": "1Gi"}})
    live = container(resources={"limits": {"cpu": "1", "memory": "1024Mi"}})
    assert compare("Deployment", live, declared) == []
    live = container(resources={"limits": {"cpu": "1001m", "memory": "1Gi"}})
    assert paths("Deployment", live, declared) == [
        "/spec/template/spec/containers/0/resources/limits/cpu"
    ]
    # outside resources a string is a string and a number a number
    assert paths("Service", {"spec": {"port": "80"}}, {"spec": {"port": 80}}) == ["/spec/port"]
    assert paths("Service", {"spec": {"port": 80.0}}, {"spec": {"port": 80}}) == []
    assert paths("Service", {"spec": {"on": 1}}, {"spec": {"on": True}}) == ["/spec/on"]


def test_secret_content_is_shown_by_digest_only():
    declared = {"stringData": {"password": "declared-secret"}}
    live = {"data": {"password": base64.b64encode(b"live-secret").decode()}}
    (diff,) = compare("Secret", live, declared)
    assert diff.path == "/data/password"
    text = brief("Secret", diff.path, diff.live, diff.declared)
    expected = "sha256:" + hashlib.sha256(b"live-secret").hexdigest()[:16]
    assert text.startswith(f"live {expected}, declared sha256:")
    for value in (
        shown("Secret", diff.path, diff.live),
        shown("Secret", diff.path, diff.declared),
        text,
    ):
        assert value is not None and "secret" not in value
    # folded stringData equals the same data
    same = {"data": {"password": base64.b64encode(b"declared-secret").decode()}}
    assert compare("Secret", same, declared) == []


def test_long_texts_show_the_first_differing_line():
    assert brief("ConfigMap", "/data/c", "a\nb\nX", "a\nb\nc\nd") == (
        'differs at line 3: live "X", declared "c"'
    )
    assert (
        brief("ConfigMap", "/data/c", "a", "a\nb") == 'differs at line 2: live (end), declared "b"'
    )
    assert brief("Deployment", "/spec/replicas", 7, 1) == "live 7, declared 1"
