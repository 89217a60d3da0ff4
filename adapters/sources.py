"""Reading what the environment points at: the CA bundle and the DB passwords.

Shared by the preflight (which must connect with exactly what the cluster will get) and the
steps that hand the same material to Kubernetes. Password values live only in `DbPasswords`,
whose repr hides them, and never leave an activity.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from kubernetes.client.exceptions import ApiException

from adapters.clients import AwsClients, KubeClients
from adapters.errors import ErrorType, activity_error
from adapters.errors.aws import AWS_ERRORS, aws_error
from adapters.errors.kubernetes import KUBERNETES_ERRORS, kubernetes_error
from declared_state.models import (
    AwsSecretsManagerPasswords,
    CaBundleFromFile,
    CaBundleFromS3,
    CaBundleSource,
    Environment,
)


def describe_source(source: CaBundleSource) -> str:
    if isinstance(source, CaBundleFromFile):
        return f"file {source.path}"
    return f"s3://{source.bucket}/{source.key}"


def fetch_ca_bundle(source: CaBundleSource, aws: AwsClients) -> bytes:
    """The bundle's bytes from a local file (relative to the project root) or an S3 object."""
    if isinstance(source, CaBundleFromFile):
        path = Path(source.path)  # absolute: resolved by the loader
        try:
            return path.read_bytes()
        except OSError as exc:
            raise activity_error(
                f"CA bundle {describe_source(source)}: cannot read {path}: {exc.strerror}",
                ErrorType.CA_BUNDLE_INVALID,
            ) from None
    assert isinstance(source, CaBundleFromS3)
    try:
        body = aws.client("s3", source.region).get_object(Bucket=source.bucket, Key=source.key)[
            "Body"
        ]
        return bytes(body.read())
    except AWS_ERRORS as exc:
        raise aws_error(
            f"CA bundle {describe_source(source)}", exc, ErrorType.CA_BUNDLE_INVALID
        ) from None


def parse_certificates(bundle: bytes, origin: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle; a bundle with none, or with garbage, is refused."""
    try:
        certificates = x509.load_pem_x509_certificates(bundle)
    except ValueError as exc:
        raise activity_error(
            f"CA bundle {origin} is not one or more PEM certificates: {exc}",
            ErrorType.CA_BUNDLE_INVALID,
        ) from None
    return certificates


@dataclass(frozen=True)
class DbPasswords:
    """The two store passwords. Never logged, returned or put in an exception."""

    default_store: str = field(repr=False)
    visibility_store: str = field(repr=False)


def read_db_passwords(env: Environment, aws: AwsClients, kube: KubeClients) -> DbPasswords:
    """From Secrets Manager, or from the existing Kubernetes Secret when it is managed elsewhere."""
    source = env.database.password_source
    if isinstance(source, AwsSecretsManagerPasswords):
        return _passwords_from_secrets_manager(source, env, aws)
    return _passwords_from_kubernetes_secret(env, kube)


def _passwords_from_secrets_manager(
    source: AwsSecretsManagerPasswords, env: Environment, aws: AwsClients
) -> DbPasswords:
    what = f"Secrets Manager secret {source.secret_id!r}"
    try:
        response = aws.client("secretsmanager", source.region or env.rds.region).get_secret_value(
            SecretId=source.secret_id
        )
    except AWS_ERRORS as exc:
        raise aws_error(what, exc, ErrorType.PASSWORD_SOURCE_INVALID) from None
    try:
        document = json.loads(response.get("SecretString") or "")
    except json.JSONDecodeError:
        raise activity_error(
            f"{what} is not a JSON document", ErrorType.PASSWORD_SOURCE_INVALID
        ) from None
    keys = (source.default_store_key, source.visibility_store_key)
    # A number or a nested object is no password: refused like a missing key (never quoted).
    missing = [
        k
        for k in keys
        if not isinstance(document, dict) or not isinstance(document.get(k), str) or not document[k]
    ]
    if missing:
        raise activity_error(
            f"{what} has no non-empty string key(s) {', '.join(missing)}",
            ErrorType.PASSWORD_SOURCE_INVALID,
        )
    return DbPasswords(document[keys[0]], document[keys[1]])


def _passwords_from_kubernetes_secret(env: Environment, kube: KubeClients) -> DbPasswords:
    secret_spec = env.database.kubernetes_secret
    where = f"Kubernetes Secret {env.kubernetes.namespace}/{secret_spec.name}"
    try:
        secret = kube.core_v1(env.kubernetes.context).read_namespaced_secret(
            secret_spec.name, env.kubernetes.namespace
        )
    except KUBERNETES_ERRORS as exc:
        if isinstance(exc, ApiException) and exc.status == 404:
            raise activity_error(
                f"{where} does not exist; the environment says it is managed elsewhere, so create it "
                f"with keys {secret_spec.default_store_key!r} and {secret_spec.visibility_store_key!r}",
                ErrorType.KUBERNETES_SECRET_INVALID,
            ) from None
        raise kubernetes_error(f"reading {where}", exc) from None
    data = secret.data or {}
    values = []
    for key in (secret_spec.default_store_key, secret_spec.visibility_store_key):
        try:
            values.append(base64.b64decode(data[key], validate=True).decode())
        except (KeyError, binascii.Error, UnicodeDecodeError):
            raise activity_error(
                f"{where} has no usable key {key!r}", ErrorType.KUBERNETES_SECRET_INVALID
            ) from None
    keys = (secret_spec.default_store_key, secret_spec.visibility_store_key)
    empty = [key for key, value in zip(keys, values, strict=True) if not value]
    if empty:
        raise activity_error(
            f"{where} has an empty value under key(s) {', '.join(map(repr, empty))}; "
            "the environment says it is managed elsewhere, so fill it there",
            ErrorType.KUBERNETES_SECRET_INVALID,
        )
    return DbPasswords(values[0], values[1])
