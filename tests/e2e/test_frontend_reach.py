"""The new cluster's frontend exists only through the install, and the worker reaches it only
through the Kubernetes API (port-forward to the release's frontend pod, where the stack runs
a Temporal dev server): a frontend whose pod runs but never serves holds the run at
wait_frontend_healthy without registering namespaces (and lets it finish once it serves);
an uninstalled release makes the drift check report the release missing and the frontend
unread.
"""

from __future__ import annotations

import time

from tests.helpers import wait_for

FRONTEND = "temporal-frontend"


def steps(operator) -> dict[str, dict]:
    return {s["name"]: s for s in operator.progress()["steps"]}


def test_frontend_that_never_serves_holds_the_run_at_wait_frontend_healthy(
    operator, worker, environments_copy, kube_standin, kube_clients, frontend_pods
):
    ns = "my-app-unserved"
    env_dir = environments_copy(lambda local: local["kubernetes"].update(namespace=ns))
    kube_standin.never_serving(FRONTEND, namespace=ns)
    try:
        started = operator.starter(
            "provision", "local", "--environments-dir", str(env_dir), "--no-wait"
        )
        assert started.returncode == 0, started.stdout + started.stderr
        wait_for(
            lambda: (
                (s := steps(operator))["install_chart"]["status"] == "done"
                and s["wait_frontend_healthy"]["status"] == "running"
            ),
            180,
            "the run to reach wait_frontend_healthy",
        )
        time.sleep(10)  # several health checks, every one through a fresh port-forward
        held = steps(operator)
        assert held["wait_frontend_healthy"]["status"] == "running", held
        assert held["register_namespaces"]["status"] == "pending", held
        assert frontend_pods.address_of(ns) is None
        # For Kubernetes the frontend is up (the chart has no readiness probe): only the
        # Temporal frontend inside does not serve.
        core = kube_clients.core_v1("standin")
        pods = core.list_namespaced_pod(
            ns, label_selector="app.kubernetes.io/component=frontend"
        ).items
        assert pods and all(p.status.phase == "Running" for p in pods)

        kube_standin.allow_serving(FRONTEND, namespace=ns)
        done = operator.wait_state("done", timeout=180)
    finally:
        kube_standin.allow_serving(FRONTEND, namespace=ns)
        operator.temporal(
            "workflow", "terminate", "--workflow-id", "provision-local", "--reason", "test cleanup"
        )
    assert {s["name"]: s["status"] for s in done["steps"]}["register_namespaces"] == "done"
    frontend = frontend_pods.address_of(ns)
    assert frontend is not None
    assert operator.retention_seconds("my-ns", frontend) == 168 * 3600


def test_uninstalled_release_makes_the_drift_check_report_the_frontend_down(
    operator, worker, environments_copy, frontend_pods
):
    ns = "my-app-gone"
    env_dir = environments_copy(lambda local: local["kubernetes"].update(namespace=ns))
    proc = operator.starter("provision", "local", "--environments-dir", str(env_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert frontend_pods.address_of(ns) is not None

    uninstall = operator.run(
        [
            operator.env["HELM_BIN"],
            "uninstall",
            "temporal",
            "-n",
            ns,
            "--wait",
            "--kubeconfig",
            operator.env["KUBECONFIG"],
        ]
    )
    assert uninstall.returncode == 0, uninstall.stderr
    wait_for(lambda: frontend_pods.address_of(ns) is None, 30, "the frontend server to stop")

    found = operator.starter("drift", "local", "--environments-dir", str(env_dir))
    assert found.returncode == 4, found.stdout + found.stderr
    # Exit 4 for the release that is gone; its frontend cannot be asked (#20.1).
    assert (
        f"could not check: Temporal frontend Service {ns}/{FRONTEND} port 7233 (port-forward) "
        "did not answer" in found.stdout
    ), found.stdout
    assert "the Service does not exist" in found.stdout, found.stdout
    assert "release temporal missing" in found.stdout, found.stdout
