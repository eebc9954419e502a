"""One real server on SQLite for the contract suite, with an unlimited account and seeded users.

The users include the e-mail addresses that appear as examples in Zoom's extract and in the
service's document (``jchill@example.com``): schemathesis sends those examples, so generated
creates reach the success path (201) and the duplicate path (300) instead of only 404/1001.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sipphones.accounts.models import Plan
from tests.servers import Admin, Credentials, ServerProcess, get_token, start_sqlite_server

SEEDED_USERS = ("jchill@example.com", "user@example.com", "alice@example.com", "bob@example.com")


@dataclass
class ContractTarget:
    server: ServerProcess
    creds: Credentials
    token: str


@pytest.fixture(scope="session")
def contract_server(tmp_path_factory) -> ServerProcess:
    data_dir = tmp_path_factory.mktemp("contract")
    srv = start_sqlite_server(data_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def contract_target(contract_server) -> ContractTarget:
    admin = Admin(contract_server.database_url, contract_server.data_dir)
    creds = admin.account(plan=Plan.BUSINESS, unlimited=True, users=SEEDED_USERS, name="Contract account")
    with contract_server.client() as c:
        token = get_token(c, creds)
    return ContractTarget(contract_server, creds, token)
