"""Live drift end to end, through the real `worker.py` and `starter.py` processes and the real
kubectl (.tools/kubectl): every hand edit of issue #13 (and one of a NetworkPolicy the
bootstrap keeps, #23.3) is reported with its path and exit 4 without a write, an ignore rule
hides exactly its field, `--policy remediate` repairs with one helm revision (and closes the
NetworkPolicy again) and says (exit 1) what helm does not restore, and Temporal drift (a
lowered schema row, a declared shard count the cluster does not have, a stopped frontend) is
reported.

One environment is provisioned for the module; the tests run in order on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import PROJECT_ROOT
from tests.helpers import copy_environments
from tests.helpers.hand_edits import HAND_EDITS, HISTORY_ENV, REMOVE_ADDED_ENV

NAMESPACE = "my-app-live"
KUBECTL = str(PROJECT_ROOT / ".tools" / "kubectl" / "kubectl")
EDITS = [(edit, where) for edit, where, _ in HAND_EDITS]


def write_environments(folder: Path, **drift_check: object) -> Path:
    """environments/ with local.yaml in NAMESPACE (and `drift_check` settings)."""
    copy_environments(folder)
    local = folder / "local.yaml"
    data = yaml.safe_load(local.read_text())
    data["kubernetes"] = {**data["kubernetes"], "namespace": NAMESPACE}
    if drift_check:
        data["drift_check"] = drift_check
    local.write_text(yaml.safe_dump(data))
    return folder


@pytest.fixture(scope="module")
def live_env(operator, worker, tmp_path_factory) -> Path:
    env_dir = write_environments(tmp_path_factory.mktemp("live-drift-environments"))
    proc = operator.starter("provision", "local", "--environments-dir", str(env_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return env_dir


def drift(operator, env_dir: Path, *args: str):
    return operator.starter("drift", "local", "--environments-dir", str(env_dir), *args)


def records(proc) -> list[dict]:
    return json.loads(proc.stdout)["records"]


def kubectl(operator, *args: str) -> str:
    proc = operator.run(
        [KUBECTL, "--kubeconfig", operator.env["KUBECONFIG"], "-n", NAMESPACE, *args]
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def live(operator, kind: str, name: str) -> dict:
    return json.loads(kubectl(operator, "get", kind, name, "-o", "json"))


def drift_gauge(worker, kind: str = "check_live_objects") -> float | None:
    """The worker's `temporal_bootstrap_drift_items` for local and `kind` (#22.6)."""
    return worker.gauge("temporal_bootstrap_drift_items", environment="local", kind=kind)


