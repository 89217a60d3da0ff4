"""Least privilege, proved: deploy/ applied to the Kubernetes API stand-in with the real kubectl
(tests/fixtures/deploy, an overlay like deploy/overlays/example for namespace my-app-rbac),
then the real `worker.py` run as the worker's pod would run it: no kubeconfig, the
ServiceAccount's token from the TokenRequest API and the cluster's CA in its service-account
folder, KUBERNETES_SERVICE_HOST/PORT (tests/helpers/pods.py). Under that identity: a first
install whose frontend never becomes ready (helm rolls it back; install_chart reads the pods'
events), a provision, a drift check that remediates hand edits (the chart's objects and the CA
bundle), and a single-hop upgrade whose schema Job fails once (its log is read) before an
operator's retry. The stand-in's request log then shows that every request the worker (and its
helm) sent was allowed by the Role, and that every rule, and every verb of every rule (but
NOT_RUN_HERE's, each with its reason), was used: neither too wide nor too narrow.

Removing any one rule: each case applies the Role without that rule with kubectl and replays
the run's requests through the stand-in's RBAC authorizer (the same one that answered them),
which then denies at least one of them. Replaying instead of running the three workflows again
per rule keeps the module at one run (about a minute) instead of fifteen.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from local_stack.kube_api_standin.identity import RequestInfo
from local_stack.kube_api_standin.rbac import rule_allows
from local_stack.processes import LOOPBACK, free_port
from tests.e2e.conftest import PROJECT_ROOT, Operator, WorkerProcess
from tests.e2e.upgrades import snapshots
from tests.helpers import copy_environments, wait_for
from tests.helpers.hand_edits import HAND_EDITS
from tests.helpers.pods import in_cluster_env, project_service_account

KUBECTL = str(PROJECT_ROOT / ".tools" / "kubectl" / "kubectl")
OVERLAY = PROJECT_ROOT / "tests" / "fixtures" / "deploy"
DEPLOY = PROJECT_ROOT / "deploy"
TARGET = "my-app-rbac"  # the overlay's target namespace
WORKER_NS = SA = "temporal-bootstrap"  # deploy/worker's namespace and ServiceAccount
USER = f"system:serviceaccount:{WORKER_NS}:{SA}"
CA_CONFIG_MAP = "rds-ca-certs"  # the declared ca_bundle.config_map
QUEUE = "temporal-bootstrap-rbac"  # this worker's alone: no other worker takes its tasks
# Verbs the Role grants for what this proof does not run, each with what needs it: the 1.x
# charts always render a schema Job (templates/server-job.yaml), which helm applies (a
# server-side apply is a PATCH) and waits for; the proof's single hop is 0.52 -> 0.55.
NOT_RUN_HERE = {
    "batch:jobs patch": "helm v4 applying the 1.x charts' schema Job",
    "batch:jobs watch": "helm waiting for the 1.x charts' schema Job",
    "networking.k8s.io:networkpolicies delete": "a NetworkPolicy no longer declared (#23.3)",
}
# The edits helm restores (not the added env var, which a three-way merge keeps).
EDITS = [edit for edit, _, _ in HAND_EDITS if edit[:2] != ("set", "env")]


def _declared_rules() -> list[dict[str, Any]]:
    """deploy/'s Role as the fixture overlay builds it: the target namespace's rules plus the
    port-forward component's (read from the files, so cases exist at collection time)."""
    rules = list(yaml.safe_load((DEPLOY / "target-namespace" / "role.yaml").read_text())["rules"])
    component = yaml.safe_load(
        (DEPLOY / "components" / "port-forward" / "kustomization.yaml").read_text()
    )
    for patch in component["patches"]:
        rules += [op["value"] for op in yaml.safe_load(patch["patch"]) if op["op"] == "add"]
    return rules


RULES = _declared_rules()


