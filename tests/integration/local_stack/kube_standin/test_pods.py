"""Contract tests of the stand-in's pods with the real kubernetes Python client and kubectl:
ReplicaSet-owned pods that follow the Deployment, kubelet's reasons when a referenced Secret,
key or ConfigMap is missing (and recovery when it appears), port-forward through
`kubernetes.stream.portforward` to what a container runtime serves, and the caller's identity
in the request log."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.stream import portforward

from local_stack.kube_api_standin import KubeApiStandIn

from .conftest import KUBECTL, NS, EchoRuntime, deployment, pods_of, ready, waiting


def available(apps: client.AppsV1Api, name: str) -> bool:
    dep = apps.read_namespaced_deployment(name, NS)
    return dep.status is not None and (dep.status.available_replicas or 0) == dep.spec.replicas


def test_pods_belong_to_the_deployment_and_follow_its_replicas(
    standin: KubeApiStandIn, core, apps, wait_for
) -> None:
    apps.create_namespaced_deployment(NS, deployment("shop", replicas=2))
    pods = wait_for(lambda: len(p := pods_of(core, "shop")) == 2 and all(map(ready, p)) and p)
    wait_for(lambda: available(apps, "shop"), what="the Deployment to be available")
    (rs,) = apps.list_namespaced_replica_set(NS, label_selector="app=shop").items
    for pod in pods:
        assert pod.metadata.name.startswith(f"{rs.metadata.name}-")
        (owner,) = pod.metadata.owner_references
        assert (owner.kind, owner.uid, owner.controller) == ("ReplicaSet", rs.metadata.uid, True)
        assert pod.metadata.labels["pod-template-hash"] in rs.metadata.name
        assert pod.status.phase == "Running" and pod.status.pod_ip
        assert pod.status.container_statuses[0].state.running is not None

    # A pod deleted by hand is replaced, as the ReplicaSet controller does.
    core.delete_namespaced_pod(pods[0].metadata.name, NS)
    wait_for(
        lambda: (
            {p.metadata.name for p in pods_of(core, "shop")} - {pods[0].metadata.name}
            and len(pods_of(core, "shop")) == 2
        ),
        what="a replacement pod",
    )

    apps.patch_namespaced_deployment("shop", NS, {"spec": {"replicas": 0}})
    wait_for(lambda: not pods_of(core, "shop"), what="the pods to go at 0 replicas")
    apps.patch_namespaced_deployment("shop", NS, {"spec": {"replicas": 1}})
    wait_for(lambda: len(pods_of(core, "shop")) == 1, what="a pod at 1 replica")
    apps.delete_namespaced_deployment("shop", NS)
    wait_for(lambda: not pods_of(core, "shop"), what="the pods to go with the Deployment")


def test_missing_secret_and_key_keep_pods_unready_until_they_appear(
    standin: KubeApiStandIn, core, apps, wait_for
) -> None:
    env = [
        {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
        },
        {
            "name": "OPTIONAL",
            "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}},
        },
    ]
    apps.create_namespaced_deployment(NS, deployment("api", container={"env": env}))
    (pod,) = wait_for(lambda: (p := pods_of(core, "api")) and p[0].status.container_statuses and p)
    assert pod.status.phase == "Pending"
    assert waiting(pod) == ("CreateContainerConfigError", 'secret "db" not found')
    assert not ready(pod) and not available(apps, "api")

    core.create_namespaced_secret(
        NS, client.V1Secret(metadata=client.V1ObjectMeta(name="db"), string_data={"user": "u"})
    )
    wait_for(
        lambda: (
            waiting(pods_of(core, "api")[0])[1] == "couldn't find key password in Secret default/db"
        ),
        what="the missing key to be reported",
    )
    assert not available(apps, "api")

    core.patch_namespaced_secret("db", NS, {"stringData": {"password": "p"}})
    wait_for(lambda: available(apps, "api"), what="the Deployment to recover")
    (pod,) = pods_of(core, "api")
    assert ready(pod) and pod.status.phase == "Running"


def test_missing_configmap_volume_keeps_pod_creating_with_a_failed_mount_event(
    standin: KubeApiStandIn, core, apps, wait_for
) -> None:
    volumes = [{"name": "ca", "configMap": {"name": "rds-ca-certs"}}]
    mounts = [{"name": "ca", "mountPath": "/etc/ca"}]
    apps.create_namespaced_deployment(
        NS, deployment("db-client", volumes=volumes, container={"volumeMounts": mounts})
    )
    (pod,) = wait_for(
        lambda: (p := pods_of(core, "db-client")) and p[0].status.container_statuses and p
    )
    assert pod.status.phase == "Pending"
    assert waiting(pod) == ("ContainerCreating", None)
    events = core.list_namespaced_event(
        NS, field_selector=f"involvedObject.name={pod.metadata.name}"
    ).items
    assert [(e.reason, e.message) for e in events] == [
        (
            "FailedMount",
            'MountVolume.SetUp failed for volume "ca" : configmap "rds-ca-certs" not found',
        )
    ]
    assert not available(apps, "db-client")

    core.create_namespaced_config_map(
        NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="rds-ca-certs"), data={"a": "b"})
    )
    wait_for(lambda: available(apps, "db-client"), what="the Deployment to recover")


def test_port_forward_with_the_python_client_reaches_what_the_pod_serves(
    standin: KubeApiStandIn, echo: EchoRuntime, core, apps, wait_for
) -> None:
    apps.create_namespaced_deployment(NS, deployment("echo"))
    (pod,) = wait_for(lambda: (p := pods_of(core, "echo")) and ready(p[0]) and p)
    name = pod.metadata.name
    assert echo.started == [name]

    forward = portforward(core.connect_get_namespaced_pod_portforward, name, NS, ports="8080")
    sock = forward.socket(8080)
    sock.settimeout(10)
    sock.sendall(b"hello through the API server\n")
    assert sock.recv(100) == b"hello through the API server\n"
    sock.close()

    refused = portforward(core.connect_get_namespaced_pod_portforward, name, NS, ports="9999")
    s = refused.socket(9999)
    s.settimeout(10)
    assert s.recv(10) == b""  # closed after the error
    assert "failed to connect to localhost:9999" in refused.error(9999)
    assert "connection refused" in refused.error(9999)

    logged = [r for r in standin.requests if r["subresource"] == "portforward"]
    assert {(r["verb"], r["resource"], r["namespace"], r["name"]) for r in logged} == {
        ("get", "pods", NS, name)
    }

    apps.delete_namespaced_deployment("echo", NS)
    wait_for(lambda: echo.stopped == [name], what="the runtime to stop the pod's processes")


def test_never_serving_pods_are_ready_but_run_nothing(
    standin: KubeApiStandIn, echo: EchoRuntime, core, apps, wait_for
) -> None:
    standin.never_serving("echo", namespace=NS)
    apps.create_namespaced_deployment(NS, deployment("echo"))
    wait_for(lambda: available(apps, "echo"), what="the Deployment to be available")
    assert echo.started == []
    standin.allow_serving("echo", namespace=NS)
    wait_for(lambda: len(echo.started) == 1, what="the process to start")


def test_port_forward_to_a_pod_that_is_not_running_is_refused(
    standin: KubeApiStandIn, core, apps, wait_for
) -> None:
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "x"}}}]
    apps.create_namespaced_deployment(NS, deployment("pending", container={"env": env}))
    (pod,) = wait_for(lambda: pods_of(core, "pending"))
    with pytest.raises(ApiException) as raised:
        portforward(
            core.connect_get_namespaced_pod_portforward, pod.metadata.name, NS, ports="8080"
        )
    assert "is not running" in str(raised.value) or "400" in str(raised.value)
    with pytest.raises(ApiException):
        portforward(core.connect_get_namespaced_pod_portforward, "no-such-pod", NS, ports="8080")


def _columns(out: str) -> list[dict[str, str]]:
    """kubectl's table output as rows keyed by header (columns split on 2+ spaces)."""
    header, *lines = out.strip().splitlines()
    names = re.split(r"\s{2,}", header.strip())
    return [dict(zip(names, re.split(r"\s{2,}", line.strip()), strict=True)) for line in lines]


