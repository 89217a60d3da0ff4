"""Contract tests of the stand-in's authentication and RBAC authorization with the real
clients: a ServiceAccount's token from `kubectl create token` (TokenRequest), Roles and
bindings applied with kubectl, and what kubectl, the Python client and helm are then allowed
and refused, with the API server's 403 wording."""

from __future__ import annotations

import json
import subprocess
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.stream import portforward

from local_stack.kube_api_standin import KubeApiStandIn

from .conftest import KUBECTL, deployment, pods_of, ready

NS = "apps"
SA = "worker"
USER = f"system:serviceaccount:{NS}:{SA}"


@pytest.fixture
def kubectl(kubeconfig: Path):
    """`kubectl(*args, stdin=None, kubeconfig_path=...)`: the admin's kubectl by default."""

    def _kubectl(*args: str, stdin: str | None = None, kubeconfig_path: Path = kubeconfig):
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(kubeconfig_path), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return _kubectl


@pytest.fixture
def service_account(standin: KubeApiStandIn, kubectl, tmp_path: Path) -> Path:
    """Namespace NS with ServiceAccount SA (applied by the admin); returns a kubeconfig that
    carries the token `kubectl create token` issued for it."""
    applied = kubectl(
        "apply",
        "-f",
        "-",
        stdin=textwrap.dedent(
            f"""
            apiVersion: v1
            kind: Namespace
            metadata: {{name: {NS}}}
            ---
            apiVersion: v1
            kind: ServiceAccount
            metadata: {{name: {SA}, namespace: {NS}}}
            """
        ),
    )
    assert applied.returncode == 0, applied.stderr
    issued = kubectl("create", "token", SA, "-n", NS, "--duration", "15m")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    return standin.write_kubeconfig(tmp_path / "sa.kubeconfig", namespace=NS, token=token)


def grant(kubectl, rules: str, kind: str = "Role", binding: str = "RoleBinding") -> None:
    """A `kind` named `granted` with `rules` (YAML list) bound to the ServiceAccount."""
    namespace = f"namespace: {NS}" if kind == "Role" else ""
    bind_ns = f"namespace: {NS}" if binding == "RoleBinding" else ""
    manifest = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: {kind}
metadata:
  name: granted
  {namespace}
rules:
{textwrap.indent(textwrap.dedent(rules).strip(), "  ")}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {binding}
metadata:
  name: granted
  {bind_ns}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {kind}, name: granted}}
subjects:
  - {{kind: ServiceAccount, name: {SA}, namespace: {NS}}}
