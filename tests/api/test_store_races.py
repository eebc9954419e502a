"""Deleting a user while its phones are being created (issue 10, defects 3-5), on SQLite and
PostgreSQL: the account's phone count always equals its rows, no deadlock reaches the client, and
a create whose user was deleted meanwhile is "user not found" (404/1001), not a duplicate."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import given, settings, strategies as st

from sipphones.accounts.service import AccountService
from sipphones.phones.models import ServerSet, SipPhone, Transport
from sipphones.storage.database import migrate
from sipphones.repository import MissingReference
from sipphones.storage.store import SqlRepository
from tests.api.zoom import LEGACY_SUFFIXES, legacy_body, list_all, token_client
from tests.servers import Admin, start_server

# Ten distinct phone addresses of one user (the bare address and nine platform suffixes).
SUFFIXES = ("",) + LEGACY_SUFFIXES


def _phone(account_id: str, email: str) -> SipPhone:
    from sipphones.ids import new_id

    now = time.time()
    return SipPhone(id=new_id(), account_id=account_id, user_email=email, user_name="1001",
                    authorization_name="1001", password="pw", domain="sip.test",
                    servers=(ServerSet("192.0.2.1", "", Transport.UDP), ServerSet(), ServerSet()),
                    created_at=now, updated_at=now)


@pytest.fixture(scope="module")
def store(database_url, tmp_path_factory) -> Admin:
    migrate(database_url)
    return Admin(database_url, tmp_path_factory.mktemp("races"))


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@settings(max_examples=25)
@given(waits=st.lists(st.integers(0, 12), min_size=1, max_size=len(SUFFIXES)), delete_wait=st.integers(0, 12))
def test_user_delete_racing_phone_creates_keeps_the_count_equal_to_the_rows(store, waits, delete_wait):
    """Two repositories on one store (two server processes): one creates phones of a user, the
    other deletes that user, interleaved by ``waits`` (event-loop turns before each write)."""

    async def go(svc: AccountService, creator: SqlRepository):
        acc = await svc.create_account("race")
        user = await svc.create_user(acc.id, "race@example.com")
        deleter = SqlRepository.from_url(store.settings.resolved_database_url(), creator.cipher)
        try:
            async def create(n: int, wait: int) -> str:
                await _turns(wait)
                try:
                    await creator.add_phone(_phone(acc.id, "race@example.com" + SUFFIXES[n]), user.id)
                except MissingReference:
                    return "user gone"
                return "created"

            async def delete() -> bool:
                await _turns(delete_wait)
                return await deleter.delete_user(acc.id, user.id)

            *created, deleted = await asyncio.gather(*(create(n, w) for n, w in enumerate(waits)), delete())
        finally:
            await deleter.close()
        page = await creator.list_phones(acc.id, search=None, after_id=None, offset=0, limit=300)
        return created, deleted, page

    created, deleted, page = store.run(go)
    assert deleted is True
    assert set(created) <= {"created", "user gone"}
    assert page.items == []  # the user and every phone of it are gone
    assert page.total_records == len(page.items)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("operation", ["create phone", "delete user", "delete phone"])
def test_a_write_that_postgresql_picks_as_a_deadlock_victim_is_run_again(store, database_url, operation):
    """Another client holds the row the write locks last (the user, or the phone) and then asks
    for the account row the write already holds: a real deadlock, in which PostgreSQL aborts the
    write (its deadlock check fires first: 1 s against the other's 10 s). The write is run again
    once the other commits, and succeeds: no DeadlockDetected reaches the caller."""
    import psycopg

    async def go(svc: AccountService, repo: SqlRepository):
        acc = await svc.create_account("deadlock")
        user = await svc.create_user(acc.id, "victim@example.com")
        phone = _phone(acc.id, "victim@example.com")
        if operation != "create phone":
            await repo.add_phone(phone, user.id)
        write, row = {
            "create phone": (lambda: repo.add_phone(_phone(acc.id, "victim@example.com.pc"), user.id),
                             ("users", user.id)),
            "delete user": (lambda: repo.delete_user(acc.id, user.id), ("users", user.id)),
            "delete phone": (lambda: repo.delete_phone(acc.id, phone.id), ("sip_phones", phone.id)),
        }[operation]
        async with await psycopg.AsyncConnection.connect(repo.hot.conninfo, autocommit=True) as watcher, \
                await psycopg.AsyncConnection.connect(repo.hot.conninfo) as other:
            await other.execute("SET deadlock_timeout = '10s'")
            await other.execute(f"SELECT 1 FROM {row[0]} WHERE id = %s FOR UPDATE", (row[1],))
            task = asyncio.create_task(write())
            deadline = time.monotonic() + 10
            while not (await (await watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")).fetchone())[0]:
                assert time.monotonic() < deadline and not task.done(), "the write never waited for the row"
                await asyncio.sleep(0.01)
            await other.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (acc.id,))
            await other.commit()
        result = await asyncio.wait_for(task, 30)
        page = await repo.list_phones(acc.id, search=None, after_id=None, offset=0, limit=300)
        return result, page

    result, page = store.run(go)
    assert result in (None, True)
    assert page.total_records == len(page.items) == (1 if operation == "create phone" else 0)


# --- through the real server ------------------------------------------------------------------

ROUNDS = 16


@pytest.fixture(scope="module")
def two_workers(server):
    """A second server on the session's store, with two worker processes (on SQLite, creates and
    the user delete then really run in different processes)."""
    srv = start_server(server.database_url, server.data_dir, workers=2)
    yield srv
    srv.stop()


def test_user_deletes_racing_phone_creates_over_http(two_workers, admin):
    """Rounds of (create a user's ten phones concurrently) || (delete that user): no 500, every
    create 201 or 404/1001, and the legacy list's total_records equals the phones listed."""
    creds = admin.account(users=())
    n_creates = len(SUFFIXES)
    answers: list[tuple[int, int | None]] = []
    deletes: list[int] = []
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(n_creates + 1) as pool:
        api, *racers = (stack.enter_context(token_client(two_workers, creds)) for _ in range(n_creates + 2))
        for round_ in range(ROUNDS):
            email = f"racer{round_}@example.com"
            r = api.post("/v2/users", json={"action": "create", "user_info": {"email": email}})
            assert r.status_code == 201, r.text
            user_id = r.json()["id"]
            start = threading.Barrier(n_creates + 1)

            def create(c: httpx.Client, address: str, start=start) -> tuple[int, int | None]:
                start.wait(10)
                r = c.post("/v2/sip_phones", json=legacy_body(address))
                return r.status_code, (None if r.status_code == 201 else r.json().get("code"))

            def delete(c: httpx.Client, user_id=user_id, start=start, pause=0.002 * (round_ % 4)) -> int:
                start.wait(10)
                time.sleep(pause)  # into the middle of the creates, more or less
                return c.delete(f"/v2/users/{user_id}").status_code

            creating = [pool.submit(create, racers[n], email + SUFFIXES[n]) for n in range(n_creates)]
            deleting = pool.submit(delete, racers[-1])
            answers.extend(f.result(30) for f in creating)
            deletes.append(deleting.result(30))
        listed = list_all(api, "/v2/sip_phones")
        total = api.get("/v2/sip_phones", params={"page_size": 300}).json()["total_records"]

    outcomes = collections.Counter(answers)
    seen = f"creates {dict(outcomes)}, deletes {dict(collections.Counter(deletes))}, {len(listed)} listed, total {total}"
    assert deletes == [204] * ROUNDS, seen
    assert set(outcomes) <= {(201, None), (404, 1001)}, seen
    assert listed == [] and total == 0, seen
