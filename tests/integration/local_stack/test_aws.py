from __future__ import annotations

import json

import botocore.exceptions
import pytest

from local_stack.aws import CA_BUCKET, CA_KEY, RDS_INSTANCE_ID, SECRET_ID, LocalAws
from local_stack.mariadb import MariaDB


def _describe(aws: LocalAws) -> dict:
    rds = aws.client("rds")
    return rds.describe_db_instances(DBInstanceIdentifier=RDS_INSTANCE_ID)["DBInstances"][0]


def test_rds_endpoint_is_the_local_mariadb(aws: LocalAws, mariadb: MariaDB) -> None:
    inst = _describe(aws)
    assert inst["Endpoint"] == {"Address": mariadb.host, "Port": mariadb.port}
    assert inst["Engine"] == "mysql"
    assert inst["EngineVersion"].startswith("8.0.")
    assert inst["DBInstanceStatus"] == "available"
    assert aws.endpoint_url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("status", ["creating", "modifying", "stopped", "deleting"])
def test_set_rds_status(aws: LocalAws, status: str) -> None:
    aws.set_rds_status(status)
    assert _describe(aws)["DBInstanceStatus"] == status


def test_delete_rds_instance_then_reseed(aws: LocalAws, mariadb: MariaDB) -> None:
    aws.delete_rds_instance()
    with pytest.raises(botocore.exceptions.ClientError, match="DBInstanceNotFound"):
        _describe(aws)
    assert aws.rds_status() is None
    aws.seed()
    assert _describe(aws)["Endpoint"]["Port"] == mariadb.port


def test_secret_holds_the_db_password(aws: LocalAws, mariadb: MariaDB) -> None:
    value = aws.client("secretsmanager").get_secret_value(SecretId=SECRET_ID)["SecretString"]
    secret = json.loads(value)
    assert secret["password"] == mariadb.password
    assert secret["visibility_password"] == mariadb.password
    # The password really opens the database.
    mariadb.connect().close()


def test_ca_bundle_in_s3(aws: LocalAws, mariadb: MariaDB) -> None:
    body = aws.client("s3").get_object(Bucket=CA_BUCKET, Key=CA_KEY)["Body"].read()
    assert body == mariadb.ca_path.read_bytes()


def test_env_sends_default_boto3_clients_to_moto(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    for key, value in aws.env.items():
        monkeypatch.setenv(key, value)
    assert set(aws.env) >= {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    }
    inst = boto3.client("rds").describe_db_instances()["DBInstances"]
    assert [i["DBInstanceIdentifier"] for i in inst] == [RDS_INSTANCE_ID]
