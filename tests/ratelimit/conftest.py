"""Servers and Redis for the rate-limit suite.

Rate limiting does not depend on the database, so these servers run on SQLite only. Redis DB 15
(SIPPHONES_TEST_REDIS_URL) is flushed once per session before anything uses it; every test uses
fresh account ids, so counters never collide.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
import redis

from sipphones.accounts.models import Plan
from tests.conftest import REDIS_URL
from tests.servers import Admin, Credentials, ServerProcess, get_token, start_sqlite_server


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def rl_server(tmp_path_factory) -> ServerProcess:
    """One server, counters in memory (the default)."""
    data_dir = tmp_path_factory.mktemp("ratelimit")
    srv = start_sqlite_server(data_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def rl_admin(rl_server) -> Admin:
    return Admin(rl_server.database_url, rl_server.data_dir)


@dataclass
class Tenant:
    """A limited account on a server, with an authorised client."""

    creds: Credentials
    client: httpx.Client


@pytest.fixture
def tenant_factory(rl_server, rl_admin):
    clients: list[httpx.Client] = []

    def make(plan: Plan = Plan.FREE, *, unlimited: bool = False,
             users: tuple[str, ...] = ("alice@example.com",)) -> Tenant:
        creds = rl_admin.account(plan=plan, unlimited=unlimited, users=users, name=f"{plan} account")
        client = rl_server.client()
        clients.append(client)
        client.headers["Authorization"] = f"Bearer {get_token(client, creds)}"
        return Tenant(creds, client)

    yield make
    for c in clients:
        c.close()
