"""Servers and Redis for the rate-limit suite.

Rate limiting does not depend on the database, so these servers run on SQLite only. Redis DB 15
(SIPPHONES_TEST_REDIS_URL) is flushed once per session before anything uses it; every test uses
fresh account ids, so counters never collide.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from sipphones.accounts.models import Plan
from tests.conftest import REDIS_URL
from tests.servers import Admin, Credentials, ServerProcess, free_port, get_token, start_sqlite_server


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()
    return REDIS_URL


@dataclass
class OwnRedis:
    """A redis-server of this test alone (on its own port), which the test may freeze with SIGSTOP
    without touching the machine's shared Redis that other tests use."""

    url: str
    proc: subprocess.Popen

    def stop(self) -> None:   # frozen: the socket accepts, nothing answers (a hung Redis)
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)


@pytest.fixture
def own_redis(tmp_path: Path) -> OwnRedis:
    port = free_port()
    with open(tmp_path / "redis.log", "wb") as log:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path)], stdout=log, stderr=subprocess.STDOUT)
    server = OwnRedis(f"redis://127.0.0.1:{port}/0", proc)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with server.client() as c:
                    if c.ping():
                        break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {(tmp_path / 'redis.log').read_text()}")
                time.sleep(0.05)
        yield server
    finally:
        server.resume()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


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
