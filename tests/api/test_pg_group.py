"""PostgreSQL group commit of phone creates (``storage.raw.pg_group``): creates of one account that
arrive together are one statement, and each writer still gets its own answer (created,
DuplicateKey, MissingReference) with the account's phone count equal to its rows."""

from __future__ import annotations

import asyncio
import time

import pytest

from sipphones.ids import new_id
from sipphones.phones.models import ServerSet, SipPhone, Transport
from sipphones.repository import DuplicateKey, MissingReference
from sipphones.storage.database import migrate
from sipphones.storage.store import SqlRepository
from tests.servers import Admin

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def _phone(account_id: str, email: str) -> SipPhone:
    now = time.time()
    return SipPhone(id=new_id(), account_id=account_id, user_email=email, user_name="1001",
                    authorization_name="1001", password="pw", domain="sip.test",
                    servers=(ServerSet("192.0.2.1", "", Transport.UDP), ServerSet(), ServerSet()),
                    created_at=now, updated_at=now)


@pytest.fixture
def store(database_url, tmp_path) -> Admin:
    migrate(database_url)
    return Admin(database_url, tmp_path)


async def _outcome(coro) -> str:
    try:
        await coro
    except DuplicateKey:
        return "duplicate"
    except MissingReference:
        return "missing"
    return "created"


def test_creates_arriving_together_are_one_statement_each_with_its_own_answer(store):
    async def go(svc, repo: SqlRepository):
        acc = await svc.create_account("group")
        users = [await svc.create_user(acc.id, f"g{n}@example.com") for n in range(20)]
        await repo.add_phone(_phone(acc.id, "g0@example.com"), users[0].id)    # stored before
        groups = repo.creates.groups
        emails = ([(u, u.email) for u in users]                          # g0: a duplicate of the stored one
                  + [(users[1], "g1@example.com"), (users[2], "g2@example.com.pc")]  # g1 twice in the group
                  + [(u, u.email + ".mac") for u in users[3:]])
        outcomes = await asyncio.gather(*(_outcome(repo.add_phone(_phone(acc.id, e), u.id)) for u, e in emails))
        page = await repo.list_phones(acc.id, search=None, after_id=None, offset=0, limit=300)
        return outcomes, repo.creates.groups - groups, page

    outcomes, groups, page = store.run(go)
    assert outcomes[0] == "duplicate" and outcomes[1:20] == ["created"] * 19
    assert outcomes[20] == "duplicate" and outcomes[21:] == ["created"] * 18
    assert groups >= 1                                   # written together, not one by one
    assert len(page.items) == 1 + 19 + 18 == page.total_records
    assert len({p.user_email for p in page.items}) == len(page.items)


def test_a_group_failing_a_foreign_key_is_written_again_one_by_one(store):
    """A user deleted before its phone's create joins a group: the group's statement fails as a
    whole, and each create runs alone: the others are created, that one is MissingReference."""

    async def go(svc, repo: SqlRepository):
        acc = await svc.create_account("group fk")
        kept = await svc.create_user(acc.id, "kept@example.com")
        gone = await svc.create_user(acc.id, "gone@example.com")
        await svc.delete_user(acc.id, gone.id)
        writes = [repo.add_phone(_phone(acc.id, f"kept@example.com{s}"), kept.id) for s in ("", ".pc", ".mac")]
        writes.insert(1, repo.add_phone(_phone(acc.id, "gone@example.com"), gone.id))
        outcomes = await asyncio.gather(*(_outcome(w) for w in writes))
        page = await repo.list_phones(acc.id, search=None, after_id=None, offset=0, limit=300)
        return outcomes, page

    outcomes, page = store.run(go)
    assert outcomes == ["created", "missing", "created", "created"]
    assert len(page.items) == 3 == page.total_records


def test_without_groups_each_create_is_its_own_statement(store):
    async def go(svc, repo: SqlRepository):
        alone = SqlRepository.from_url(store.settings.resolved_database_url(), repo.cipher,
                                       pools=store.settings.postgres_tuning()._replace(group=1))
        try:
            acc = await svc.create_account("alone")
            user = await svc.create_user(acc.id, "a@example.com")
            outcomes = await asyncio.gather(*(_outcome(alone.add_phone(_phone(acc.id, e), user.id))
                                              for e in ("a@example.com", "a@example.com", "a@example.com.pc")))
            page = await alone.list_phones(acc.id, search=None, after_id=None, offset=0, limit=300)
            return sorted(outcomes), alone.creates.groups, page
        finally:
            await alone.close()

    outcomes, groups, page = store.run(go)
    assert outcomes == ["created", "created", "duplicate"] and groups == 0
    assert len(page.items) == 2 == page.total_records
