"""Stores and observations of the fleet tests: a PhoneStore on PostgreSQL, phones made in one
session, each phone's keeper as the status view shows it, kamailio's bindings per phone."""

from __future__ import annotations

import time
from pathlib import Path

from sipphones.accounts.service import AccountService
from sipphones.config import load_settings
from sipphones.ids import new_id
from sipphones.phones.models import SipPhone
from tests.monitor.store import PhoneStore, Server, _server_sets


def postgres_store(root: Path, url: str) -> PhoneStore:
    store = PhoneStore(root)
    store.database_url = url
    store.settings = load_settings(database_url=url, data_dir=str(store.data_dir))
    store.account_id = store.account("Fleet account")
    return store


def add_phones(store: PhoneStore, users: list[str], server: Server) -> list[SipPhone]:
    """One phone per kamailio LOAD_USER (``u0007`` / ``pw0007``), all in one store session."""
    acc = store.account_id

    async def go(repo):
        phones = []
        svc = AccountService(repo)
        for n, user in enumerate(users):
            email = f"fleet{n}@example.com"
            now = time.time()
            phone = SipPhone(id=new_id(), account_id=acc, user_email=email, user_name=user, authorization_name=user,
                             password="pw" + user[1:], domain="sip.test", servers=_server_sets([server]),
                             registration_expire_time=1, voice_mail="", created_at=now, updated_at=now)
            u = await svc.create_user(acc, email, "Fleet", user)
            await repo.add_phone(phone, u.id)
            phones.append(phone)
        return phones
    return store._run(go)


def keepers(store: PhoneStore) -> dict[str, tuple[str, bool]]:
    """phone id -> (monitor name ``host:pid``, lease alive), as ``GET .../sip_phones/status`` shows it."""
    async def go(repo):
        out, after = {}, None
        while True:
            page = await repo.list_phone_statuses(store.account_id, states=None, after_id=after, limit=300)
            for e in page.items:
                out[e.phone_id] = (e.keeper, e.keeper_alive)
            if page.next_cursor is None:
                return out
            after = page.next_cursor
    return store._run(go)


def stored_contacts(store: PhoneStore) -> dict[str, str]:
    """phone id -> the Contact its keeper recorded (``phone_keepers.contact``; a SQLite store),
    which the next keeper removes at the registrar."""
    import sqlite3

    path = store.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        return {pid: contact for pid, contact in db.execute("SELECT phone_id, contact FROM phone_keepers")
                if contact}


def contacts_by_user(kamailio, users: list[str]) -> dict[str, list[str]]:
    return {u: kamailio.contacts(u) for u in users}
