"""Fixtures for the local stack's own tests, built from local_stack's reusable helpers.

Names differ from the suite-wide fixtures in tests/conftest.py so neither shadows the other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_stack.aws import DatabaseTarget, LocalAws
from local_stack.mariadb import MariaDB, start_mariadb


@pytest.fixture(scope="package")
def ls_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    # No skip when MariaDB is missing: start_mariadb raises MariaDBNotInstalled with the fix.
    db = start_mariadb(tmp_path_factory.mktemp("ls-mariadb"))
    try:
        yield db
    finally:
        db.stop()


@pytest.fixture
def db(ls_db: MariaDB) -> Iterator[MariaDB]:
    """The shared server, put back to 1.14 / 1.6 after each test that changes it."""
    yield ls_db
    ls_db.reset()


@pytest.fixture(scope="package")
def ls_aws(ls_db: MariaDB) -> Iterator[LocalAws]:
    aws = LocalAws(DatabaseTarget(ls_db.host, ls_db.port, ls_db.password, ls_db.ca_path))
    aws.start()
    try:
        yield aws
    finally:
        aws.stop()


@pytest.fixture
def aws(ls_aws: LocalAws) -> Iterator[LocalAws]:
    """The shared moto server, re-seeded after each test that changes it."""
    yield ls_aws
    ls_aws.seed()