def test_kubectl_get_prints_the_servers_columns_with_kubelets_reasons(
    standin: KubeApiStandIn, run, kubeconfig: Path, apps, core, wait_for
) -> None:
    """kubectl asks for a meta.k8s.io Table and prints the columns the server chose: READY is
    ready/total containers, STATUS the kubelet's waiting reason when there is one."""
    apps.create_namespaced_deployment(NS, deployment("shop", replicas=2))
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "pw"}}}]
    apps.create_namespaced_deployment(NS, deployment("locked", container={"env": env}))
    wait_for(lambda: len(pods_of(core, "shop")) == 2 and all(map(ready, pods_of(core, "shop"))))
    wait_for(lambda: (p := pods_of(core, "locked")) and p[0].status.container_statuses)
    kubectl = (KUBECTL, "--kubeconfig", str(kubeconfig), "-n", NS)

    rows = _columns(run(*kubectl, "get", "pods").stdout)
    seen = sorted((r["NAME"].split("-")[0], r["READY"], r["STATUS"], r["RESTARTS"]) for r in rows)
    assert seen == [
        ("locked", "0/1", "CreateContainerConfigError", "0"),
        ("shop", "1/1", "Running", "0"),
        ("shop", "1/1", "Running", "0"),
    ]
    assert all(re.fullmatch(r"\d+s", r["AGE"]) for r in rows), rows
    wide = _columns(run(*kubectl, "get", "pods", "-l", "app=shop", "-o", "wide").stdout)
    assert {r["NODE"] for r in wide} == {"standin-node"}
    assert {r["IP"] for r in wide} == {p.status.pod_ip for p in pods_of(core, "shop")}

    deployments = _columns(run(*kubectl, "get", "deployments").stdout)
    assert sorted(
        (r["NAME"], r["READY"], r["UP-TO-DATE"], r["AVAILABLE"]) for r in deployments
    ) == [("locked", "0/1", "1", "0"), ("shop", "2/2", "2", "2")]
    (one,) = _columns(run(*kubectl, "get", "deployment", "shop", "-o", "wide").stdout)
    assert (one["CONTAINERS"], one["IMAGES"], one["SELECTOR"]) == ("app", "shop:1", "app=shop")
    # Sorting needs the whole objects in the rows (kubectl asks with includeObject=Object).
    by_name = run(*kubectl, "get", "pods", "--sort-by=.metadata.name", "-o", "name").stdout
    assert by_name.split() == sorted(by_name.split())