def rule_id(rule: dict[str, Any]) -> str:
    return f"{rule['apiGroups'][0] or 'core'}:{','.join(rule['resources'])}"


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """The admin's kubectl (the one who applies deploy/)."""
    proc = subprocess.run(
        [KUBECTL, "--kubeconfig", env["KUBECONFIG"], *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def asks(request: dict[str, Any]) -> list[RequestInfo]:
    """What RBAC was asked for one logged request (a port-forward: get and create)."""
    fields = {k: request[k] for k in ("resource", "subresource", "group", "namespace", "name")}
    return [RequestInfo(verb=verb, **fields) for verb in request["authorized"]]


def denied_by_the_cluster(standin: Any, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The requests the stand-in's RBAC authorizer, with the Roles stored now, would refuse."""
    return [
        r
        for r in requests
        if not all(
            standin.authorize(
                USER,
                a.verb,
                path=r["path"].partition("?")[0],
                **{k: v for k, v in vars(a).items() if k != "verb"},
            )
            for a in asks(r)
        )
    ]


def failing_install(env_dir: Path, variables: dict[str, str], address: str) -> str:
    """Start a provision of `rbac` whose helm gives up after a few seconds (the starter has
    no flag for the deadlines, so the run is started with the Python client); returns its id."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from contracts.bootstrap import BootstrapInput, StepDeadlines
    from declared_state.loader import load_environment
    from workflows.bootstrap import BootstrapWorkflow

    workflow_id = "provision-rbac-failing"
    deadlines = StepDeadlines(
        helm_timeout=timedelta(seconds=3), install_chart=timedelta(seconds=20)
    )
    run = BootstrapInput(
        environment=load_environment("rbac", env_dir, variables),
        requested_by="e2e",
        deadlines=deadlines,
    )

    async def start() -> None:
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        await client.start_workflow(BootstrapWorkflow.run, run, id=workflow_id, task_queue=QUEUE)

    asyncio.run(start())
    return workflow_id


def probe(url: str) -> int:
    """The HTTP status a kubelet's httpGet probe would see."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


@dataclass
class RbacRun:
    requests: list[dict[str, Any]]  # the ServiceAccount's, in order
    role: dict[str, Any]  # the Role as the stand-in stores it after `kubectl apply -k`
    outputs: dict[str, str]


@pytest.fixture(scope="module")
def rbac_run(
    process_env,
    stack_variables,
    kube_standin,
    kube_clients,
    mariadb,
    local_aws,
    tmp_path_factory,
) -> Iterator[RbacRun]:
    admin_env = dict(process_env)
    kubectl(admin_env, "apply", "-k", str(OVERLAY))
    core = kube_clients.core_v1("standin")
    folder = project_service_account(
        core, kube_standin, WORKER_NS, SA, tmp_path_factory.mktemp("serviceaccount")
    )
    # The pod's environment: the ConfigMap deploy/ generated, then what kubelet adds.
    settings = k8s.CoreV1Api(kube_clients.api_client("standin")).list_namespaced_config_map(
        WORKER_NS, label_selector="app.kubernetes.io/name=temporal-bootstrap"
    )
    (generated,) = [c for c in settings.items if c.metadata.name.startswith(f"{SA}-settings")]
    pod_env = {k: v for k, v in admin_env.items() if k != "KUBECONFIG"}
    # The metrics port deploy/ sets (9464, every interface) is a pod's; here on loopback.
    assert generated.data["TEMPORAL_BOOTSTRAP_METRICS_PORT"] == "9464"
    pod_env.update({k: v for k, v in generated.data.items() if k != "TEMPORAL_ADDRESS"})
    pod_env["TEMPORAL_BOOTSTRAP_METRICS_PORT"] = f"{LOOPBACK}:{free_port()}"
    assert pod_env["TEMPORAL_BOOTSTRAP_IN_CLUSTER_CONTEXT"] == "standin"
    pod_env.update(in_cluster_env(kube_standin, folder))
    pod_env.update(
        # The bootstrap server is the session's (the overlay names one the test cannot host).
        TEMPORAL_ADDRESS=admin_env["TEMPORAL_ADDRESS"],
        TEMPORAL_TASK_QUEUE=QUEUE,
        TEMPORAL_BOOTSTRAP_STATE_DIR=str(tmp_path_factory.mktemp("pod-state")),
    )
    # The pod's probe port (deploy/ sets 8080 on every address) on loopback and a free port
    # here; the endpoint is the same (#23.7).
    assert pod_env["TEMPORAL_BOOTSTRAP_HEALTH_PORT"] == "8080"
    pod_env["TEMPORAL_BOOTSTRAP_HEALTH_PORT"] = "127.0.0.1:0"
    log = tmp_path_factory.mktemp("rbac-worker") / "worker.log"
    worker = WorkerProcess(pod_env, log).start()
    health = re.search(r"health endpoint on (http://[0-9.:]+) ", log.read_text())
    assert health, log.read_text()[-2000:]
    readyz = wait_for(
        lambda: probe(health.group(1) + "/readyz") == 200, timeout=30, what="/readyz 200"
    )
    operator = Operator({**admin_env, "TEMPORAL_TASK_QUEUE": QUEUE})

    env_dir = copy_environments(tmp_path_factory.mktemp("rbac-environments"))
    data = yaml.safe_load((env_dir / "local.yaml").read_text())
    data["kubernetes"] = {**data["kubernetes"], "namespace": TARGET}
    # The stand-in has no cluster DNS: the in-cluster worker reaches the frontend by
    # port-forward (deploy/components/port-forward), as one that cannot resolve it would.
    data["frontend"] = {**data.get("frontend", {}), "connect": "port-forward"}
    data["upgrade"] = {"soak": "1s"}
    # The Role cannot read or label the namespace: deploy/ sets its Pod Security labels.
    data["pod_security"] = "none"
    (env_dir / "rbac.yaml").write_text(yaml.safe_dump(data))
    where = ("--environments-dir", str(env_dir))
    since = len(kube_standin.requests)
    outputs: dict[str, str] = {
        "readyz": str(readyz),
        "livez": str(probe(health.group(1) + "/livez")),
    }
    try:
        # A first install whose frontend never becomes ready: helm rolls it back (uninstalls
        # what it created) and install_chart reads the pods' events for its message.
        kube_standin.never_ready("temporal-frontend", namespace=TARGET)
        try:
            failing = failing_install(env_dir, stack_variables, admin_env["TEMPORAL_ADDRESS"])
            wait_for(
                lambda: operator.progress(failing)["state"] == "waiting for operator",
                120,
                "the failing install to wait for an operator",
            )
            outputs["failed install"] = json.dumps(operator.progress(failing))
            operator.temporal("workflow", "terminate", "--workflow-id", failing, "--reason", "done")
        finally:
            kube_standin.allow_ready("temporal-frontend", namespace=TARGET)

        proc = operator.starter("provision", "rbac", *where)
        outputs["provision"] = proc.stdout + proc.stderr
        assert proc.returncode == 0, outputs["provision"]

        for edit in EDITS:
            kubectl(admin_env, "-n", TARGET, *edit)
        # ... and the CA bundle, which ensure_ca_bundle puts back (an update of the ConfigMap).
        bundle = core.read_namespaced_config_map(CA_CONFIG_MAP, TARGET)
        (key,) = bundle.data
        edit = json.dumps({"data": {key: "edited by hand"}})
        kubectl(admin_env, "-n", TARGET, "patch", "configmap", CA_CONFIG_MAP, "-p", edit)
        proc = operator.starter("drift", "rbac", *where, "--policy", "remediate")
        outputs["drift"] = proc.stdout + proc.stderr
        assert proc.returncode == 0, outputs["drift"]

        data["chart"]["version"] = "0.55.0"
        (env_dir / "rbac.yaml").write_text(yaml.safe_dump(data))
        # The hop's schema Job fails once (update_schema reads its pod's log), then is retried.
        kube_standin.schema_jobs("fail", "Error: schema update failed: injected by the test")
        try:
            proc = operator.starter("upgrade", "rbac", *where, timeout=600)
        finally:
            kube_standin.schema_jobs("run")
        outputs["failed schema"] = proc.stdout + proc.stderr
        assert proc.returncode == 2, outputs["failed schema"]
        assert "injected by the test" in proc.stdout, "the log tail"
        proc = operator.starter("retry", "rbac", "--upgrade", "--by", "e2e", timeout=600)
        outputs["upgrade"] = proc.stdout + proc.stderr
        assert proc.returncode == 0, outputs["upgrade"]

        requests = [r for r in kube_standin.requests[since:] if r["user"] == USER]
        rbac = k8s.RbacAuthorizationV1Api(kube_clients.api_client("standin"))
        role = rbac.read_namespaced_role(SA, TARGET).to_dict()
        yield RbacRun(requests, role, outputs)
    finally:
        worker.stop()
        mariadb.reset()
        rds = local_aws.client("rds")
        for snapshot in snapshots(local_aws):
            rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot)
        for workflow_id in ("upgrade-rbac", "provision-rbac", "provision-rbac-failing"):
            operator.temporal(
                "workflow", "terminate", "--workflow-id", workflow_id, "--reason", "test cleanup"
            )


def test_the_worker_needs_every_rule_of_its_role_and_nothing_more(rbac_run, kube_standin):
    outputs = rbac_run.outputs
    # The pod's probes answered from the worker deploy/ configures (#23.7).
    assert (outputs["readyz"], outputs["livez"]) == ("True", "200")
    assert "upgrade-rbac done: 1 hop(s), now chart 0.55.0" in outputs["upgrade"], outputs
    requests = rbac_run.requests
    assert len(requests) > 100, "the worker's requests were logged under its ServiceAccount"
    assert {r["namespace"] for r in requests if r["resource"]} == {TARGET}
    refused = [(r["method"], r["path"], r["status"]) for r in requests if r["status"] in (401, 403)]
    assert refused == [], "every request was allowed"
    assert denied_by_the_cluster(kube_standin, requests) == []

    # Every rule and every verb in it was needed by some request.
    rules = [
        {"apiGroups": r["api_groups"], "resources": r["resources"], "verbs": r["verbs"]}
        for r in rbac_run.role["rules"]
    ]
    assert [rule_id(r) for r in rules] == [rule_id(r) for r in RULES]
    used: set[tuple[int, str]] = set()
    for request in requests:
        for attributes in asks(request):
            if not attributes.resource:
                continue  # discovery: every authenticated user's (system:discovery)
            matching = [i for i, rule in enumerate(rules) if rule_allows(rule, attributes, "")]
            assert matching, request
            used |= {(i, attributes.verb) for i in matching}
    unused = [
        f"{rule_id(rule)} {verb}"
        for i, rule in enumerate(rules)
        for verb in rule["verbs"]
        if (i, verb) not in used and f"{rule_id(rule)} {verb}" not in NOT_RUN_HERE
    ]
    assert unused == [], f"the Role grants more than the worker uses: {unused}"


@pytest.mark.parametrize("index", range(len(RULES)), ids=[rule_id(r) for r in RULES])
def test_removing_any_one_rule_refuses_a_request_the_run_made(
    rbac_run, kube_standin, process_env, index
):
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": SA, "namespace": TARGET},
        "rules": [rule for i, rule in enumerate(RULES) if i != index],
    }
    kubectl(process_env, "apply", "-f", "-", stdin=yaml.safe_dump(role))
    try:
        refused = denied_by_the_cluster(kube_standin, rbac_run.requests)
    finally:
        kubectl(process_env, "apply", "-f", "-", stdin=yaml.safe_dump({**role, "rules": RULES}))
    assert refused, f"without {rule_id(RULES[index])} the run would still have been allowed"
    removed = RULES[index]
    for request in refused:
        assert any(rule_allows(removed, a, "") for a in asks(request)), request
    assert denied_by_the_cluster(kube_standin, rbac_run.requests) == [], "restored"
