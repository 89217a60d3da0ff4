"""ensure_ca_bundle against the Kubernetes API stand-in and moto S3 (no mocked clients)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from cryptography import x509
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ensure_ca_bundle import CaBundlePublisher
from adapters.clients import AwsClients, KubeClients
from adapters.errors import ErrorType
from adapters.kube_objects import MANAGED_BY, MANAGED_BY_LABEL
from contracts.base import DriftItem
from contracts.ensure_ca_bundle import EnsureCaBundleInput, EnsureCaBundleResult
from declared_state.models import (
    CaBundleFromFile,
    CaBundleFromS3,
    Environment,
    PodSecurityLevel,
)
from local_stack.aws import CA_BUCKET, CA_KEY, LocalAws
from local_stack.tls import CertificateAuthority
from tests.helpers import drift_messages


@pytest.fixture
def namespace() -> str:
    """A namespace of its own: the stand-in is shared by the whole session."""
    return f"cab-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def env(local_env: Environment, namespace: str) -> Environment:
    return _with(local_env, namespace=namespace)


@pytest.fixture
def publisher(aws_clients: AwsClients, kube_clients: KubeClients) -> CaBundlePublisher:
    return CaBundlePublisher(aws_clients, kube_clients)


@pytest.fixture
def s3_original(local_aws: LocalAws) -> Iterator[bytes]:
    """The seeded CA object; put back after the test whatever the test did to it."""
    s3 = local_aws.client("s3")
    original = s3.get_object(Bucket=CA_BUCKET, Key=CA_KEY)["Body"].read()
    try:
        yield original
    finally:
        s3.put_object(Bucket=CA_BUCKET, Key=CA_KEY, Body=original)


def _with(env: Environment, namespace: str | None = None, source=None) -> Environment:
    update = {}
    if namespace is not None:
        update["kubernetes"] = env.kubernetes.model_copy(update={"namespace": namespace})
    if source is not None:
        update["ca_bundle"] = env.ca_bundle.model_copy(update={"source": source})
    return env.model_copy(update=update)


def _run(
    publisher: CaBundlePublisher, env: Environment, dry_run: bool = False
) -> EnsureCaBundleResult:
    return ActivityEnvironment().run(
        publisher.ensure_ca_bundle, EnsureCaBundleInput(environment=env, dry_run=dry_run)
    )


def _expected(bundle: bytes) -> tuple[str, int, object]:
    certs = x509.load_pem_x509_certificates(bundle)
    return (
        hashlib.sha256(bundle).hexdigest(),
        len(certs),
        min(c.not_valid_after_utc for c in certs),
    )


def _read(core: k8s.CoreV1Api, env: Environment) -> k8s.V1ConfigMap:
    return core.read_namespaced_config_map(env.ca_bundle.config_map, env.kubernetes.namespace)


def test_created_in_a_new_namespace_then_unchanged_without_a_write(
    kube_writes, publisher, env, core, kube_standin, s3_original
) -> None:
    namespace = env.kubernetes.namespace
    with pytest.raises(ApiException) as missing:
        core.read_namespace(namespace)
    assert missing.value.status == 404

    first = _run(publisher, env)

    sha, count, earliest = _expected(s3_original)
    assert first == EnsureCaBundleResult(
        config_map=env.ca_bundle.config_map,
        namespace=namespace,
        key=env.ca_bundle.key,
        action="created",
        sha256=sha,
        certificates=count,
        earliest_expiry=earliest,
        pod_security="created",
        changed=True,
        summary=f"ConfigMap {namespace}/{env.ca_bundle.config_map} created "
        f"({count} certificate{'s' if count != 1 else ''}, earliest expiry {earliest:%Y-%m-%d})"
        f"; Namespace {namespace} Pod Security labels created",
        drift=(
            DriftItem(
                message=f"ConfigMap {namespace}/{env.ca_bundle.config_map} missing",
                kind="ConfigMap",
                namespace=namespace,
                name=env.ca_bundle.config_map,
            ),
        ),
    )
    assert core.read_namespace(namespace).metadata.labels == {
        MANAGED_BY_LABEL: MANAGED_BY,
        "kubernetes.io/metadata.name": namespace,
        **{f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "audit", "warn")},
        **{
            f"pod-security.kubernetes.io/{m}-version": "latest"
            for m in ("enforce", "audit", "warn")
        },
    }
    cm = _read(core, env)
    assert cm.data == {env.ca_bundle.key: s3_original.decode()}
    assert cm.metadata.labels[MANAGED_BY_LABEL] == MANAGED_BY
    marker = kube_writes.mark()

    second = _run(publisher, env)

    assert second == first.model_copy(
        update={
            "action": "unchanged",
            "pod_security": "unchanged",
            "changed": False,
            "summary": f"ConfigMap {namespace}/{env.ca_bundle.config_map} unchanged "
            f"({count} certificate{'s' if count != 1 else ''}, earliest expiry {earliest:%Y-%m-%d})",
            "drift": (),
        }
    )
    assert _read(core, env).metadata.resource_version == cm.metadata.resource_version
    # The stand-in keeps the resourceVersion of a no-op write too: check that none was sent.
    assert kube_writes.since(marker) == []


def test_updated_when_the_s3_object_changes(publisher, env, core, local_aws, s3_original) -> None:
    _run(publisher, env)
    before = _read(core, env).metadata.resource_version
    bundle = s3_original + CertificateAuthority.generate("second CA").cert_pem
    local_aws.client("s3").put_object(Bucket=CA_BUCKET, Key=CA_KEY, Body=bundle)

    result = _run(publisher, env)

    sha, count, earliest = _expected(bundle)
    assert (result.action, result.sha256, result.certificates) == ("updated", sha, 2)
    assert result.earliest_expiry == earliest
    assert drift_messages(result) == (
        f"key {env.ca_bundle.key} differs from CA bundle s3://{CA_BUCKET}/{CA_KEY}",
    )
    cm = _read(core, env)
    assert cm.data == {env.ca_bundle.key: bundle.decode()}
    assert cm.metadata.resource_version != before


def test_file_source(publisher, local_env, namespace, core, tmp_path: Path) -> None:
    pem = CertificateAuthority.generate("file CA").cert_pem
    path = tmp_path / "bundle.pem"
    path.write_bytes(pem)
    env = _with(local_env, namespace, CaBundleFromFile(kind="file", path=str(path.resolve())))

    result = _run(publisher, env)

    assert (result.action, result.sha256, result.certificates) == (
        "created",
        hashlib.sha256(pem).hexdigest(),
        1,
    )
    assert _read(core, env).data == {env.ca_bundle.key: pem.decode()}


def test_existing_config_map_gets_the_bundle_and_label_and_keeps_other_keys(
    publisher, env, core, s3_original
) -> None:
    namespace = env.kubernetes.namespace
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
    core.create_namespaced_config_map(
        namespace,
        k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(name=env.ca_bundle.config_map, labels={"team": "db"}),
            data={env.ca_bundle.key: "old", "other.pem": "kept"},
        ),
    )

    assert _run(publisher, env).action == "updated"

    cm = _read(core, env)
    assert cm.data == {env.ca_bundle.key: s3_original.decode(), "other.pem": "kept"}
    assert cm.metadata.labels == {"team": "db", MANAGED_BY_LABEL: MANAGED_BY}


def test_dry_run_on_a_missing_namespace_creates_nothing(
    kube_writes, publisher, env, s3_original
) -> None:
    namespace = env.kubernetes.namespace

    result = kube_writes.dry_run(partial(_run, publisher, env))

    assert result.action == "created"
    assert drift_messages(result) == (f"ConfigMap {namespace}/{env.ca_bundle.config_map} missing",)
    assert result.sha256 == hashlib.sha256(s3_original).hexdigest()
    assert kube_writes.namespace_missing(namespace)


def test_dry_run_reports_drift_without_writing_then_unchanged_when_in_sync(
    kube_writes, publisher, env, core, s3_original
) -> None:
    namespace, key = env.kubernetes.namespace, env.ca_bundle.key
    # A namespace labelled baseline by hand: its enforce label is drift, its other labels kept.
    core.create_namespace(
        k8s.V1Namespace(
            metadata=k8s.V1ObjectMeta(
                name=namespace,
                labels={
                    "team": "db",
                    "pod-security.kubernetes.io/enforce": "baseline",
                    **{f"pod-security.kubernetes.io/{m}": "restricted" for m in ("audit", "warn")},
                    **{
                        f"pod-security.kubernetes.io/{m}-version": "latest"
                        for m in ("enforce", "audit", "warn")
                    },
                },
            )
        )
    )
    core.create_namespaced_config_map(
        namespace,
        k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(name=env.ca_bundle.config_map, labels={"team": "db"}),
            data={key: "old", "other.pem": "kept"},
        ),
    )
    run = partial(_run, publisher, env)

    drifted = kube_writes.dry_run(run)

    assert drifted.action == "updated"
    assert drift_messages(drifted) == (
        "label pod-security.kubernetes.io/enforce is 'baseline', declared 'restricted'",
        f"key {key} differs from CA bundle s3://{CA_BUCKET}/{CA_KEY}",
        f"label {MANAGED_BY_LABEL} missing",
    )
    cm = _read(core, env)
    assert cm.data == {key: "old", "other.pem": "kept"}
    assert cm.metadata.labels == {"team": "db"}
    assert core.read_namespace(namespace).metadata.labels["pod-security.kubernetes.io/enforce"] == (
        "baseline"
    )

    assert drifted.pod_security == "updated"
    written = run(False)
    assert (written.action, written.pod_security, drift_messages(written)) == (
        "updated",
        "updated",
        drift_messages(drifted),
    )
    labels = core.read_namespace(namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["team"] == "db", "labels of other writers are kept"
    in_sync = kube_writes.dry_run(run)
    assert (in_sync.action, in_sync.pod_security, in_sync.drift) == ("unchanged", "unchanged", ())


def test_create_race_reads_and_compares_again(
    kube_writes, publisher, env, core, kube_standin, s3_original
) -> None:
    """Another writer creates the same ConfigMap between our read (404) and our create (409)."""
    env = env.model_copy(update={"pod_security": PodSecurityLevel.NONE})  # the ConfigMap only
    namespace = env.kubernetes.namespace
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
    core.create_namespaced_config_map(
        namespace,
        k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(
                name=env.ca_bundle.config_map, labels={MANAGED_BY_LABEL: MANAGED_BY}
            ),
            data={env.ca_bundle.key: s3_original.decode()},
        ),
    )
    path = f"/namespaces/{namespace}/configmaps/{env.ca_bundle.config_map}$"
    kube_standin.inject_faults(path, status=404, count=1, method="GET")
    marker = kube_writes.mark()

    assert _run(publisher, env).action == "unchanged"

    writes = [(r["method"], r["status"]) for r in kube_writes.since(marker)]
    assert writes == [("POST", 409)]


def test_update_conflict_reads_and_compares_again(
    kube_writes, publisher, env, core, kube_standin
) -> None:
    """A stale resourceVersion on replace (409) leads to a fresh read and a second replace."""
    _run(publisher, env)
    cm = _read(core, env)
    cm.data = {env.ca_bundle.key: "drifted"}
    core.replace_namespaced_config_map(cm.metadata.name, env.kubernetes.namespace, cm)
    path = f"/namespaces/{env.kubernetes.namespace}/configmaps/{env.ca_bundle.config_map}$"
    kube_standin.inject_faults(path, status=409, count=1, method="PUT")
    marker = kube_writes.mark()

    assert _run(publisher, env).action == "updated"

    writes = [(r["method"], r["status"]) for r in kube_writes.since(marker)]
    assert writes == [("PUT", 409), ("PUT", 200)]
    assert _read(core, env).data[env.ca_bundle.key] != "drifted"


def test_garbage_content_is_invalid_and_names_the_source(
    publisher, local_env, namespace, core, tmp_path: Path
) -> None:
    path = tmp_path / "garbage.pem"
    path.write_bytes(b"this is not a certificate\n")
    env = _with(local_env, namespace, CaBundleFromFile(kind="file", path=str(path)))

    with pytest.raises(ApplicationError) as raised:
        _run(publisher, env)

    assert raised.value.type == ErrorType.CA_BUNDLE_INVALID
    assert raised.value.non_retryable
    assert str(path) in raised.value.message
    with pytest.raises(ApiException):
        _read(core, env)  # nothing was written


def test_missing_s3_object_is_invalid(publisher, local_env, namespace) -> None:
    source = CaBundleFromS3(kind="s3", bucket=CA_BUCKET, key="no-such.pem", region="us-east-1")
    env = _with(local_env, namespace, source)

    with pytest.raises(ApplicationError) as raised:
        _run(publisher, env)

    assert raised.value.type == ErrorType.CA_BUNDLE_INVALID
    assert raised.value.non_retryable
    assert f"s3://{CA_BUCKET}/no-such.pem" in raised.value.message


@pytest.mark.parametrize(
    ("status", "error_type", "non_retryable"),
    [
        (403, ErrorType.KUBERNETES_FORBIDDEN, True),
        (503, ErrorType.KUBERNETES_UNAVAILABLE, False),
    ],
)
def test_kubernetes_failures_are_classified(
    publisher, env, kube_standin, status, error_type, non_retryable
) -> None:
    path = f"/namespaces/{env.kubernetes.namespace}/configmaps/{env.ca_bundle.config_map}$"
    kube_standin.inject_faults(path, status=status, count=1, method="GET")

    with pytest.raises(ApplicationError) as raised:
        _run(publisher, env)

    assert raised.value.type == error_type
    assert raised.value.non_retryable is non_retryable
    assert (
        f"ConfigMap {env.kubernetes.namespace}/{env.ca_bundle.config_map}" in raised.value.message
    )
