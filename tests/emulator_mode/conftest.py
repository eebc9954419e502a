"""Emulator servers for the emulator-mode tests: ``sipphones serve --emulator --seed`` on a free
port, over SQLite and over a PostgreSQL database of its own (a reset empties the store)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sipphones.testing import EmulatorServer
from tests.conftest import POSTGRES_URL
from tests.pg import fresh_postgres_database

SEED = Path(__file__).with_name("seed.yaml")
ACME = "AcmeAccount0000000001"
ACME_CLIENT = ("acmeClientId00000001", "acme-secret-for-tests-only")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def emu(request, tmp_path_factory):
    drop = None
    url = ""
    if request.param == "postgres":
        url, drop = fresh_postgres_database(POSTGRES_URL, "sipphones_emu")
    server = EmulatorServer(seed=SEED, database_url=url, data_dir=tmp_path_factory.mktemp("emu")).start()
    try:
        yield server
    finally:
        server.stop()
        if drop is not None:
            drop()


@pytest.fixture
def control(emu):
    """The control plane, with everything back to the seed after the test."""
    yield emu.control
    emu.control.reset()


def token(base_url: str, client_id: str, secret: str, account_id: str) -> str:
    r = httpx.post(f"{base_url}/oauth/token", params={"grant_type": "account_credentials", "account_id": account_id},
                   auth=(client_id, secret), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def acme_headers(base_url: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(base_url, *ACME_CLIENT, ACME)}


PHONE = {"user_name": "2002", "authorization_name": "2002", "password": "bob-sip-secret", "domain": "sip.example.com",
         "register_server": "192.0.2.20", "proxy_server": "192.0.2.20", "transport_protocol": "TLS",
         "voice_mail": "4001"}
