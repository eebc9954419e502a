"""Fixtures shared by every suite: real databases and a real server process per database."""

from __future__ import annotations

import os

import httpx
import pytest
from hypothesis import HealthCheck, settings

# Property tests run on a loaded 2-core CI machine: no per-example deadline, no "too slow" check.
settings.register_profile("sipphones", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sipphones")

from tests.peers.fixtures import *  # noqa: F401,F403  (kamailio, sipp, dnsmasq on loopback)
from tests.pg import fresh_postgres_database
from tests.servers import Admin, Credentials, ServerProcess, get_token, start_server

POSTGRES_URL = os.environ.get("SIPPHONES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SIPPHONES_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _fresh_postgres_database() -> tuple[str, callable]:
    """Create an empty database for this test session; return its URL and a drop function."""
    return fresh_postgres_database(POSTGRES_URL, "sipphones_test")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "sipphones.db"
        yield f"sqlite:///{path}"
        return
    url, drop = _fresh_postgres_database()
    yield url
    drop()


@pytest.fixture(scope="session")
def server(database_url, tmp_path_factory) -> ServerProcess:
    data_dir = tmp_path_factory.mktemp("data")
    # User-managed OAuth's password-less sign-in on (tests/api/test_user_oauth.py; off by default).
    srv = start_server(database_url, data_dir, extra_env={"SIPPHONES_OAUTH_EMULATED_SIGN_IN": "1"})
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def admin(server) -> Admin:
    return Admin(server.database_url, server.data_dir)


@pytest.fixture
def http(server) -> httpx.Client:
    with server.client() as c:
        yield c


@pytest.fixture
def creds(admin) -> Credentials:
    """A fresh account (integration on, rate limits off) with user alice@example.com and an app."""
    return admin.account()


@pytest.fixture
def api(server, creds) -> httpx.Client:
    """An HTTP client already holding a bearer token of ``creds``' app."""
    with server.client() as c:
        c.headers["Authorization"] = f"Bearer {get_token(c, creds)}"
        yield c


def pytest_sessionfinish(session, exitstatus):
    """A suite skipped for a missing tool is a failure (CI installs every tool it needs)."""
    if os.environ.get("SIPPHONES_FAIL_ON_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"FAILED: {skipped} test(s) skipped; with SIPPHONES_FAIL_ON_SKIP=1 nothing may be skipped.", red=True)
        session.exitstatus = 1
