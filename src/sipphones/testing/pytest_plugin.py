"""The pytest plugin (registered by the ``pytest11`` entry point ``sipphones``): an emulator for a
test run and a fresh account for each test.

Fixtures:

``sipphones_server`` (session)
    One ``sipphones serve --emulator`` on a free port, over SQLite in a temporary directory,
    started the first time a test asks for it (never otherwise) and stopped at the end of the
    run. ``--sipphones-seed FILE`` (or the ini option ``sipphones_seed``) seeds it;
    ``--sipphones-url URL`` with ``--sipphones-admin-token`` (or ``SIPPHONES_ADMIN_TOKEN``) uses
    an emulator that is already running instead.
``sipphones`` (function)
    The test's control object (``sipphones.testing.Control``, bound to the test's account):
    ``.account`` (a ``FreshAccount``: ``account_id``, ``client_id``, ``client_secret``,
    ``access_token``, ``headers``, ``client()``), ``.url``, ``.journal``, ``.faults``, ``.clock``,
    ``.reset()``, ``.fresh_account()``, ``.snapshot()``. Afterwards the account is reset away,
    and the fault rules and the clock are put back.
``sipphones_account`` (function)
    ``sipphones.account``.

The marker ``@pytest.mark.sipphones(plan="free", scopes=[...], users=[...], unlimited=True,
sip_phone_integration=False)`` shapes the test's account.
"""

from __future__ import annotations

import os

import pytest

from sipphones.testing.control import Control
from sipphones.testing.server import EmulatorServer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sipphones", "sipphones emulator")
    group.addoption("--sipphones-seed", default=None, help="Seed file (YAML or JSON) of the emulator the tests use.")
    group.addoption("--sipphones-url", default=None,
                    help="Use the emulator running at this URL instead of starting one.")
    group.addoption("--sipphones-admin-token", default=None,
                    help="Operator token of --sipphones-url (default: $SIPPHONES_ADMIN_TOKEN).")
    parser.addini("sipphones_seed", "Seed file of the emulator the tests use (relative to the rootdir).", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sipphones(plan, scopes, users, unlimited, sip_phone_integration): "
                                       "the test's fresh sipphones account")


class _External:
    """An emulator that runs already (``--sipphones-url``)."""

    def __init__(self, url: str, admin_token: str) -> None:
        self.url = url.rstrip("/")
        self.admin_token = admin_token
        self.control = Control(self.url, admin_token)
        self.control.health()  # fails here, once, if the URL or token is wrong

    def stop(self) -> None:
        self.control.close()


@pytest.fixture(scope="session")
def sipphones_server(request: pytest.FixtureRequest):
    config = request.config
    url = config.getoption("--sipphones-url")
    if url:
        token = config.getoption("--sipphones-admin-token") or os.environ.get("SIPPHONES_ADMIN_TOKEN", "")
        if not token:
            raise pytest.UsageError("--sipphones-url needs --sipphones-admin-token or SIPPHONES_ADMIN_TOKEN")
        server = _External(url, token)
    else:
        seed = config.getoption("--sipphones-seed") or config.getini("sipphones_seed") or None
        if seed and not os.path.isabs(seed):
            seed = str(config.rootpath / seed)
        server = EmulatorServer(seed=seed).start()
    try:
        yield server
    finally:
        server.stop()


_ACCOUNT_OPTIONS = {"plan", "scopes", "users", "unlimited", "sip_phone_integration"}


@pytest.fixture
def sipphones(sipphones_server, request: pytest.FixtureRequest):
    marker = request.node.get_closest_marker("sipphones")
    options = dict(marker.kwargs) if marker else {}
    unknown = set(options) - _ACCOUNT_OPTIONS
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.sipphones does not take {sorted(unknown)[0]!r} "
                                f"(it takes {', '.join(sorted(_ACCOUNT_OPTIONS))})")
    control: Control = sipphones_server.control
    account = control.fresh_account(**options)
    try:
        yield control.bound(account)
    finally:
        # What this test changed: its account, its fault rules and the clock.
        try:
            control.faults.clear()
        except Exception:  # noqa: BLE001 - an emulator without fault rules: nothing to clear
            pass
        control.clock.reset()
        control.reset(account.account_id)


@pytest.fixture
def sipphones_account(sipphones):
    return sipphones.account
