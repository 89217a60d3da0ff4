"""The drift check end to end, through the real `worker.py` and `starter.py` processes: a
provisioned environment is changed by hand (ConfigMap edited, `helm upgrade --set`, namespace
retention updated, a search attribute removed with the temporal CLI); `starter.py drift`
reports exactly that without writing, `--policy remediate` puts it back, and `schedule` /
`unschedule` manage the Temporal Schedule that runs the check. The session's worker tells a
webhook receiver once per check that finds drift and once per repair (#22.5), and a namespace
registered by hand is a note by default and drift under `undeclared_namespaces: report`
(#22.1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from adapters.helm_cli import chart_reference
from declared_state.chart_values import build_chart_values
from declared_state.loader import load_environment
from tests.helpers import wait_for
from tests.helpers.webhook_receiver import Post, Receiver, webhook_receiver

NAMESPACE = "my-app-drift"
TEMPORAL_NAMESPACE = "drift-ns"
SCHEDULE_ID = "drift-check-local"
NAMESPACE_SETTINGS = {
    "search_attributes": {"CustomerId": "Keyword", "Amount": "Int"},
    "owner_email": "payments@example.com",
    "data": {"team": "payments"},
}


@pytest.fixture
def drift_env(operator, worker, environments_copy):
    """An environment of its own, provisioned; the schedule is removed afterwards."""
    env_dir = environments_copy(
        lambda local: local.update(
            kubernetes={**local["kubernetes"], "namespace": NAMESPACE},
            temporal_namespaces=[
                {
                    "name": TEMPORAL_NAMESPACE,
                    "retention": "168h",
                    "description": "drift test",
                    **NAMESPACE_SETTINGS,
                }
            ],
        )
    )
    proc = operator.starter("provision", "local", "--environments-dir", str(env_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield env_dir
    operator.starter("unschedule", "local")


def drift(operator, env_dir, *args):
    return operator.starter("drift", "local", "--environments-dir", str(env_dir), *args)


def edit_local(env_dir: Path, **keys: object) -> None:
    local = Path(env_dir) / "local.yaml"
    data = yaml.safe_load(local.read_text())
    data.update(keys)
    local.write_text(yaml.safe_dump(data))


@pytest.fixture
def ops_webhook(drift_env, tmp_path) -> Iterator[Receiver]:
    """A webhook receiver the session's worker posts to: the environment names a file that
    holds its URL (`url_from_file`), so the running worker needs no new variable."""
    with webhook_receiver() as receiver:
        url_file = tmp_path / "ops-webhook-url"
        url_file.write_text(receiver.url)
        edit_local(
            drift_env,
            notifications={
                "webhooks": [
                    {
                        "name": "ops",
                        "url_from_file": str(url_file),
                        "events": ["drift_found", "drift_repaired"],
                    }
                ]
            },
        )
        yield receiver


def one_per_run(posts: list[Post]) -> dict[str, Post]:
    """Posts by the run that sent them; fails when a run sent one twice."""
    runs = [p.body["run_id"] for p in posts]
    assert len(set(runs)) == len(runs), [(p.body["event"], p.body["run_id"]) for p in posts]
    return dict(zip(runs, posts, strict=True))


def test_drift_is_reported_without_writes_then_remediated(
    operator, drift_env, kube_clients, frontend_pods, stack_variables, ops_webhook
):
    env_dir = drift_env
    frontend = frontend_pods.address_of(NAMESPACE)
    clean = drift(operator, env_dir)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.count("in sync") == 7, clean.stdout  # six checks and the verdict
    assert ops_webhook.posts == [], "a check in sync tells nobody"

    # Hand edits an operator might make.
    core = kube_clients.core_v1("standin")
    core.patch_namespaced_config_map(
        "rds-ca-certs", NAMESPACE, {"data": {"global-bundle.pem": "tampered"}}
    )
    declared = load_environment("local", env_dir, variables=stack_variables)
    chart = chart_reference(declared.chart).chart  # the chart copy the worker installs
    upgrade = operator.run(
        [
            operator.env["HELM_BIN"],
            "upgrade",
            "temporal",
            str(chart),
            "-n",
            NAMESPACE,
            "--reuse-values",
            "--set",
            "server.replicaCount=3",
            "--kubeconfig",
            operator.env["KUBECONFIG"],
        ]
    )
    assert upgrade.returncode == 0, upgrade.stderr
    operator.set_retention(TEMPORAL_NAMESPACE, "48h", frontend)
    revisions = len(operator.helm_history(NAMESPACE))

    found = drift(operator, env_dir, "--policy", "report")
    assert found.returncode == 4, found.stdout + found.stderr
    for expected in (
        "ensure_ca_bundle",
        "server.replicaCount",
        f"namespace {TEMPORAL_NAMESPACE}",
        "local: drifted (policy report)",
    ):
        assert expected in found.stdout, found.stdout
    assert "ensure_db_secret" in found.stdout and found.stdout.count("drifted") == 4
    # server.replicaCount is overridden per service: the rendered objects did not change
    assert "✓ check_live_objects     in sync" in found.stdout
    # report wrote nothing
    live = core.read_namespaced_config_map("rds-ca-certs", NAMESPACE)
    assert live.data["global-bundle.pem"] == "tampered"
    assert len(operator.helm_history(NAMESPACE)) == revisions
    assert operator.retention_seconds(TEMPORAL_NAMESPACE, frontend) == 48 * 3600
    # #22.5 through the real worker: exactly one `drift found` for the check, with the
    # counts per step and the first differences (sent before the check ends).
    [told] = ops_webhook.accepted()
    assert told.body["event"] == "drift_found" and told.body["environment"] == "local"
    assert told.body["workflow_id"] == "drift-check-local"
    # the three hand edits: the CA bundle ConfigMap, the release's values, the retention
    assert set(told.body["counts"]) == {"ensure_ca_bundle", "install_chart", "register_namespaces"}
    assert told.body["counts"]["register_namespaces"] == 1
    assert any(
        line.startswith("register_namespaces: ") and TEMPORAL_NAMESPACE in line
        for line in told.body["lines"]
    ), told.body["lines"]
    assert any(line.startswith("ensure_ca_bundle: ") for line in told.body["lines"])

    repaired = drift(operator, env_dir, "--policy", "remediate")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "local: repaired (policy remediate)" in repaired.stdout
    # The remediating check found the drift (told once) and repaired it (told once).
    found_by_run = one_per_run(ops_webhook.accepted("drift_found"))
    [fixed] = ops_webhook.accepted("drift_repaired")
    assert set(found_by_run) == {told.body["run_id"], fixed.body["run_id"]}
    assert "register_namespaces" in fixed.body["title"], fixed.body
    live = core.read_namespaced_config_map("rds-ca-certs", NAMESPACE)
    assert live.data["global-bundle.pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert len(operator.helm_history(NAMESPACE)) == revisions + 1
    assert operator.helm_values(NAMESPACE) == json.loads(json.dumps(build_chart_values(declared)))
    assert operator.retention_seconds(TEMPORAL_NAMESPACE, frontend) == 168 * 3600

    # #22.1: a namespace registered by hand, nobody declared. By default (protect) it is
    # left alone and only noted; the dev server's own `default` is not even noted.
    by_hand = "registered-by-hand"
    created = operator.temporal(
        "operator", "namespace", "create", "--namespace", by_hand, address=frontend
    )
    assert created.returncode == 0, created.stderr
    again = drift(operator, env_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "local: in sync" in again.stdout
    assert f"i namespace {by_hand}: not declared, left alone" in again.stdout
    assert "namespace default" not in again.stdout
    assert len(ops_webhook.accepted()) == 3, "in sync: nobody told"

    # report: drift at its path (exit 4), and remediate never deletes it.
    edit_local(env_dir, undeclared_namespaces="report")
    reported = drift(operator, env_dir, "--policy", "remediate", "--output", "json")
    assert reported.returncode == 4, reported.stdout + reported.stderr
    document = json.loads(reported.stdout)
    assert document["state"] == "drifted" and document["notes"] == []
    [record] = document["records"]
    assert (record["step"], record["path"], record["repairable"]) == (
        "register_namespaces",
        f"/temporal_namespaces/{by_hand}",
        False,
    )
    forward = f"kubectl --namespace {NAMESPACE} port-forward service/temporal-frontend 7233:7233"
    delete = f"temporal operator namespace delete --namespace {by_hand}"
    assert f"{forward}, then {delete} --address 127.0.0.1:7233" in record["how"], record
    assert "declare it in temporal_namespaces" in record["how"]
    assert operator.describe_namespace(by_hand, frontend)["namespaceInfo"]["name"] == by_hand
    assert ops_webhook.accepted()[-1].body["counts"] == {"register_namespaces": 1}

    # The command it names deletes it (here through the pod's own address, with --yes).
    deleted = operator.temporal(*delete.split()[1:], "--yes", address=frontend)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    gone = drift(operator, env_dir)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "local: in sync" in gone.stdout


def test_a_tag_that_moved_under_a_release_pinned_by_digest_is_reported(
    operator, drift_env, image_registry, kube_clients
):
    """#23.5: with `images.pin: digest` the release runs each image by its digest; a tag
    re-pushed in the registry afterwards is drift the check reports (report: nothing
    written), naming the value and the live objects that run the old digest."""
    local = drift_env / "local.yaml"
    data = yaml.safe_load(local.read_text())
    data["images"] = {**(data.get("images") or {}), "pin": "digest"}
    local.write_text(yaml.safe_dump(data))
    pinned = operator.starter("provision", "local", "--environments-dir", str(drift_env))
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    server = "temporalio/server:1.25.2"
    frontend = kube_clients.apps_v1("standin").read_namespaced_deployment(
        "temporal-frontend", NAMESPACE
    )
    assert (
        frontend.spec.template.spec.containers[0].image
        == f"{server}@{image_registry.digest(server)}"
    )
    revisions = len(operator.helm_history(NAMESPACE))

    image_registry.move_tag(server)
    found = drift(operator, drift_env, "--policy", "report")
    assert found.returncode == 4, found.stdout + found.stderr
    assert "server.image.tag" in found.stdout, found.stdout
    assert "check_live_objects" in found.stdout and "local: drifted" in found.stdout
    assert len(operator.helm_history(NAMESPACE)) == revisions, "report changes nothing"


def test_scheduled_check_asks_then_repairs_after_approve_drift(
    operator, drift_env, frontend_pods, worker
):
    frontend = frontend_pods.address_of(NAMESPACE)
    nothing = operator.starter("approve-drift", "local")
    assert nothing.returncode == 1 and "no drift check of local waits" in nothing.stderr
    created = operator.starter("schedule", "local", "--environments-dir", str(drift_env))
    assert created.returncode == 0, created.stdout + created.stderr
    assert "schedule drift-check-local created: drift check every 1h0m0s, policy report" in (
        created.stdout
    )
    updated = operator.starter(
        "schedule", "local", "--environments-dir", str(drift_env), "--policy", "ask"
    )
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "schedule drift-check-local updated: drift check every 1h0m0s, policy ask" in (
        updated.stdout
    )
    operator.set_retention(TEMPORAL_NAMESPACE, "24h", frontend)

    triggered = operator.temporal("schedule", "trigger", "--schedule-id", SCHEDULE_ID)
    assert triggered.returncode == 0, triggered.stderr

    def first_run():
        described = operator.temporal(
            "schedule", "describe", "--schedule-id", SCHEDULE_ID, "-o", "json"
        )
        assert described.returncode == 0, described.stderr
        actions = json.loads(described.stdout)["info"].get("recentActions") or []
        return actions[0]["startWorkflowResult"]["workflowId"] if actions else None

    workflow_id = wait_for(first_run, 60, "the schedule to start a check")
    assert workflow_id.startswith("drift-check-local-scheduled")
    waiting = wait_for(
        lambda: (p := operator.progress(workflow_id))["state"] == "waiting for approval" and p,
        120,
        "the scheduled check to wait for approval",
    )
    findings = {f["step"]: f for f in waiting["findings"]}
    assert findings["register_namespaces"]["status"] == "drifted"
    # The worker's metrics show the wait (#22.6), and go back once it is approved.
    wait_labels = {"environment": "local", "run": "drift check"}
    assert worker.gauge("temporal_bootstrap_runs_waiting_for_operator", **wait_labels) == 1
    assert operator.retention_seconds(TEMPORAL_NAMESPACE, frontend) == 24 * 3600

    approved = operator.starter("approve-drift", "local", "--by", "oncall")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert f"sent approve to {workflow_id}" in approved.stdout

    def finished():
        proc = operator.temporal("workflow", "result", "--workflow-id", workflow_id, "-o", "json")
        return proc if proc.returncode == 0 else None

    wait_for(finished, 120, "the scheduled check to finish")
    done = operator.progress(workflow_id)
    assert done["state"] == "repaired" and done["approved_by"] == "oncall", done
    assert worker.gauge("temporal_bootstrap_runs_waiting_for_operator", **wait_labels) == 0
    assert (
        worker.gauge(
            "temporal_bootstrap_drift_items", environment="local", kind="register_namespaces"
        )
        == 0
    )
    assert operator.retention_seconds(TEMPORAL_NAMESPACE, frontend) == 168 * 3600

    removed = operator.starter("unschedule", "local")
    assert removed.returncode == 0 and "deleted" in removed.stdout, removed.stdout
    gone = operator.temporal("schedule", "describe", "--schedule-id", SCHEDULE_ID)
    assert gone.returncode != 0
    again = operator.starter("unschedule", "local")
    assert again.returncode == 0 and "does not exist" in again.stdout, again.stdout


def custom_search_attributes(operator, address: str) -> dict[str, str]:
    listed = operator.temporal(
        "operator",
        "search-attribute",
        "list",
        "--namespace",
        TEMPORAL_NAMESPACE,
        "-o",
        "json",
        address=address,
    )
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout).get("customAttributes", {})


def test_namespace_settings_are_provisioned_kept_and_a_type_change_refused(
    operator, drift_env, frontend_pods
):
    """#22 done-when: the provisioned namespace has its Keyword and Int search attributes,
    owner email and data; one removed with the CLI is drift at its path (exit 4) that
    `remediate` re-adds; a different declared type stops provisioning with the commands it
    would take and changes nothing.

    The release's frontend is a dev server with SQLite visibility, which keeps custom search
    attributes per namespace (aliases of pre-allocated columns) exactly as SQL visibility on
    the MySQL cluster does, so `search-attribute remove --namespace` removes it from this
    namespace only; on Elasticsearch visibility it would be cluster-wide."""
    frontend = frontend_pods.address_of(NAMESPACE)
    assert custom_search_attributes(operator, frontend) == {
        "CustomerId": "INDEXED_VALUE_TYPE_KEYWORD",
        "Amount": "INDEXED_VALUE_TYPE_INT",
    }
    info = operator.describe_namespace(TEMPORAL_NAMESPACE, frontend)["namespaceInfo"]
    assert info["ownerEmail"] == "payments@example.com" and info["data"]["team"] == "payments"

    removed = operator.temporal(
        "operator",
        "search-attribute",
        "remove",
        "--namespace",
        TEMPORAL_NAMESPACE,
        "--name",
        "CustomerId",
        "--yes",
        address=frontend,
    )
    assert removed.returncode == 0, removed.stderr
    path = f"/temporal_namespaces/{TEMPORAL_NAMESPACE}/search_attributes/CustomerId"

    found = drift(operator, drift_env, "--policy", "report", "--output", "json")
    assert found.returncode == 4, found.stdout + found.stderr
    records = json.loads(found.stdout)["records"]
    assert [(r["step"], r["path"], r["live"], r["declared"], r["repairable"]) for r in records] == [
        ("register_namespaces", path, None, "Keyword", True)
    ]
    assert "CustomerId" not in custom_search_attributes(operator, frontend)

    repaired = drift(operator, drift_env, "--policy", "remediate")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"{path}: search attribute missing, declared Keyword" in repaired.stdout
    assert "local: repaired (policy remediate)" in repaired.stdout
    assert custom_search_attributes(operator, frontend)["CustomerId"] == (
        "INDEXED_VALUE_TYPE_KEYWORD"
    )

    # Declared as Int now: provisioning stops at the namespaces and changes nothing.
    local = Path(drift_env) / "local.yaml"
    data = yaml.safe_load(local.read_text())
    (declared,) = data["temporal_namespaces"]
    declared["search_attributes"]["CustomerId"] = "Int"
    declared["owner_email"] = "changed@example.com"
    local.write_text(yaml.safe_dump(data))
    refused = operator.starter("provision", "local", "--environments-dir", str(drift_env))
    assert refused.returncode != 0, refused.stdout + refused.stderr
    out = refused.stdout + refused.stderr
    assert f"namespace '{TEMPORAL_NAMESPACE}': search attribute CustomerId is Keyword" in out
    assert "declared Int" in out and "nothing was changed" in out
    assert f"search-attribute remove --namespace {TEMPORAL_NAMESPACE} --name CustomerId" in out
    assert "Traceback" not in out
    assert custom_search_attributes(operator, frontend)["CustomerId"] == (
        "INDEXED_VALUE_TYPE_KEYWORD"
    )
    info = operator.describe_namespace(TEMPORAL_NAMESPACE, frontend)["namespaceInfo"]
    assert info["ownerEmail"] == "payments@example.com"

    # The refused run waits for an operator (a declaration to fix); abort it, so no run of
    # `local` is left behind for the next module on this local stack.
    assert refused.returncode == 2, out
    aborted = operator.starter("abort", "local", "--by", "e2e")
    assert aborted.returncode == 1, aborted.stdout + aborted.stderr
    assert "aborted" in aborted.stderr + aborted.stdout