def test_hand_edits_are_reported_ignored_and_remediated(operator, live_env, tmp_path, worker):
    clean = drift(operator, live_env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "local: in sync (policy report)." in clean.stdout
    # The worker's metrics say so too: every checked kind at 0, and when the check ended.
    assert drift_gauge(worker) == 0 and drift_gauge(worker, "install_chart") == 0
    checked = worker.gauge(
        "temporal_bootstrap_drift_check_completed_timestamp_seconds", environment="local"
    )
    assert checked is not None and checked > 0

    for edit, _ in EDITS:
        kubectl(operator, *edit)
    revisions = len(operator.helm_history(NAMESPACE))

    found = drift(operator, live_env, "--policy", "report")
    assert found.returncode == 4, found.stdout + found.stderr
    assert "≠ check_live_objects     drifted: 8 differences in 7 objects" in found.stdout, (
        found.stdout
    )
    for _, (kind, name, path) in EDITS:
        assert f"{kind} {name}:" in found.stdout
        assert path in found.stdout, path
    assert "/spec/replicas live 7, declared 1" in found.stdout
    assert drift_gauge(worker) == 8, "the 8 differences the check reported"
    # nothing was written: no helm revision, the edits are all still there
    assert len(operator.helm_history(NAMESPACE)) == revisions
    assert live(operator, "deployment", "temporal-frontend")["spec"]["replicas"] == 7

    as_json = drift(operator, live_env, "--output", "json")
    assert as_json.returncode == 4, as_json.stderr
    reported = {(r["kind"], r["name"], r["path"]): r for r in records(as_json)}
    assert set(reported) == {expected for _, expected in EDITS}
    assert reported[("Deployment", "temporal-frontend", "/spec/replicas")]["live"] == "7"
    assert not reported[("Deployment", "temporal-history", HISTORY_ENV)]["repairable"]

    # An ignore rule hides exactly its field: counted, not shown, not in the exit code's way.
    ignoring = write_environments(
        tmp_path / "ignoring",
        ignore=[{"kind": "Deployment", "name": "temporal-front*", "path": "/spec/replicas"}],
    )
    ignored = drift(operator, ignoring, "--output", "json")
    assert ignored.returncode == 4, ignored.stderr
    flags = {(r["kind"], r["name"], r["path"]): r["ignored"] for r in records(ignored)}
    assert flags == {
        expected: expected == ("Deployment", "temporal-frontend", "/spec/replicas")
        for _, expected in EDITS
    }
    text = drift(operator, ignoring)
    assert "7 differences in 6 objects, 1 ignored (drift_check.ignore)" in text.stdout
    assert "/spec/replicas" not in text.stdout

    # remediate: one helm revision restores what the manifest sets; what it never set stays,
    # and the run says so instead of claiming success.
    repaired = drift(operator, live_env, "--policy", "remediate")
    assert repaired.returncode == 1, repaired.stdout + repaired.stderr
    assert len(operator.helm_history(NAMESPACE)) == revisions + 1
    assert "✗ check_live_objects     not restored: 1 difference in 1 object" in repaired.stdout
    assert HISTORY_ENV in repaired.stdout and "remove it by hand" in repaired.stdout
    assert "local: repair failed (policy remediate)." in repaired.stdout
    assert drift_gauge(worker) == 1, "what helm left: the added env entry"
    assert live(operator, "deployment", "temporal-frontend")["spec"]["replicas"] == 1
    assert live(operator, "service", "temporal-admintools")["metadata"]["name"]
    # #23.3: the bootstrap's NetworkPolicy opened by hand is closed again (replaced whole)
    (rule,) = live(operator, "networkpolicy", "temporal-frontend")["spec"]["ingress"]
    assert {"ipBlock": {"cidr": "0.0.0.0/0"}} not in rule["from"], rule

    kubectl(operator, *REMOVE_ADDED_ENV)
    again = drift(operator, live_env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "local: in sync (policy report)." in again.stdout
    assert drift_gauge(worker) == 0
    assert worker.gauge(
        "temporal_bootstrap_drift_check_completed_timestamp_seconds", environment="local"
    ) > checked  # fmt: skip


def test_temporal_drift_is_reported(operator, live_env, tmp_path, mariadb, kube_standin):
    mariadb.set_schema_version("temporal", "1.13")
    try:
        schema = drift(operator, live_env, "--output", "json")
    finally:
        mariadb.set_schema_version("temporal", "1.14")
    assert schema.returncode == 4, schema.stderr
    (record,) = records(schema)
    assert (record["step"], record["kind"], record["name"], record["live"], record["declared"]) == (
        "check_temporal",
        "TemporalSchema",
        "temporal",
        "1.13",
        "1.14",
    )
    assert not record["repairable"] and "update-schema" in record["how"]

    shards = write_environments(tmp_path / "shards")
    local = shards / "local.yaml"
    data = yaml.safe_load(local.read_text())
    data["extra_values"] = {"server": {"config": {"numHistoryShards": 1024}}}
    local.write_text(yaml.safe_dump(data))
    declared = drift(operator, shards, "--output", "json")
    assert declared.returncode == 4, declared.stderr
    by_path = {r["path"]: r for r in records(declared) if r["step"] == "check_temporal"}
    assert (by_path["/numHistoryShards"]["live"], by_path["/numHistoryShards"]["declared"]) == (
        "512",
        "1024",
    )
    assert "can never change" in by_path["/numHistoryShards"]["how"]

    kube_standin.never_serving("temporal-frontend", NAMESPACE)
    try:
        stopped = drift(operator, live_env, "--output", "json")
    finally:
        kube_standin.allow_serving("temporal-frontend", NAMESPACE)
    # #20.1: a frontend that does not answer is "could not check" (exit 1), never drift
    # (exit 4): nothing was read that could differ.
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    document = json.loads(stopped.stdout)
    assert document["state"] == "check failed", document
    unread = records(stopped)
    assert unread and all(not r["checked"] and not r["repairable"] for r in unread), unread
    by_step = {r["step"]: r for r in unread}
    assert set(by_step) == {"register_namespaces", "check_temporal"}, unread
    assert "namespaces: could not check" in by_step["register_namespaces"]["message"]
    health = [r for r in unread if r["path"] == "/health"]
    assert health and "did not answer" in health[0]["message"], unread
    assert "component=frontend" in health[0]["how"], unread


def test_version_skew_is_left_to_upgrade_and_remediate_says_so(operator, live_env, tmp_path):
    """#20.2: the file declares chart 0.55.0 (server 1.26.2) while 0.52.0 (1.25.2) runs, as
    mid-upgrade or after an edit without `upgrade`. Every difference that skew causes is not
    repairable and says to move it with `upgrade`; remediate writes nothing and the text says
    the release was left alone because of it."""
    ahead = write_environments(tmp_path / "ahead")
    local = ahead / "local.yaml"
    data = yaml.safe_load(local.read_text())
    data["chart"]["version"] = "0.55.0"
    local.write_text(yaml.safe_dump(data))
    revisions = len(operator.helm_history(NAMESPACE))

    reported = drift(operator, ahead, "--output", "json")
    assert reported.returncode == 4, reported.stdout + reported.stderr
    found = [r for r in records(reported) if r["checked"] and not r["ignored"]]
    skewed = [r for r in found if r["step"] in ("install_chart", "check_live_objects")]
    assert skewed and all(r["version_skew"] and not r["repairable"] for r in skewed), skewed
    assert all("python starter.py upgrade local" in r["how"] for r in skewed), skewed
    image = [r for r in skewed if r["path"].endswith("/image") and "1.26.2" in r["declared"]]
    assert image, skewed  # the server image: 1.25.2 runs, 1.26.2 declared

    repaired = drift(operator, ahead, "--policy", "remediate")
    assert repaired.returncode == 4, repaired.stdout + repaired.stderr
    assert "The release was left alone" in repaired.stdout, repaired.stdout
    assert "python starter.py upgrade local" in repaired.stdout, repaired.stdout
    assert len(operator.helm_history(NAMESPACE)) == revisions  # nothing re-applied
