"""Error types that leave activities, the one way to raise them, and the backend error maps.

Every failure an activity reports is an `ApplicationError` whose `type` is an `ErrorType`
and whose retryability follows from that type alone: `NON_RETRYABLE` below is the only
place that says which types are permanent (an operator must change something first).
The workflows' retry policies (contracts/step_spec.py) only say how often and how long to try;
they never list types, so an activity and the workflow cannot disagree about retrying.

What a library raises is turned into an `ErrorType` by one table per backend, each in its
own module beside this one, each with one function that builds the `ApplicationError`
(with a message that says what the operator should do) from the exception and a text
naming what the activity was doing:

- `aws.py`: botocore `ClientError` codes and HTTP statuses, `BotoCoreError` -> `aws_error`
- `kubernetes.py`: `ApiException` statuses, urllib3 / `OSError` connection errors, kubeconfig
  errors -> `kubernetes_error`
- `mysql.py`: PyMySQL error codes and the `ssl` / `socket` errors PyMySQL wraps, OpenSSL
  verify codes -> `mysql_error`
- `helm.py`: patterns in helm's `Error:` message -> `helm_error`
- `temporal_rpc.py`: `RPCStatusCode` -> permanent or transient -> `temporal_rpc_error`
- `registry.py`: OCI distribution API verdicts (404, 401/403) and unreachable registries
  -> `registry_error`
- `webhook.py`: a webhook's HTTP status, timeouts and connection errors -> `webhook_error`

Each table is data (a dict, or rows tried in order where exception classes nest), so a
wrong row is one line to fix and one parametrized test to fail (tests/adapters/errors/).

A backend answer that is a normal outcome for one caller (a 404 on read, a 409 on create,
a missing database, NOT_FOUND on describe) is handled by that caller before it asks the
table; everything else goes through the table, so the same library error means the same
thing in every activity. This `__init__` imports nothing but temporalio, because test
modules that define workflows import it at their top and the workflow sandbox refuses
boto3 and kubernetes there; the backend modules import their libraries.

A message must be something a human can act on and must never contain a secret: the
backend functions build messages from their own templates and quote library text only
where it cannot echo a secret (PyMySQL's is redacted, a refused Secret is not quoted).
Library exceptions are not chained to the `ApplicationError` (callers raise `from None`),
because Temporal serialises the cause chain into the workflow history.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from temporalio.exceptions import ApplicationError


class ErrorType(StrEnum):
    # configuration: the environment file and the world disagree; an operator must act
    CONFIGURATION_MISMATCH = "ConfigurationMismatch"
    # check_database
    RDS_INSTANCE_NOT_READY = "RdsInstanceNotReady"  # transitional state: retry
    RDS_INSTANCE_UNUSABLE = "RdsInstanceUnusable"  # missing, stopped, failed, ...
    DATABASE_UNREACHABLE = "DatabaseUnreachable"  # retryable: network, DB restarting
    DATABASE_TLS_FAILED = "DatabaseTlsFailed"  # wrong CA or host name
    DATABASE_AUTH_FAILED = "DatabaseAuthFailed"  # wrong user or password
    SCHEMA_OUTDATED = "SchemaOutdated"  # or missing: temporal-sql-tool must run
    # retryable infrastructure trouble: throttling, 5xx, connection errors
    AWS_UNAVAILABLE = "AwsUnavailable"
    KUBERNETES_UNAVAILABLE = "KubernetesUnavailable"
    # passwords and CA bundle sources
    PASSWORD_SOURCE_INVALID = "PasswordSourceInvalid"
    CA_BUNDLE_INVALID = "CaBundleInvalid"
    # Kubernetes
    KUBERNETES_SECRET_INVALID = "KubernetesSecretInvalid"
    KUBERNETES_FORBIDDEN = "KubernetesForbidden"
    # helm
    HELM_BAD_VALUES = "HelmBadValues"
    HELM_TIMEOUT = "HelmTimeout"
    HELM_RELEASE_PENDING = "HelmReleasePending"
    HELM_FAILED = "HelmFailed"
    # Temporal frontend
    FRONTEND_UNHEALTHY = "FrontendUnhealthy"
    NAMESPACE_REGISTRATION_FAILED = "NamespaceRegistrationFailed"
    # upgrades
    UPGRADE_REQUIRED = "UpgradeRequired"  # provision refused: more than one minor to move
    SNAPSHOT_CONFLICT = "SnapshotConflict"  # a snapshot of that name from another upgrade
    SNAPSHOT_FAILED = "SnapshotFailed"  # RDS reports the snapshot failed or gone
    SCHEMA_JOB_RUNNING = "SchemaJobRunning"  # retryable: the Job is still working
    SCHEMA_UPDATE_FAILED = "SchemaUpdateFailed"  # the Job failed, or the database disagrees
    SERVER_VERSION_BEHIND = "ServerVersionBehind"  # retryable: pods still rolling
    SOAK_FAILED = "SoakFailed"  # health left SERVING during the soak
    # images (check_images; the kubelet's verdict in install_chart / update_schema)
    IMAGE_MISSING = "ImageMissing"  # the registry says the tag is not there
    IMAGE_PULL_DENIED = "ImagePullDenied"  # strict: the registry refuses the worker
    REGISTRY_UNREACHABLE = "RegistryUnreachable"  # retryable (strict only; else a warning)
    IMAGE_PULL_BACKOFF = "ImagePullBackOff"  # a pod's image cannot be pulled
    # notifications (webhooks)
    WEBHOOK_URL_MISSING = "WebhookUrlMissing"  # the env var or file the URL comes from
    WEBHOOK_REFUSED = "WebhookRefused"  # 4xx other than 408/429: the same POST fails again
    WEBHOOK_UNAVAILABLE = "WebhookUnavailable"  # retryable: 5xx, 408, 429, timeouts, refused
    # the worker's trusted environments (contracts/trusted_declaration.py)
    UNTRUSTED_DECLARATION = "UntrustedDeclaration"  # the run ends: no retry can fix it


# Classified as permanent: retrying cannot help until an operator changes something.
NON_RETRYABLE: frozenset[ErrorType] = frozenset(
    {
        ErrorType.CONFIGURATION_MISMATCH,
        ErrorType.RDS_INSTANCE_UNUSABLE,
        ErrorType.DATABASE_TLS_FAILED,
        ErrorType.DATABASE_AUTH_FAILED,
        ErrorType.SCHEMA_OUTDATED,
        ErrorType.PASSWORD_SOURCE_INVALID,
        ErrorType.CA_BUNDLE_INVALID,
        ErrorType.KUBERNETES_SECRET_INVALID,
        ErrorType.KUBERNETES_FORBIDDEN,
        ErrorType.HELM_BAD_VALUES,
        ErrorType.HELM_RELEASE_PENDING,
        ErrorType.NAMESPACE_REGISTRATION_FAILED,  # refused: invalid declaration or permissions
        ErrorType.UPGRADE_REQUIRED,
        ErrorType.SNAPSHOT_CONFLICT,
        ErrorType.SNAPSHOT_FAILED,
        ErrorType.SCHEMA_UPDATE_FAILED,
        ErrorType.SOAK_FAILED,  # an operator decides: soak again, go on, or stop
        ErrorType.IMAGE_MISSING,
        ErrorType.IMAGE_PULL_DENIED,
        ErrorType.IMAGE_PULL_BACKOFF,
        ErrorType.WEBHOOK_URL_MISSING,
        ErrorType.WEBHOOK_REFUSED,
        ErrorType.UNTRUSTED_DECLARATION,
    }
)


def activity_error(
    message: str,
    error_type: ErrorType,
    *details: Any,
    next_retry_delay: timedelta | None = None,
) -> ApplicationError:
    """An ApplicationError whose retryability follows from its type.

    `message` must be something a human can act on and must never contain a secret.
    `next_retry_delay` replaces the retry policy's backoff for the next attempt, for an error
    that knows how long the world needs (an RDS instance that is rebooting); it means nothing
    on a non-retryable type.
    """
    return ApplicationError(
        message,
        *details,
        type=error_type.value,
        non_retryable=error_type in NON_RETRYABLE,
        next_retry_delay=next_retry_delay,
    )