def test_kubectl_get_watch_prints_every_event_in_the_servers_columns(
    standin: KubeApiStandIn, tool_env: dict[str, str], kubeconfig: Path, apps, core, wait_for
) -> None:
    apps.create_namespaced_deployment(NS, deployment("shop"))
    wait_for(lambda: (p := pods_of(core, "shop")) and ready(p[0]))
    watch = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "-n", NS, "get", "pods", "-l", "app=shop", "-w"],
        env=tool_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(watch.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(lines) >= 2, what="the first row")
        apps.patch_namespaced_deployment_scale("shop", NS, {"spec": {"replicas": 2}})
        wait_for(lambda: sum("1/1" in line for line in lines) >= 2, what="the new pod, Ready")
    finally:
        watch.terminate()
        watch.wait(timeout=10)
        reader.join(timeout=10)
    rows = _columns("".join(lines))  # one header: every event came in the same columns
    assert {r["NAME"] for r in rows} == {p.metadata.name for p in pods_of(core, "shop")}
    assert rows[-1]["READY"] == "1/1" and rows[-1]["STATUS"] == "Running", rows


@pytest.mark.parametrize("websockets", ["true", "false"], ids=["spdy-in-websocket", "spdy"])
def test_kubectl_port_forward_reaches_what_the_pod_serves(
    standin: KubeApiStandIn,
    echo: EchoRuntime,
    tool_env: dict[str, str],
    kubeconfig: Path,
    apps,
    core,
    wait_for,
    websockets: str,
) -> None:
    """kubectl 1.33 speaks SPDY/3.1 inside a WebSocket, or (KUBECTL_PORT_FORWARD_WEBSOCKETS=
    false, or when the server refuses that) over a plain SPDY upgrade; both reach the port
    the pod serves, a connection at a time, and a port nobody serves is reported."""
    apps.create_namespaced_deployment(NS, deployment("echo"))
    (pod,) = wait_for(lambda: (p := pods_of(core, "echo")) and ready(p[0]) and p)
    proc = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            NS,
            "port-forward",
            "deploy/echo",
            "--address",
            "127.0.0.1",
            ":8080",
            ":9999",
        ],
        env={**tool_env, "KUBECTL_PORT_FORWARD_WEBSOCKETS": websockets},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ports = [
            int(re.match(r"Forwarding from 127.0.0.1:(\d+) ->", proc.stdout.readline()).group(1))  # type: ignore[union-attr]
            for _ in range(2)
        ]
        for text in (b"hello\n", b"again, on a new connection\n" * 5000):
            with socket.create_connection(("127.0.0.1", ports[0]), timeout=10) as conn:
                conn.sendall(text)
                got = b""
                while len(got) < len(text):
                    chunk = conn.recv(65536)
                    assert chunk, f"closed after {len(got)} bytes"
                    got += chunk
                assert got == text
        with socket.create_connection(("127.0.0.1", ports[1]), timeout=10) as conn:
            conn.sendall(b"anyone?\n")
            assert conn.recv(100) == b""  # kubectl closes it once the error arrives
        proc.wait(timeout=20)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert (
        f"an error occurred forwarding {ports[1]} -> 9999: error forwarding port 9999 to pod "
        f"{pod.metadata.name}, uid {pod.metadata.uid}: failed to connect to localhost:9999 "
        "inside the pod's network namespace: connection refused"
    ) in stderr, stderr
    # kubectl 1.31+ ends the whole session on an error from the pod (client-go portforward).
    assert "lost connection to pod" in stderr, stderr
    # The stand-in logs the upgrade once the session has ended.
    wanted = [("GET", 101)] if websockets == "true" else [("POST", 101)]
    wait_for(
        lambda: (
            [
                (r["method"], r["status"])
                for r in standin.requests
                if r["path"].startswith(
                    f"/api/v1/namespaces/{NS}/pods/{pod.metadata.name}/portforward"
                )
            ]
            == wanted
        ),
        what=f"{wanted} in the request log",
    )


