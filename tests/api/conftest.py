"""Fixtures of the API contract tests.

Every test here talks HTTP to the real ``sipphones serve`` process of ``tests/conftest.py`` (one per
database: SQLite and PostgreSQL), so each test runs once per database.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import httpx
import pytest

from tests.api.zoom import plain_client, token_client
from tests.servers import Admin, Credentials, ServerProcess, start_server


@pytest.fixture
def http(server) -> Iterator[httpx.Client]:
    """As tests/conftest.py's ``http``, without loading the CA bundle for each test (plain HTTP)."""
    with plain_client(server) as c:
        yield c


@pytest.fixture
def api(server, creds) -> Iterator[httpx.Client]:
    """As tests/conftest.py's ``api``: a client holding a bearer token of ``creds``' app."""
    with token_client(server, creds) as c:
        yield c


@pytest.fixture
def clients(server) -> Iterator[Callable[[Credentials], httpx.Client]]:
    """Open a bearer-token client for any credentials; all are closed at the end of the test."""
    with contextlib.ExitStack() as stack:
        yield lambda creds: stack.enter_context(token_client(server, creds))


@pytest.fixture
def other(admin: Admin, clients) -> tuple[Credentials, httpx.Client]:
    """A second, unrelated account (with its own user bob@example.com) and a client for it."""
    creds = admin.account(users=("bob@example.com",), name="Other account")
    return creds, clients(creds)


@pytest.fixture(scope="session")
def short_ttl_server(server: ServerProcess) -> Iterator[ServerProcess]:
    """A second server on the same database and key: access tokens live 3 s, page tokens 2 s
    (access-token times are whole seconds, so 3 s leaves at least 2 s to use a fresh token)."""
    srv = start_server(server.database_url, server.data_dir,
                       extra_env={"SIPPHONES_TOKEN_TTL": "3", "SIPPHONES_PAGE_TOKEN_TTL": "2"})
    yield srv
    srv.stop()