"""
    applied = kubectl("apply", "-f", "-", stdin=manifest)
    assert applied.returncode == 0, applied.stderr


def test_a_service_account_may_do_what_its_role_grants_and_nothing_else(
    standin: KubeApiStandIn, kubectl, service_account: Path
) -> None:
    as_sa = {"kubeconfig_path": service_account}
    denied = kubectl("get", "configmaps", "-n", NS, **as_sa)
    assert denied.returncode != 0
    assert (
        f'configmaps is forbidden: User "{USER}" cannot list resource "configmaps" in API '
        f'group "" in the namespace "{NS}"' in denied.stderr
    )

    grant(kubectl, '- {apiGroups: [""], resources: [configmaps], verbs: [get, list, create]}')
    created = kubectl("create", "configmap", "made-by-sa", "-n", NS, **as_sa)
    assert created.returncode == 0, created.stderr
    listed = kubectl("get", "configmaps", "-n", NS, "-o", "name", **as_sa)
    assert "configmap/made-by-sa" in listed.stdout.split()

    # Not the verb, not the resource, not another namespace.
    deleted = kubectl("delete", "configmap", "made-by-sa", "-n", NS, **as_sa)
    assert 'cannot delete resource "configmaps"' in deleted.stderr
    secrets = kubectl("get", "secrets", "-n", NS, **as_sa)
    assert 'cannot list resource "secrets"' in secrets.stderr
    other = kubectl("get", "configmaps", "-n", "default", **as_sa)
    assert 'in the namespace "default"' in other.stderr

    logged = [
        (r["user"], r["verb"], r["resource"], r["namespace"], r["status"])
        for r in standin.requests
        if r["user"] == USER and r["resource"]
    ]
    assert (USER, "create", "configmaps", NS, 201) in logged
    assert (USER, "delete", "configmaps", NS, 403) in logged
    # Discovery is every authenticated user's (system:discovery).
    assert all(
        r["status"] == 200 for r in standin.requests if r["user"] == USER and not r["resource"]
    )


def test_resource_names_subresources_and_cluster_roles(
    standin: KubeApiStandIn, kubectl, service_account: Path, apps
) -> None:
    as_sa = {"kubeconfig_path": service_account}
    apps.create_namespaced_deployment(NS, deployment("web"))
    apps.create_namespaced_deployment(NS, deployment("db"))
    # A ClusterRole bound by a RoleBinding grants only inside the binding's namespace.
    grant(
        kubectl,
        """
        - {apiGroups: [apps], resources: [deployments], verbs: [get], resourceNames: [web]}
        - {apiGroups: [apps], resources: [deployments/scale], verbs: [get, patch]}
        """,
        kind="ClusterRole",
    )
    assert kubectl("get", "deployment", "web", "-n", NS, **as_sa).returncode == 0
    db = kubectl("get", "deployment", "db", "-n", NS, **as_sa)
    assert 'deployments.apps "db" is forbidden' in db.stderr
    listed = kubectl("get", "deployments", "-n", NS, **as_sa)
    assert 'cannot list resource "deployments"' in listed.stderr, "resourceNames never list"
    # kubectl scale reads the Deployment, then patches its scale subresource.
    scaled = kubectl("scale", "deployment", "web", "--replicas=3", "-n", NS, **as_sa)
    assert scaled.returncode == 0, scaled.stderr
    assert apps.read_namespaced_deployment("web", NS).spec.replicas == 3
    not_named = kubectl("scale", "deployment", "db", "--replicas=3", "-n", NS, **as_sa)
    assert 'cannot get resource "deployments"' in not_named.stderr
    elsewhere = kubectl("scale", "deployment", "web", "--replicas=1", "-n", "default", **as_sa)
    assert 'in the namespace "default"' in elsewhere.stderr
    verbs = [
        (r["verb"], r["resource"], r["subresource"], r["name"], r["status"])
        for r in standin.requests
        if r["user"] == USER and r["resource"] == "deployments" and r["namespace"] == NS
    ]
    assert ("patch", "deployments", "scale", "web", 200) in verbs


def test_port_forward_needs_get_and_create_on_pods_portforward(
    standin: KubeApiStandIn, kubectl, service_account: Path, apps, core, wait_for, echo
) -> None:
    apps.create_namespaced_deployment(NS, deployment("echo"))
    (pod,) = wait_for(lambda: (p := pods_of(core, "echo", NS)) and ready(p[0]) and p)
    grant(kubectl, '- {apiGroups: [""], resources: [pods/portforward], verbs: [get]}')
    with config.new_client_from_config(config_file=str(service_account)) as api:
        sa_core = client.CoreV1Api(api)
        with pytest.raises(ApiException) as refused:
            portforward(
                sa_core.connect_get_namespaced_pod_portforward,
                pod.metadata.name,
                NS,
                ports="8080",
            )
        assert refused.value.status == 403 or "403" in str(refused.value)
        grant(kubectl, '- {apiGroups: [""], resources: [pods/portforward], verbs: [get, create]}')
        forward = portforward(
            sa_core.connect_get_namespaced_pod_portforward, pod.metadata.name, NS, ports="8080"
        )
        sock = forward.socket(8080)
        sock.settimeout(10)
        sock.sendall(b"as the service account\n")
        assert sock.recv(100) == b"as the service account\n"
        sock.close()
        forward.close()
    # The refused upgrade was asked about `get` (allowed) and then `create` (denied).
    checks = lambda: [  # noqa: E731
        (r["status"], r["authorized"])
        for r in standin.requests
        if r["user"] == USER and r["subresource"] == "portforward"
    ]
    wait_for(lambda: len(checks()) == 2, what="the forward's request to be logged")
    assert checks() == [(403, ["get", "create"]), (101, ["get", "create"])]


def test_a_bound_token_dies_with_its_service_account(
    standin: KubeApiStandIn, kubectl, service_account: Path
) -> None:
    grant(kubectl, '- {apiGroups: [""], resources: [configmaps], verbs: [list]}')
    assert kubectl("get", "cm", "-n", NS, kubeconfig_path=service_account).returncode == 0
    assert kubectl("delete", "serviceaccount", SA, "-n", NS).returncode == 0
    recreated = kubectl("create", "serviceaccount", SA, "-n", NS)
    assert recreated.returncode == 0, recreated.stderr
    stale = kubectl("get", "cm", "-n", NS, kubeconfig_path=service_account)
    assert stale.returncode != 0
    assert "Unauthorized" in stale.stderr or "must be logged in" in stale.stderr
    short = kubectl("create", "token", SA, "-n", NS, "--duration", "5m")
    assert "may not specify a duration less than 10 minutes" in short.stderr


def test_missing_role_anonymous_users_and_access_reviews(
    standin: KubeApiStandIn, kubectl, service_account: Path, api_client
) -> None:
    binding = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: dangling, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: not-there}}
subjects: [{{kind: Group, name: "system:serviceaccounts:{NS}"}}]
"""
    assert kubectl("apply", "-f", "-", stdin=binding).returncode == 0
    denied = kubectl("get", "cm", "-n", NS, kubeconfig_path=service_account)
    assert 'RBAC: role.rbac.authorization.k8s.io "not-there" not found' in denied.stderr

    # The group subject applies once its role exists.
    grant_role = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: not-there, namespace: {NS}}}
rules: [{{apiGroups: [""], resources: [configmaps], verbs: [list]}}]
"""
    assert kubectl("apply", "-f", "-", stdin=grant_role).returncode == 0
    assert kubectl("get", "cm", "-n", NS, kubeconfig_path=service_account).returncode == 0

    reviews = client.AuthorizationV1Api(api_client)

    def allowed(verb: str, resource: str, **more: str) -> bool:
        spec = client.V1SubjectAccessReviewSpec(
            user=USER,
            groups=[
                "system:serviceaccounts",
                f"system:serviceaccounts:{NS}",
                "system:authenticated",
            ],
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, resource=resource, namespace=NS, **more
            ),
        )
        review = reviews.create_subject_access_review(client.V1SubjectAccessReview(spec=spec))
        return bool(review.status.allowed)

    assert allowed("list", "configmaps")
    assert not allowed("create", "configmaps")
    assert not allowed("list", "configmaps", group="apps")

    # Anonymous requests (no credentials): public info only (system:public-info-viewer).
    trust = standin.client_ssl_context()
    with urllib.request.urlopen(standin.url + "/version", timeout=10, context=trust) as r:
        assert json.loads(r.read())["gitVersion"]
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(standin.url + "/api/v1/namespaces", timeout=10, context=trust)
    assert anonymous.value.code == 403
    assert json.loads(anonymous.value.read())["message"] == (
        'namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" '
        'in API group "" at the cluster scope'
    )
