"""Error types that leave activities, and the one way to raise them.

The workflow's retry policies name these types in `non_retryable_error_types`, so an
activity's own classification (retryable or not) and the workflow's agree by construction.
"""

from __future__ import annotations

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
    }
)


def activity_error(message: str, error_type: ErrorType, *details: Any) -> ApplicationError:
    """An ApplicationError whose retryability follows from its type.

    `message` must be something a human can act on and must never contain a secret.
    """
    return ApplicationError(
        message, *details, type=error_type.value, non_retryable=error_type in NON_RETRYABLE
    )
