"""A real sipphones store (SQLite file + data dir) seeded in-process, for CLI and monitor tests.

The commands under test run as subprocesses against the same ``SIPPHONES_DATABASE_URL`` /
``SIPPHONES_DATA_DIR``; this helper writes accounts, users and phones through the repository
(as the API would) and reads back ``phone_status`` rows.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sipphones.accounts.service import AccountService
from sipphones.cli.runtime import open_store
from sipphones.config import load_settings
from sipphones.ids import new_id
from sipphones.phones.models import ServerSet, SipPhone, Transport
from sipphones.repository import PhoneStatus

CLI = [sys.executable, "-m", "sipphones"]


@dataclass
class Server:
    """One server set of a phone: ``register_server`` text and transport (``proxy`` optional)."""

    register: str
    transport: str = "UDP"
    proxy: str = ""


def _server_sets(servers: list[Server]) -> tuple[ServerSet, ServerSet, ServerSet]:
    sets = [ServerSet(s.register, s.proxy, Transport(s.transport)) for s in servers]
    return tuple(sets + [ServerSet()] * (3 - len(sets)))


@dataclass
class PhoneStore:
    root: Path
    _emails: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = f"sqlite:///{self.root / 'sipphones.db'}"
        self.settings = load_settings(database_url=self.database_url, data_dir=str(self.data_dir))

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(SIPPHONES_DATABASE_URL=self.database_url, SIPPHONES_DATA_DIR=str(self.data_dir),
                   COLUMNS="200", NO_COLOR="1")
        env.pop("SIPPHONES_SECRET_KEY", None)
        return env

    def _run(self, fn):
        async def go():
            async with open_store(self.settings, create=True) as repo:
                return await fn(repo)
        return asyncio.run(go())

    def account(self, name: str = "Test account") -> str:
        async def go(repo):
            return (await AccountService(repo).create_account(name)).id
        return self._run(go)

    def phone(self, account_id: str, user: str, password: str, servers: list[Server], *,
              domain: str = "sip.test", authorization_name: str | None = None, expire_minutes: int = 1) -> SipPhone:
        email = f"user{next(self._emails)}@example.com"
        now = time.time()
        phone = SipPhone(id=new_id(), account_id=account_id, user_email=email, user_name=user,
                         authorization_name=authorization_name or user, password=password, domain=domain,
                         servers=_server_sets(servers), registration_expire_time=expire_minutes, voice_mail="4000",
                         created_at=now, updated_at=now)

        async def go(repo):
            u = await AccountService(repo).create_user(account_id, email, "Test", user)
            await repo.add_phone(phone, u.id)
            return phone
        return self._run(go)

    def update(self, phone: SipPhone, **changes) -> SipPhone:
        """Save changed fields (``servers`` may be a list of :class:`Server`), as the API's PATCH does."""
        if isinstance(changes.get("servers"), list):
            changes["servers"] = _server_sets(changes["servers"])
        updated = phone.replace(**changes, updated_at=time.time())

        async def go(repo):
            assert await repo.save_phone(updated)
            return updated
        return self._run(go)

    def delete(self, phone: SipPhone) -> None:
        async def go(repo):
            assert await repo.delete_phone(phone.account_id, phone.id)
        self._run(go)

    def statuses(self) -> dict[str, PhoneStatus]:
        async def go(repo):
            return {s.phone_id: s for s in await repo.list_status()}
        return self._run(go)