def test_requests_are_logged_with_the_callers_identity(
    standin: KubeApiStandIn, tmp_path: Path, core
) -> None:
    core.list_namespaced_config_map(NS)
    sa = "system:serviceaccount:tools:temporal-bootstrap"
    other = standin.write_kubeconfig(tmp_path / "sa.kubeconfig", user=sa)
    from kubernetes import config

    # No binding grants the ServiceAccount anything (rbac.py): its request is denied, and logged.
    with (
        config.new_client_from_config(config_file=str(other)) as api,
        pytest.raises(ApiException) as denied,
    ):
        client.CoreV1Api(api).read_namespace(NS)
    assert denied.value.status == 403
    logged = [
        (r["user"], r["verb"], r["resource"], r["name"], r["status"]) for r in standin.requests
    ]
    assert ("standin-admin", "list", "configmaps", "", 200) in logged
    assert (sa, "get", "namespaces", NS, 403) in logged

    bad = standin.client_ssl_context().wrap_socket(
        socket.create_connection(("127.0.0.1", standin.port)), server_hostname="127.0.0.1"
    )
    bad.sendall(
        b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer forged\r\n"
        b"Connection: close\r\n\r\n"
    )
    answer = b"".join(iter(lambda: bad.recv(4096), b""))
    bad.close()
    assert answer.startswith(b"HTTP/1.1 401")
