"""Fixtures of the fleet tests: a fresh PostgreSQL database on the shared server (per test), a
private PostgreSQL cluster the test may stop, and monitors killed at the end."""

from __future__ import annotations

import pytest

from tests.conftest import POSTGRES_URL
from tests.fleet.private_pg import PrivatePostgres
from tests.monitor.conftest import monitors, store  # noqa: F401  (the fixtures)
from tests.pg import fresh_postgres_database


@pytest.fixture
def pg_url():
    url, drop = fresh_postgres_database(POSTGRES_URL, "sipphones_fleet")
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def private_pg():
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.close()
