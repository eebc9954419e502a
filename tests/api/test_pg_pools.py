"""PostgreSQL connection pools (issue 15, point 1): a server process keeps the connections its
pools opened, never one per request, and opens no more than its settings allow
(``SIPPHONES_DATABASE_POOL_SIZE``, ``SIPPHONES_DATABASE_ADMIN_POOL_SIZE``)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from sipphones.config import MAX_POOL_SIZE, load_settings
from sipphones.storage.database import migrate
from tests.api.zoom import token_client
from tests.conftest import POSTGRES_URL
from tests.pg import fresh_postgres_database
from tests.servers import Admin, get_token, start_server

HOT, ADMIN = 3, 2


def test_pool_sizes_come_from_the_settings_and_are_bounded(monkeypatch):
    assert load_settings().postgres_tuning() == (10, 4, 64)
    monkeypatch.setenv("SIPPHONES_DATABASE_POOL_SIZE", "24")
    monkeypatch.setenv("SIPPHONES_DATABASE_ADMIN_POOL_SIZE", "6")
    assert load_settings().postgres_tuning() == (24, 6, 64)
    for name in ("SIPPHONES_DATABASE_POOL_SIZE", "SIPPHONES_DATABASE_ADMIN_POOL_SIZE"):
        for bad in ("0", str(MAX_POOL_SIZE + 1), "many"):
            monkeypatch.setenv(name, bad)
            with pytest.raises(ValueError, match=name):
                load_settings()
        monkeypatch.setenv(name, "5")


def _plain(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def pg_server(tmp_path):
    url, drop = fresh_postgres_database(POSTGRES_URL, "sipphones_pools")
    migrate(url)
    srv = start_server(url, tmp_path, extra_env={"SIPPHONES_DATABASE_POOL_SIZE": str(HOT),
                                                 "SIPPHONES_DATABASE_ADMIN_POOL_SIZE": str(ADMIN)})
    try:
        yield srv, Admin(url, tmp_path)
    finally:
        srv.stop()
        drop()


def test_a_loaded_server_holds_its_postgresql_connections(pg_server):
    """24 clients at once on both pools' paths (user creates and pages: the hot path; searches
    and token grants: SQLAlchemy): at most HOT + ADMIN backends serve the database at any time, and
    once the pools are warm no new backend is started (PostgreSQL's own session count)."""
    import psycopg

    srv, admin = pg_server
    creds = admin.account(users=("alice@example.com",))
    n = iter(range(10**6))

    def one(kind: str, c: httpx.Client) -> int:
        if kind == "user":
            return c.post("/v2/users", json={"action": "create", "user_info": {"email": f"u{next(n)}@example.com"}}
                          ).status_code
        if kind == "users":
            return c.get("/v2/users", params={"page_size": 5}).status_code
        if kind == "search":
            return c.get("/v2/sip_phones", params={"search_key": "alice@example.com"}).status_code
        return 200 if get_token(c, creds) else 0

    def load(rounds: int) -> list[int]:
        kinds = ("user", "users", "search", "token") * rounds
        with token_client(srv, creds) as c, ThreadPoolExecutor(24) as pool:
            return list(pool.map(lambda k: one(k, c), kinds))

    with psycopg.connect(_plain(srv.database_url), autocommit=True) as watch:
        def backends() -> int:
            return watch.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND pid <> pg_backend_pid()").fetchone()[0]

        def sessions() -> int:
            watch.execute("SELECT pg_stat_clear_snapshot()")
            return watch.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
                                 ).fetchone()[0]

        assert set(load(15)) == {200, 201}            # warm: the pools open what they need
        time.sleep(1.5)                               # statistics reach pg_stat_database within a second
        before = sessions()
        most = 0
        with ThreadPoolExecutor(1) as side:
            loaded = side.submit(load, 60)
            while not loaded.done():
                most = max(most, backends())
                time.sleep(0.02)
            statuses = loaded.result()
        time.sleep(1.5)
        started = sessions() - before
    assert set(statuses) == {200, 201}
    assert most <= HOT + ADMIN, most
    assert started <= 1, f"{started} new PostgreSQL backends under load (connections opened per request)"
