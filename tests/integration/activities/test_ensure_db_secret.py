"""ensure_db_secret against the Kubernetes API stand-in and moto Secrets Manager (no mocks)."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from functools import partial

import pytest
from kubernetes import client as k8s
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ensure_db_secret import DbSecretPublisher
from adapters.clients import AwsClients, KubeClients
from adapters.errors import ErrorType
from adapters.kube_objects import MANAGED_BY, MANAGED_BY_LABEL
from contracts.base import DriftItem
from contracts.ensure_db_secret import EnsureDbSecretInput, EnsureDbSecretResult
from declared_state.models import Environment, ExistingKubernetesSecret
from local_stack.aws import SECRET_ID, LocalAws
from local_stack.mariadb import MariaDB
from tests.helpers import drift_messages


@pytest.fixture
def namespace() -> str:
    """A namespace of its own: the stand-in is shared by the whole session."""
    return f"dbs-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def env(local_env: Environment, namespace: str) -> Environment:
    return _with(local_env, namespace)


@pytest.fixture
def existing_env(env: Environment) -> Environment:
    """The same environment with the Secret managed elsewhere."""
    database = env.database.model_copy(
        update={"password_source": ExistingKubernetesSecret(kind="existing_kubernetes_secret")}
    )
    return env.model_copy(update={"database": database})


@pytest.fixture
def publisher(aws_clients: AwsClients, kube_clients: KubeClients) -> DbSecretPublisher:
    return DbSecretPublisher(aws_clients, kube_clients)


@pytest.fixture
def reseed(local_aws: LocalAws) -> Iterator[LocalAws]:
    """For tests that change the Secrets Manager value: the seeded state comes back after."""
    try:
        yield local_aws
    finally:
        local_aws.seed()


def _with(env: Environment, namespace: str) -> Environment:
    kubernetes = env.kubernetes.model_copy(update={"namespace": namespace})
    return env.model_copy(update={"kubernetes": kubernetes})


def _run(
    publisher: DbSecretPublisher, env: Environment, dry_run: bool = False
) -> EnsureDbSecretResult:
    return ActivityEnvironment().run(
        publisher.ensure_db_secret, EnsureDbSecretInput(environment=env, dry_run=dry_run)
    )


def _secret_document(local_aws: LocalAws) -> dict[str, str]:
    sm = local_aws.client("secretsmanager")
    return json.loads(sm.get_secret_value(SecretId=SECRET_ID)["SecretString"])


def _put_passwords(local_aws: LocalAws, default: str, visibility: str) -> None:
    document = {
        **_secret_document(local_aws),
        "password": default,
        "visibility_password": visibility,
    }
    local_aws.client("secretsmanager").put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps(document)
    )


def _read(core: k8s.CoreV1Api, env: Environment) -> k8s.V1Secret:
    return core.read_namespaced_secret(
        env.database.kubernetes_secret.name, env.kubernetes.namespace
    )


def _decoded(secret: k8s.V1Secret) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _make_secret(
    core: k8s.CoreV1Api, env: Environment, values: dict[str, str], type_: str = "Opaque"
) -> None:
    namespace = env.kubernetes.namespace
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
    core.create_namespaced_secret(
        namespace,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(name=env.database.kubernetes_secret.name),
            type=type_,
            data={k: _b64(v) for k, v in values.items()},
        ),
    )


def test_created_with_both_passwords_then_unchanged_without_a_write(
    kube_writes, publisher, env, core, kube_standin, local_aws, mariadb: MariaDB
) -> None:
    spec = env.database.kubernetes_secret
    document = _secret_document(local_aws)

    first = _run(publisher, env)

    assert first == EnsureDbSecretResult(
        secret=spec.name,
        namespace=env.kubernetes.namespace,
        keys=(spec.default_store_key, spec.visibility_store_key),
        action="created",
        changed=True,
        summary=f"Secret {env.kubernetes.namespace}/{spec.name} created",
        drift=(
            DriftItem(
                message=f"Secret {env.kubernetes.namespace}/{spec.name} missing",
                kind="Secret",
                namespace=env.kubernetes.namespace,
                name=spec.name,
            ),
        ),
    )
    secret = _read(core, env)
    assert secret.type == "Opaque"
    assert secret.metadata.labels[MANAGED_BY_LABEL] == MANAGED_BY
    assert _decoded(secret) == {
        spec.default_store_key: document["password"],
        spec.visibility_store_key: document["visibility_password"],
    }
    assert document["password"] == mariadb.password
    marker = kube_writes.mark()

    second = _run(publisher, env)

    assert second == first.model_copy(
        update={
            "action": "unchanged",
            "changed": False,
            "summary": f"Secret {env.kubernetes.namespace}/{spec.name} unchanged",
            "drift": (),
        }
    )
    assert _read(core, env).metadata.resource_version == secret.metadata.resource_version
    # The stand-in keeps the resourceVersion of a no-op write too: check that none was sent.
    assert kube_writes.since(marker) == []


def test_updated_when_the_secrets_manager_value_changes(publisher, env, core, reseed) -> None:
    spec = env.database.kubernetes_secret
    _run(publisher, env)
    before = _read(core, env).metadata.resource_version
    _put_passwords(reseed, "rotated-default", "rotated-visibility")

    result = _run(publisher, env)

    assert result.action == "updated"
    assert drift_messages(result) == (
        f"key {spec.default_store_key} differs from Secrets Manager",
        f"key {spec.visibility_store_key} differs from Secrets Manager",
    )

    secret = _read(core, env)
    assert _decoded(secret) == {
        spec.default_store_key: "rotated-default",
        spec.visibility_store_key: "rotated-visibility",
    }
    assert secret.metadata.resource_version != before


def test_existing_secret_gets_the_passwords_and_label_and_keeps_other_keys(
    publisher, env, core, local_aws
) -> None:
    spec = env.database.kubernetes_secret
    _make_secret(core, env, {spec.default_store_key: "stale", "username": "temporal_app"})

    assert _run(publisher, env).action == "updated"

    secret = _read(core, env)
    document = _secret_document(local_aws)
    assert _decoded(secret) == {
        spec.default_store_key: document["password"],
        spec.visibility_store_key: document["visibility_password"],
        "username": "temporal_app",
    }
    assert secret.metadata.labels == {MANAGED_BY_LABEL: MANAGED_BY}


def test_dry_run_on_a_missing_namespace_creates_nothing(kube_writes, publisher, env) -> None:
    namespace = env.kubernetes.namespace

    result = kube_writes.dry_run(partial(_run, publisher, env))

    assert result.action == "created"
    assert drift_messages(result) == (
        f"Secret {namespace}/{env.database.kubernetes_secret.name} missing",
    )
    assert kube_writes.namespace_missing(namespace)


def test_dry_run_reports_drift_without_writing_then_unchanged_when_in_sync(
    kube_writes, publisher, env, core
) -> None:
    spec = env.database.kubernetes_secret
    _make_secret(core, env, {spec.default_store_key: "stale", "username": "temporal_app"})
    run = partial(_run, publisher, env)

    drifted = kube_writes.dry_run(run)

    assert drifted.action == "updated"
    assert drift_messages(drifted) == (
        f"key {spec.default_store_key} differs from Secrets Manager",
        f"key {spec.visibility_store_key} missing",
        f"label {MANAGED_BY_LABEL} missing",
    )
    secret = _read(core, env)
    assert _decoded(secret) == {spec.default_store_key: "stale", "username": "temporal_app"}
    assert not secret.metadata.labels

    kube_writes.repair_then_in_sync(run, drifted)


def test_dry_run_in_existing_mode_verifies(kube_writes, publisher, existing_env, core) -> None:
    spec = existing_env.database.kubernetes_secret
    _make_secret(core, existing_env, {spec.default_store_key: "a", spec.visibility_store_key: "b"})

    result = kube_writes.dry_run(partial(_run, publisher, existing_env))

    assert (result.action, drift_messages(result)) == ("verified", ())


def test_existing_secret_of_another_type_is_a_configuration_mismatch(publisher, env, core) -> None:
    spec = env.database.kubernetes_secret
    _make_secret(core, env, {"username": "u", "password": "p"}, "kubernetes.io/basic-auth")

    with pytest.raises(ApplicationError) as raised:
        _run(publisher, env)

    assert raised.value.type == ErrorType.CONFIGURATION_MISMATCH
    assert raised.value.non_retryable
    assert "kubernetes.io/basic-auth" in raised.value.message
    assert _decoded(_read(core, env)) == {"username": "u", "password": "p"}
    assert spec.name in raised.value.message


def test_existing_mode_verifies_without_writing(
    kube_writes, publisher, existing_env, core, kube_standin
) -> None:
    spec = existing_env.database.kubernetes_secret
    _make_secret(core, existing_env, {spec.default_store_key: "a", spec.visibility_store_key: "b"})
    marker = kube_writes.mark()

    result = _run(publisher, existing_env)

    assert result == EnsureDbSecretResult(
        secret=spec.name,
        namespace=existing_env.kubernetes.namespace,
        keys=(spec.default_store_key, spec.visibility_store_key),
        action="verified",
        changed=False,
        summary=f"Secret {existing_env.kubernetes.namespace}/{spec.name} verified "
        f"(keys {spec.default_store_key}, {spec.visibility_store_key})",
    )
    assert kube_writes.since(marker) == []


def test_existing_mode_names_a_missing_key(publisher, existing_env, core) -> None:
    spec = existing_env.database.kubernetes_secret
    _make_secret(core, existing_env, {spec.default_store_key: "a"})

    with pytest.raises(ApplicationError) as raised:
        _run(publisher, existing_env)

    assert raised.value.type == ErrorType.KUBERNETES_SECRET_INVALID
    assert raised.value.non_retryable
    assert repr(spec.visibility_store_key) in raised.value.message


def test_existing_mode_names_an_empty_key(publisher, existing_env, core) -> None:
    spec = existing_env.database.kubernetes_secret
    _make_secret(core, existing_env, {spec.default_store_key: "", spec.visibility_store_key: "b"})

    with pytest.raises(ApplicationError) as raised:
        _run(publisher, existing_env)

    assert raised.value.type == ErrorType.KUBERNETES_SECRET_INVALID
    assert repr(spec.default_store_key) in raised.value.message
    assert repr(spec.visibility_store_key) not in raised.value.message


def test_existing_mode_missing_secret(publisher, existing_env, core) -> None:
    namespace = existing_env.kubernetes.namespace
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))

    with pytest.raises(ApplicationError) as raised:
        _run(publisher, existing_env)

    assert raised.value.type == ErrorType.KUBERNETES_SECRET_INVALID
    assert raised.value.non_retryable
    assert f"{namespace}/{existing_env.database.kubernetes_secret.name}" in raised.value.message
    assert "does not exist" in raised.value.message


@pytest.mark.parametrize(
    ("status", "error_type", "non_retryable"),
    [
        (401, ErrorType.KUBERNETES_FORBIDDEN, True),
        (500, ErrorType.KUBERNETES_UNAVAILABLE, False),
    ],
)
def test_kubernetes_failures_on_write_are_classified(
    publisher, env, kube_standin, status, error_type, non_retryable
) -> None:
    path = f"/namespaces/{env.kubernetes.namespace}/secrets$"
    kube_standin.inject_faults(path, status=status, count=1, method="POST")

    with pytest.raises(ApplicationError) as raised:
        _run(publisher, env)

    assert raised.value.type == error_type
    assert raised.value.non_retryable is non_retryable


def test_password_appears_in_no_result_log_or_error(
    publisher, env, existing_env, core, reseed, kube_standin, caplog
) -> None:
    default, visibility = f"pw-default-{uuid.uuid4().hex}", f"pw-vis-{uuid.uuid4().hex}"
    _put_passwords(reseed, default, visibility)
    forbidden = [default, visibility, _b64(default), _b64(visibility)]
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []

    # created, unchanged, updated (dry run, then for real), verified
    outputs.append(_run(publisher, env).model_dump_json())
    outputs.append(_run(publisher, env).model_dump_json())
    _put_passwords(reseed, default + "-2", visibility + "-2")
    forbidden += [default + "-2", visibility + "-2"]
    outputs.append(_run(publisher, env, dry_run=True).model_dump_json())
    outputs.append(_run(publisher, env).model_dump_json())
    outputs.append(_run(publisher, existing_env).model_dump_json())
    assert [json.loads(o)["action"] for o in outputs] == [
        "created",
        "unchanged",
        "updated",
        "updated",
        "verified",
    ]
    assert json.loads(outputs[2])["drift"] == json.loads(outputs[3])["drift"] != []
    # errors: a failing write, and the existing Secret refused for another key set
    kube_standin.inject_faults(
        f"/namespaces/{env.kubernetes.namespace}/secrets/", status=500, count=1, method="PUT"
    )
    _put_passwords(reseed, default + "-3", visibility + "-3")
    forbidden += [default + "-3", visibility + "-3"]
    errors: list[ApplicationError] = []
    with pytest.raises(ApplicationError) as raised:
        _run(publisher, env)
    errors.append(raised.value)
    other_keys = existing_env.database.model_copy(
        update={
            "kubernetes_secret": existing_env.database.kubernetes_secret.model_copy(
                update={"visibility_store_key": "absent"}
            )
        }
    )
    with pytest.raises(ApplicationError) as raised:
        _run(publisher, existing_env.model_copy(update={"database": other_keys}))
    errors.append(raised.value)
    assert [e.type for e in errors] == [
        ErrorType.KUBERNETES_UNAVAILABLE,
        ErrorType.KUBERNETES_SECRET_INVALID,
    ]
    for error in errors:
        outputs += [error.message, str(error), repr(error.details)]
        cause = error.__cause__ or error.__context__
        if cause is not None and not error.__suppress_context__:
            outputs.append(str(cause))
    # botocore logs whole AWS response bodies at DEBUG (the GetSecretValue answer included);
    # that is the worker's logging configuration to keep above DEBUG, not this activity's.
    records = [r for r in caplog.records if not r.name.startswith("botocore")]
    assert any(r.name == "temporalio.activity" for r in records)
    outputs += [r.getMessage() for r in records]

    for text in outputs:
        for value in forbidden:
            assert value not in text


def test_existing_mode_unreachable_kubernetes_api_is_retryable(
    aws_clients, unreachable_kube, existing_env
) -> None:
    # The real client gives up with urllib3's MaxRetryError (connection refused): it used to
    # escape the read of the existing Secret unclassified.
    publisher = DbSecretPublisher(aws_clients, unreachable_kube)

    with pytest.raises(ApplicationError) as raised:
        _run(publisher, existing_env)

    spec = existing_env.database.kubernetes_secret
    assert raised.value.type == ErrorType.KUBERNETES_UNAVAILABLE
    assert not raised.value.non_retryable
    assert raised.value.message.startswith(
        f"reading Kubernetes Secret {existing_env.kubernetes.namespace}/{spec.name}: "
        "Kubernetes API unreachable (MaxRetryError: "
    )


def test_unknown_kube_context_is_a_configuration_mismatch(publisher, env) -> None:
    other = env.model_copy(
        update={"kubernetes": env.kubernetes.model_copy(update={"context": "no-such-context"})}
    )

    with pytest.raises(ApplicationError) as raised:
        _run(publisher, other)

    assert raised.value.type == ErrorType.CONFIGURATION_MISMATCH
    assert raised.value.non_retryable
    assert "kube context no-such-context" in raised.value.message


def test_a_secrets_manager_value_that_is_no_string_is_refused_without_quoting_it(
    publisher, env, reseed
) -> None:
    document = {**_secret_document(reseed), "visibility_password": 424242}
    reseed.client("secretsmanager").put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps(document)
    )
    with pytest.raises(ApplicationError) as raised:
        _run(publisher, env)
    assert raised.value.type == ErrorType.PASSWORD_SOURCE_INVALID
    assert raised.value.non_retryable
    assert "no non-empty string key(s) visibility_password" in raised.value.message
    assert "424242" not in raised.value.message
