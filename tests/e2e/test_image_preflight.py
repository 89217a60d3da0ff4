"""The image preflight end to end (worker.py and starter.py processes, the registry stand-in
as the environment's docker.io mirror): a declared image the registry does not have stops
`provision` and `upgrade` before anything is written (no Kubernetes write, no snapshot, no
schema Job, no helm revision), naming the image."""

from __future__ import annotations

from tests.e2e.upgrades import snapshots, upgrade

NOPE = "temporalio/ui:0.0.0-nope"


def test_provision_stops_at_the_preflight_before_any_write(
    operator, worker, environments_copy, kube_standin, image_registry
):
    namespace = "my-app-image-nope"

    def local(data):
        data["kubernetes"]["namespace"] = namespace
        data["images"] = {"web": NOPE}

    env_dir = environments_copy(local)
    since = len(kube_standin.writes)
    proc = operator.starter("provision", "local", "--environments-dir", str(env_dir), "--by", "e2e")
    try:
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "ImageMissing" in proc.stdout
        assert f"{NOPE} is not in docker.io (asked {image_registry.url}: HTTP 404)" in proc.stdout
        assert "Nothing was written" in proc.stdout
        progress = operator.progress("provision-local")
        assert progress["state"] == "waiting for operator"
        writes = [w for w in kube_standin.writes[since:] if namespace in w["path"]]
        assert writes == [], "no namespace, no ConfigMap, no Secret, no helm release"
    finally:
        operator.starter("abort", "local", "--by", "e2e")


def test_upgrade_stops_at_the_preflight_before_snapshot_job_and_helm(
    operator, worker, upgrade_env, kube_standin, local_aws
):
    namespace = "my-app-upgrade-image-nope"
    declare = upgrade_env(namespace)
    env_dir = declare("0.55.0")
    path = env_dir / "local.yaml"
    path.write_text(path.read_text() + f"images:\n  web: {NOPE}\n")
    since = len(kube_standin.writes)
    proc = upgrade(operator, env_dir, "--by", "e2e")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ImageMissing" in proc.stdout and f"{NOPE} is not in docker.io" in proc.stdout
    assert snapshots(local_aws) == [], "no snapshot"
    writes = [w for w in kube_standin.writes[since:] if f"/namespaces/{namespace}/" in w["path"]]
    assert writes == [], "no schema Job, no Deployment, no helm release Secret"
    assert [h["chart"] for h in operator.helm_history(namespace)] == ["temporal-0.52.0"]
    aborted = operator.starter("abort", "local", "--upgrade", "--by", "e2e")
    assert aborted.returncode == 1, aborted.stdout + aborted.stderr
