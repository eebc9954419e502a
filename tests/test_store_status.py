"""Registration-health rows in the store (written by the monitor), on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from sipphones.phones.models import ServerSet, SipPhone, Transport
from sipphones.storage.database import migrate
from sipphones.repository import PhoneStatus
from tests.servers import Admin


def _status(phone_id: str, account_id: str, state: str, registered: bool) -> PhoneStatus:
    now = time.time()
    return PhoneStatus(phone_id=phone_id, account_id=account_id, registered=registered, state=state, server_slot=1,
                       server_address="127.0.0.1:5060", transport="UDP", last_error="", last_status_code=200,
                       last_success_at=now, last_attempt_at=now, granted_expires=120, updated_at=now)


def test_save_statuses_batches_inserts_updates_and_drops_deleted_phones(database_url, tmp_path):
    migrate(database_url)
    admin = Admin(database_url, tmp_path)
    creds = admin.account(users=("alice@example.com",))

    async def go(svc, repo):
        user = await repo.get_user_by_email(creds.account_id, "alice@example.com")
        ids = []
        for i in range(3):
            phone = SipPhone(id=f"status-{creds.account_id}-{i}", account_id=creds.account_id,
                             user_email=f"alice@example.com{['', '.pc', '.mac'][i]}", user_name="1001",
                             authorization_name="1001", password="pw", domain="sip.test",
                             servers=(ServerSet("127.0.0.1", "", Transport.UDP), ServerSet(), ServerSet()),
                             created_at=time.time(), updated_at=time.time())
            await repo.add_phone(phone, user.id)
            ids.append(phone.id)
        await repo.save_statuses([_status(ids[0], creds.account_id, "registered", True)])
        await repo.delete_phone(creds.account_id, ids[2])
        await repo.save_statuses([
            _status(ids[0], creds.account_id, "failed", False),     # update
            _status(ids[1], creds.account_id, "registered", True),  # insert
            _status(ids[2], creds.account_id, "registered", True),  # phone deleted meanwhile: dropped
        ])
        return {s.phone_id: s for s in await repo.list_status(creds.account_id)}, ids

    rows, ids = admin.run(go)
    assert set(rows) == {ids[0], ids[1]}
    assert rows[ids[0]].state == "failed" and not rows[ids[0]].registered
    assert rows[ids[1]].state == "registered" and rows[ids[1]].registered


def test_get_statuses_reads_the_rows_of_some_phones_of_one_account(database_url, tmp_path):
    migrate(database_url)
    admin = Admin(database_url, tmp_path)
    mine = admin.account(users=("bea@example.com",))
    theirs = admin.account(users=("cid@example.com",))

    async def go(svc, repo):
        ids = {}
        for creds, email in ((mine, "bea@example.com"), (theirs, "cid@example.com")):
            user = await repo.get_user_by_email(creds.account_id, email)
            for i, suffix in enumerate(("", ".pc")):
                phone = SipPhone(id=f"many-{creds.account_id}-{i}", account_id=creds.account_id,
                                 user_email=email + suffix, user_name="1001", authorization_name="1001",
                                 password="pw", domain="sip.test",
                                 servers=(ServerSet("127.0.0.1", "", Transport.UDP), ServerSet(), ServerSet()),
                                 created_at=time.time(), updated_at=time.time())
                await repo.add_phone(phone, user.id)
                ids.setdefault(creds.account_id, []).append(phone.id)
        m, t = ids[mine.account_id], ids[theirs.account_id]
        await repo.save_statuses([_status(m[0], mine.account_id, "failed", False),
                                  _status(t[0], theirs.account_id, "registered", True)])
        # one of mine with a row, one without, and another account's (with a row): only mine comes back
        got = await repo.get_statuses(mine.account_id, [m[0], m[1], t[0]])
        return got, await repo.get_statuses(mine.account_id, []), m

    got, empty, m = admin.run(go)
    assert set(got) == {m[0]} and got[m[0]].state == "failed"
    assert empty == {}
