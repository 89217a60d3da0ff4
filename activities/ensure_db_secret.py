"""ensure_db_secret: the Kubernetes Secret both Temporal stores read their DB password from.

With passwords in AWS Secrets Manager, the Secret `database.kubernetes_secret.name` is created
or updated (type Opaque, both keys, managed-by label; equal content means no write). When the
environment says the Secret is managed elsewhere, it is only verified: it must exist and hold
both keys with non-empty values. Password values never leave this activity: results, logs and
errors name the Secret and its keys only. `dry_run` reports what would change (`drift`,
`action`) and writes nothing.
"""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import client as k8s
from temporalio import activity

from adapters.clients import AwsClients, KubeClients
from adapters.errors import ErrorType, activity_error
from adapters.kube_objects import (
    core_api,
    describe_write,
    ensure_namespaced_object,
    key_differences,
)
from adapters.sources import read_db_passwords
from contracts.ensure_db_secret import EnsureDbSecretInput, EnsureDbSecretResult
from declared_state.models import AwsSecretsManagerPasswords

SECRET_TYPE = "Opaque"


class DbSecretPublisher:
    """Publishes or verifies the DB password Secret; clients are built once by the worker."""

    def __init__(self, aws: AwsClients, kube: KubeClients):
        self._aws = aws
        self._kube = kube

    @activity.defn(name="ensure_db_secret")
    def ensure_db_secret(self, input: EnsureDbSecretInput) -> EnsureDbSecretResult:
        env = input.environment
        spec = env.database.kubernetes_secret
        namespace = env.kubernetes.namespace
        keys = (spec.default_store_key, spec.visibility_store_key)
        where = f"Kubernetes Secret {namespace}/{spec.name}"
        # Secrets Manager, or the existing Secret itself (which raises KUBERNETES_SECRET_INVALID
        # when it is missing or a key is missing or empty).
        passwords = read_db_passwords(env, self._aws, self._kube)

        if not isinstance(env.database.password_source, AwsSecretsManagerPasswords):
            activity.logger.info("%s verified: keys %s present", where, ", ".join(keys))
            return EnsureDbSecretResult(
                secret=spec.name,
                namespace=namespace,
                keys=keys,
                action="verified",
                changed=False,
                summary=f"Secret {namespace}/{spec.name} verified (keys {', '.join(keys)})",
                dry_run=input.dry_run,
            )

        desired = {
            spec.default_store_key: _b64(passwords.default_store),
            spec.visibility_store_key: _b64(passwords.visibility_store),
        }

        def build(current: Any | None, meta: k8s.V1ObjectMeta) -> k8s.V1Secret:
            if current is not None and (current.type or SECRET_TYPE) != SECRET_TYPE:
                # The type is immutable; replacing would fail with an error that cannot help.
                raise activity_error(
                    f"{where} has type {current.type!r}, not {SECRET_TYPE}; delete it so the "
                    "bootstrap can create it, or switch the environment to "
                    "password_source.kind: existing_kubernetes_secret",
                    ErrorType.CONFIGURATION_MISMATCH,
                )
            data = dict(current.data or {}) if current is not None else {}
            data.update(desired)
            return k8s.V1Secret(metadata=meta, type=SECRET_TYPE, data=data)

        def differences(live: Any) -> list[str]:
            return key_differences(live.data or {}, desired, "Secrets Manager")

        action, drift = ensure_namespaced_object(
            core_api(self._kube, env.kubernetes.context),
            "Secret",
            namespace,
            spec.name,
            build=build,
            differences=differences,
            dry_run=input.dry_run,
        )
        return EnsureDbSecretResult(
            secret=spec.name,
            namespace=namespace,
            keys=keys,
            action=action,
            changed=action != "unchanged",
            summary=describe_write(f"Secret {namespace}/{spec.name}", action, input.dry_run),
            dry_run=input.dry_run,
            drift=drift,
        )


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()
