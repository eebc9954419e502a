"""Fixtures of the client and ``sipphones phones`` tests: one real ``sipphones serve`` on SQLite
for the session (the client does not care which store the service uses), accounts made in its
store, and the client's environment."""

from __future__ import annotations

from typing import Iterator

import pytest

from sipphones.accounts.models import Plan
from tests.servers import Admin, Credentials, ServerProcess, start_sqlite_server

EMAIL = "alice@example.com"


def legacy_fields(email: str = EMAIL, **changes) -> dict:
    """A valid legacy create body (the seed's eight required fields and a second server set)."""
    fields = {"user_email": email, "user_name": "1001", "authorization_name": "alice", "password": "s3cret-pw",
              "domain": "sip.example.com", "register_server": "10.0.0.1:5060", "proxy_server": "10.0.0.1:5060",
              "transport_protocol": "UDP", "register_server2": "10.0.0.2", "proxy_server2": "10.0.0.2",
              "transport_protocol2": "TCP", "registration_expire_time": 30, "voice_mail": "4000"}
    fields.update(changes)
    return fields


@pytest.fixture(scope="session")
def api_server(tmp_path_factory) -> Iterator[ServerProcess]:
    srv = start_sqlite_server(tmp_path_factory.mktemp("client-server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def api_admin(api_server: ServerProcess) -> Admin:
    return Admin(api_server.database_url, api_server.data_dir)


@pytest.fixture
def account(api_admin: Admin) -> Credentials:
    """A fresh pro account without rate limits, with users alice@ and bob@example.com and an app."""
    return api_admin.account(users=(EMAIL, "bob@example.com"))


@pytest.fixture
def free_account(api_admin: Admin) -> Credentials:
    """A fresh account on the free plan, rate limited: 4 creates a second."""
    return api_admin.account(plan=Plan.FREE, unlimited=False, users=(EMAIL,))


@pytest.fixture
def base_url(api_server: ServerProcess) -> str:
    return api_server.base_url + "/v2"


@pytest.fixture
def zoom_env(monkeypatch, account: Credentials, base_url: str) -> Credentials:
    """The ``ZOOM_*`` variables of ``account``, as Zoom's samples set them."""
    monkeypatch.setenv("ZOOM_ACCOUNT_ID", account.account_id)
    monkeypatch.setenv("ZOOM_CLIENT_ID", account.client_id)
    monkeypatch.setenv("ZOOM_CLIENT_SECRET", account.client_secret)
    monkeypatch.setenv("ZOOM_API_BASE_URL", base_url)
    return account
