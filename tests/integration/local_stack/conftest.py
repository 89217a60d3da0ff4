"""Fixtures for the local stack's own tests.

They wrap the suite-wide `mariadb` and `local_aws` fixtures (tests/conftest.py) instead of
starting their own: moto's backends are process-global, so a second seeded LocalAws in the
same pytest process would overwrite the RDS instance and S3 object the other tests use.
Each wrapper puts back what a test changed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_stack.aws import LocalAws
from local_stack.mariadb import MariaDB


@pytest.fixture
def db(mariadb: MariaDB) -> Iterator[MariaDB]:
    """The shared TLS MariaDB, back at schema 1.14 / 1.6 after the test."""
    yield mariadb
    mariadb.reset()


@pytest.fixture
def aws(local_aws: LocalAws) -> Iterator[LocalAws]:
    """The shared moto server, re-seeded (RDS available, secret, CA object) after the test."""
    yield local_aws
    local_aws.seed()
