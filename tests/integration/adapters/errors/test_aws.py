"""The AWS error table, row by row.

Codes AWS only sends under load (throttling, 5xx) are built as botocore builds them; the
refusals and the missing endpoint come from moto and a closed port through real clients.
The expectations are written out here, not read from the table, so a wrong row fails.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from adapters.errors import ErrorType
from adapters.errors.aws import AWS_CODES, AWS_ERRORS, AWS_STATUSES, aws_error, aws_error_type
from local_stack.aws import LocalAws
from local_stack.processes import LOOPBACK, free_port

UNAVAILABLE = ErrorType.AWS_UNAVAILABLE
REFUSED = ErrorType.CA_BUNDLE_INVALID  # stands for whatever the caller passes as `refused`

# code -> (type, retryable)
CODES = {
    "Throttling": (UNAVAILABLE, True),
    "ThrottlingException": (UNAVAILABLE, True),
    "RequestLimitExceeded": (UNAVAILABLE, True),
    "TooManyRequestsException": (UNAVAILABLE, True),
    "SlowDown": (UNAVAILABLE, True),
    "InternalError": (UNAVAILABLE, True),
    "ServiceUnavailable": (UNAVAILABLE, True),
    "RequestTimeout": (UNAVAILABLE, True),
    "DBInstanceNotFound": (ErrorType.RDS_INSTANCE_UNUSABLE, False),
    "DBInstanceNotFoundFault": (ErrorType.RDS_INSTANCE_UNUSABLE, False),
}
# HTTP status of a ClientError whose code is not in the table -> (type, retryable)
STATUSES = {
    429: (UNAVAILABLE, True),
    500: (UNAVAILABLE, True),
    502: (UNAVAILABLE, True),
    503: (UNAVAILABLE, True),
    504: (UNAVAILABLE, True),
}
# Neither: AWS refused the request, the caller's type.
REFUSALS = [("AccessDenied", 403), ("NoSuchKey", 404), ("ValidationException", 400)]


def client_error(code: str, status: int = 400) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")  # type: ignore[arg-type]


def test_every_row_is_expected_here() -> None:
    assert set(AWS_CODES) == set(CODES)
    assert set(AWS_STATUSES) == set(STATUSES)


@pytest.mark.parametrize("code", CODES)
def test_code_maps_to_its_type(code: str) -> None:
    error_type, retryable = CODES[code]
    # A 200 status: S3 can send an error inside a successful answer.
    error = aws_error("reading s3://b/k", client_error(code, 200), REFUSED)

    assert (error.type, error.non_retryable) == (error_type, not retryable)
    assert error.message.startswith("reading s3://b/k: ")
    assert f"{code} happened" in error.message


@pytest.mark.parametrize("status", STATUSES)
def test_status_maps_to_its_type_whatever_the_code(status: int) -> None:
    error_type, retryable = STATUSES[status]
    error = aws_error("reading x", client_error("InternalServiceError", status), REFUSED)

    assert (error.type, error.non_retryable) == (error_type, not retryable)
    assert "AWS did not answer" in error.message


@pytest.mark.parametrize(("code", "status"), REFUSALS)
def test_other_refusals_are_the_callers_type(code: str, status: int) -> None:
    error = aws_error("reading x", client_error(code, status), REFUSED)

    assert (error.type, error.non_retryable) == (REFUSED, True)
    assert (
        error.message
        == f"reading x: {code}: An error occurred ({code}) when calling the GetObject operation: {code} happened"
    )
    assert aws_error_type(client_error(code, status), ErrorType.CONFIGURATION_MISMATCH) is (
        ErrorType.CONFIGURATION_MISMATCH
    )


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="https://s3.example"),
        ReadTimeoutError(endpoint_url="https://s3.example"),
        ResponseStreamingError(error="connection reset"),
        NoCredentialsError(),
    ],
    ids=type,
)
def test_botocore_errors_are_retryable_unavailable(exc: BotoCoreError) -> None:
    error = aws_error("reading x", exc, REFUSED)

    assert (error.type, error.non_retryable) == (UNAVAILABLE, False)
    assert f"AWS did not answer ({type(exc).__name__}: " in error.message


def test_real_refusal_and_missing_instance(local_aws: LocalAws) -> None:
    with pytest.raises(AWS_ERRORS) as no_key:
        local_aws.client("s3").get_object(Bucket="no-such-bucket-here", Key="k")
    with pytest.raises(AWS_ERRORS) as no_instance:
        local_aws.client("rds").describe_db_instances(DBInstanceIdentifier="no-such-instance")

    assert aws_error("reading x", no_key.value, REFUSED).type == REFUSED
    assert aws_error("describing y", no_instance.value, REFUSED).type == (
        ErrorType.RDS_INSTANCE_UNUSABLE
    )


def test_real_unreachable_endpoint_is_retryable() -> None:
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=f"http://{LOOPBACK}:{free_port()}",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    with pytest.raises(AWS_ERRORS) as raised:
        s3.get_object(Bucket="b", Key="k")

    error = aws_error("reading s3://b/k", raised.value, REFUSED)

    assert isinstance(raised.value, EndpointConnectionError)
    assert (error.type, error.non_retryable) == (UNAVAILABLE, False)
