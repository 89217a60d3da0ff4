"""AWS (botocore) errors -> ErrorType: one table by error code, one by HTTP status.

botocore fails in two ways, both caught as `AWS_ERRORS`:

- `ClientError`: AWS answered and refused (`response["Error"]["Code"]`, e.g. AccessDenied,
  NoSuchKey, ResourceNotFoundException, Throttling; the HTTP status in
  `response["ResponseMetadata"]["HTTPStatusCode"]`). botocore has already retried throttling
  and 5xx answers by the time it raises one.
- `BotoCoreError`: no usable answer (EndpointConnectionError, ConnectTimeoutError,
  ReadTimeoutError, ResponseStreamingError while reading an S3 body, but also
  NoCredentialsError, which IMDS or an IRSA token may answer on the next attempt). All of
  them are retryable as AWS_UNAVAILABLE.

A `ClientError` is looked up by its code in `AWS_CODES`, then by its HTTP status in
`AWS_STATUSES` (a 5xx is the service's own trouble whatever the code says); anything else
means AWS understood the request and refused it, and becomes the caller's `refused` type
(CaBundleInvalid for the S3 bundle, PasswordSourceInvalid for Secrets Manager, ...): the
operator must fix the environment file or IAM. Codes are matched exactly: S3 can send an
InternalError inside a 200 answer, so the code table lists transient codes even where
the status table would cover their usual status.
"""

from __future__ import annotations

from typing import NamedTuple

from botocore.exceptions import BotoCoreError, ClientError
from temporalio.exceptions import ApplicationError

from adapters.errors import ErrorType, activity_error

AWS_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)


class AwsRow(NamedTuple):
    error_type: ErrorType | None
    """None: the caller's `refused` type."""
    message: str
    """`str.format` template: {what}, {code} (the error code, else the class name), {name}
    (the class name) and {exc}."""


_UNAVAILABLE = AwsRow(ErrorType.AWS_UNAVAILABLE, "{what}: AWS did not answer ({name}: {exc})")
_REFUSED = AwsRow(None, "{what}: {code}: {exc}")

AWS_CODES: dict[str, AwsRow] = {
    # throttled (botocore's retries ran out): let the retry policy try later
    "Throttling": _UNAVAILABLE,
    "ThrottlingException": _UNAVAILABLE,
    "RequestLimitExceeded": _UNAVAILABLE,
    "TooManyRequestsException": _UNAVAILABLE,
    "SlowDown": _UNAVAILABLE,  # S3
    # the service's own trouble
    "InternalError": _UNAVAILABLE,
    "ServiceUnavailable": _UNAVAILABLE,
    "RequestTimeout": _UNAVAILABLE,  # S3: the connection idled past its timeout
    # RDS: describe_db_instances of an identifier that does not exist
    "DBInstanceNotFound": AwsRow(ErrorType.RDS_INSTANCE_UNUSABLE, "{what}: {code}: {exc}"),
    "DBInstanceNotFoundFault": AwsRow(ErrorType.RDS_INSTANCE_UNUSABLE, "{what}: {code}: {exc}"),
}

AWS_STATUSES: dict[int, AwsRow] = {
    429: _UNAVAILABLE,
    500: _UNAVAILABLE,
    502: _UNAVAILABLE,
    503: _UNAVAILABLE,
    504: _UNAVAILABLE,
}


def _row(exc: Exception) -> tuple[AwsRow, str]:
    """The row for `exc` and the code a message names."""
    if not isinstance(exc, ClientError):
        return _UNAVAILABLE, type(exc).__name__
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    row = AWS_CODES.get(code) or AWS_STATUSES.get(status or 0) or _REFUSED
    return row, code or type(exc).__name__


def aws_error_type(exc: Exception, refused: ErrorType) -> ErrorType:
    """The ErrorType of one of `AWS_ERRORS`; `refused` when AWS refused the request."""
    return _row(exc)[0].error_type or refused


def aws_error(what: str, exc: Exception, refused: ErrorType) -> ApplicationError:
    """The ApplicationError for one of `AWS_ERRORS` raised while doing `what`.

    `refused` is what a refusal means for this caller (the source it reads is invalid, or
    the environment does not match AWS); throttling, 5xx and no answer are AWS_UNAVAILABLE.
    """
    row, code = _row(exc)
    message = row.message.format(what=what, code=code, name=type(exc).__name__, exc=exc)
    return activity_error(message, row.error_type or refused)
