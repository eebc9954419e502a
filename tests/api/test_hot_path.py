"""The request hot path of the store (raw drivers, storage.raw) on SQLite and PostgreSQL:
what it must keep true beside the SQLAlchemy paths (counts, uniqueness, rollbacks, one lookup for
suffixed addresses, the migration head constant)."""

from __future__ import annotations

import asyncio
import time

import pytest

from sipphones.phones.models import ServerSet, SipPhone, Transport
from sipphones.storage.database import HEAD_REVISION, head_revision, migrate, stored_revision
from sipphones.repository import DuplicateKey
from tests.servers import Admin


def test_head_revision_constant_matches_the_migrations():
    # serve skips importing Alembic when the database is at HEAD_REVISION: it must be the real head.
    assert HEAD_REVISION == head_revision()


def test_user_rows_are_in_the_field_order_of_the_user_record():
    # A user is built from its row by position (storage.raw.rows._maker).
    import dataclasses

    from sipphones.accounts.models import User
    from sipphones.storage.raw import statements as sql

    assert tuple(sql._USER_COLS.split(", ")) == tuple(f.name for f in dataclasses.fields(User))


def test_stored_revision_is_read_without_alembic(database_url):
    migrate(database_url)
    assert stored_revision(database_url) == HEAD_REVISION


def test_stored_revision_of_a_missing_sqlite_file_is_none(tmp_path):
    assert stored_revision(f"sqlite:///{tmp_path / 'absent.db'}") is None
    assert not (tmp_path / "absent.db").exists()


def _phone(account_id: str, email: str, n: int) -> SipPhone:
    now = time.time()
    return SipPhone(id=f"hot{n:03d}{account_id[:20]}", account_id=account_id, user_email=email, user_name="1001",
                    authorization_name="1001", password=f"pw-{n}", domain="sip.test",
                    servers=(ServerSet("127.0.0.1:5060", "10.0.0.1", Transport.TLS),
                             ServerSet("h2.example", "", Transport.UDP), ServerSet()),
                    created_at=now, updated_at=now)


@pytest.fixture
def admin_creds(database_url, tmp_path):
    migrate(database_url)
    admin = Admin(database_url, tmp_path)
    return admin, admin.account(users=("alice@example.com", "alice@example.com.mac"))


def test_user_lookup_prefers_the_exact_address_in_one_query(admin_creds):
    admin, creds = admin_creds

    async def go(svc, repo):
        exact = await repo.get_user_by_emails(creds.account_id, ("ALICE@example.com.mac", "alice@example.com"))
        base = await repo.get_user_by_emails(creds.account_id, ("nobody@example.com.pc", "alice@example.com"))
        none = await repo.get_user_by_emails(creds.account_id, ("nobody@example.com",))
        nul = await repo.get_user_by_emails(creds.account_id, ("a\x00b@example.com",))
        return exact, base, none, nul

    exact, base, none, nul = admin.run(go)
    assert exact.email == "alice@example.com.mac"
    assert base.email == "alice@example.com"
    assert none is None and nul is None


def test_phone_count_follows_creates_duplicates_and_deletes(admin_creds):
    admin, creds = admin_creds
    acc = creds.account_id

    async def go(svc, repo):
        user = await repo.get_user_by_email(acc, "alice@example.com")
        phones = [_phone(acc, "alice@example.com" + s, n) for n, s in enumerate(("", ".pc", ".ipad"))]
        for p in phones:
            await repo.add_phone(p, user.id)
        dup = _phone(acc, "ALICE@example.com.PC", 9)  # same address, other case: the unique key
        with pytest.raises(DuplicateKey):
            await repo.add_phone(dup, user.id)
        after_dup = await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=30)
        assert await repo.get_phone(acc, dup.id) is None  # rolled back: neither row nor count
        assert await repo.delete_phone(acc, phones[1].id)
        assert not await repo.delete_phone(acc, phones[1].id)
        assert not await repo.delete_phone("other-account", phones[0].id)
        after_delete = await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=30)
        no_total = await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=1, with_total=False)
        return phones, after_dup, after_delete, no_total

    phones, after_dup, after_delete, no_total = admin.run(go)
    assert after_dup.total_records == 3
    assert [p.id for p in after_dup.items] == sorted(p.id for p in phones)
    assert after_delete.total_records == 2
    assert {p.id for p in after_delete.items} == {phones[0].id, phones[2].id}
    assert no_total.total_records == 0 and no_total.next_cursor == no_total.items[0].id


def test_phone_round_trips_and_saves_through_the_hot_path(admin_creds):
    admin, creds = admin_creds
    acc = creds.account_id

    async def go(svc, repo):
        user = await repo.get_user_by_email(acc, "alice@example.com")
        p = _phone(acc, "alice@example.com.linux", 42)
        await repo.add_phone(p, user.id)
        got = await repo.get_phone(acc, p.id)
        changed = got.replace(password="new-pw", servers=(ServerSet("a.example", "", Transport.AUTO), ServerSet(),
                                                          ServerSet("c.example:5070", "p.example", Transport.TCP)),
                              display_number="+15550100", updated_at=got.updated_at + 1)
        saved = await repo.save_phone(changed)
        missing = await repo.save_phone(changed.replace(id="not-a-phone"))
        foreign = await repo.get_phone("other-account", p.id)
        return p, got, changed, saved, missing, foreign, await repo.get_phone(acc, p.id), await repo.find_phone(p.id)

    p, got, changed, saved, missing, foreign, reread, found = admin.run(go)
    assert got == p
    assert saved and not missing and foreign is None
    assert reread == changed and found == changed


def test_sqlite_hot_writes_and_sqlalchemy_writes_interleave_without_locking(tmp_path):
    # Both paths run on the event loop on SQLite: many concurrent writes of each kind in one
    # process must all complete (no transaction of one path waits on the loop the other blocks).
    url = f"sqlite:///{tmp_path / 'x.db'}"
    migrate(url)
    admin = Admin(url, tmp_path)
    creds = admin.account(users=("alice@example.com",))
    acc = creds.account_id

    async def go(svc, repo):
        user = await repo.get_user_by_email(acc, "alice@example.com")

        async def add_phone(n):
            await repo.add_phone(_phone(acc, f"alice@example.com{'' if n == 0 else '.pc' if n == 1 else '.mac'}", n),
                                 user.id)

        async def add_account(n):  # a SQLAlchemy write (user creates are on the hot path too)
            await svc.create_account(f"account {n}")

        t0 = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*[add_phone(n) for n in range(3)], *[add_account(n) for n in range(20)]),
                               5.0)
        elapsed = time.monotonic() - t0
        total = len(await repo.list_accounts())
        page = await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=30)
        return elapsed, total, page

    elapsed, total, page = admin.run(go)
    assert total == 21
    assert page.total_records == 3 and len(page.items) == 3


# --- SQLite group commit (storage.raw.sqlite.SqliteRunner) --------------------------------------

def _sqlite_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    migrate(url)
    admin = Admin(url, tmp_path)
    creds = admin.account(users=("alice@example.com",))
    return url, admin, creds.account_id


SUFFIXES = ("", ".win", ".mac", ".android", ".ipad", ".iphone", ".linux", ".pc", ".mobile", ".pad")


def test_concurrent_writes_share_one_commit_and_each_answer_follows_it(tmp_path):
    import sqlite3

    url, admin, acc = _sqlite_store(tmp_path)
    path = url.removeprefix("sqlite:///")

    async def go(svc, repo):
        user = await repo.get_user_by_email(acc, "alice@example.com")
        before = repo.hot.commits
        phones = [_phone(acc, "alice@example.com" + s, n) for n, s in enumerate(SUFFIXES)]
        seen_by_other_connection = []

        async def add(p):
            await repo.add_phone(p, user.id)
            # Resumed only after the COMMIT: another connection already sees the row.
            other = sqlite3.connect(path)
            try:
                seen_by_other_connection.append(
                    other.execute("SELECT count(*) FROM sip_phones WHERE id = ?", (p.id,)).fetchone()[0])
            finally:
                other.close()

        await asyncio.gather(*[add(p) for p in phones])
        return repo.hot.commits - before, seen_by_other_connection, phones

    commits, seen, phones = admin.run(go)
    assert commits == 1                      # ten creates of one loop iteration: one transaction
    assert seen == [1] * len(phones)         # each writer resumed after its commit

    async def check(svc, repo):
        return await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=30)

    page = admin.run(check)
    assert page.total_records == len(phones) and len(page.items) == len(phones)


def test_a_failing_write_in_a_group_rolls_back_only_itself(tmp_path):
    url, admin, acc = _sqlite_store(tmp_path)

    async def go(svc, repo):
        user = await repo.get_user_by_email(acc, "alice@example.com")
        good = [_phone(acc, "alice@example.com" + s, n) for n, s in enumerate(SUFFIXES[:3])]
        dup = _phone(acc, "alice@example.com.WIN", 50)   # same address as good[1] (case-insensitive)
        results = await asyncio.gather(*[repo.add_phone(p, user.id) for p in (good[0], good[1], dup, good[2])],
                                       return_exceptions=True)
        page = await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=30)
        return results, page, good, dup

    results, page, good, dup = admin.run(go)
    assert [type(r) for r in results] == [type(None), type(None), DuplicateKey, type(None)]
    assert {p.id for p in page.items} == {p.id for p in good}
    assert page.total_records == 3


def test_a_group_counts_its_creates_once_per_account_and_only_the_stored_ones(tmp_path):
    # Creates are one statement each; the group adds their phone counts up per account and runs
    # one count update per account before its COMMIT. A create refused as a duplicate counts 0.
    url, admin, acc = _sqlite_store(tmp_path)
    other = admin.account(users=("bob@example.com",)).account_id
    statements: list[str] = []

    async def go(svc, repo):
        alice = await repo.get_user_by_email(acc, "alice@example.com")
        bob = await repo.get_user_by_email(other, "bob@example.com")
        mine = [_phone(acc, "alice@example.com" + s, n) for n, s in enumerate(SUFFIXES[:4])]
        theirs = [_phone(other, "bob@example.com" + s, 100 + n) for n, s in enumerate(SUFFIXES[:3])]
        dup = _phone(acc, "alice@example.com.WIN", 50)    # the address of mine[1]
        await repo.add_phone(_phone(acc, "alice@example.com.pc", 60), alice.id)   # the writer connection exists
        repo.hot._writer.set_trace_callback(statements.append)
        before = repo.hot.commits
        results = await asyncio.gather(
            *[repo.add_phone(p, alice.id) for p in mine[:2]], repo.add_phone(dup, alice.id),
            *[repo.add_phone(p, bob.id) for p in theirs], *[repo.add_phone(p, alice.id) for p in mine[2:]],
            return_exceptions=True)
        repo.hot._writer.set_trace_callback(None)
        pages = [await repo.list_phones(a, search=None, after_id=None, offset=0, limit=30) for a in (acc, other)]
        return repo.hot.commits - before, results, pages

    commits, results, (mine_page, theirs_page) = admin.run(go)
    assert commits == 1
    assert [type(r) for r in results].count(DuplicateKey) == 1 and isinstance(results[2], DuplicateKey)
    assert mine_page.total_records == len(mine_page.items) == 5
    assert theirs_page.total_records == len(theirs_page.items) == 3
    count_updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE ACCOUNTS")]
    assert sorted(count_updates) == sorted([
        f"UPDATE accounts SET phone_count = phone_count + 4 WHERE id = '{acc}'",
        f"UPDATE accounts SET phone_count = phone_count + 3 WHERE id = '{other}'"])
    assert not any("SAVEPOINT" in s for s in statements)   # a one-statement write needs none


def test_a_one_statement_write_failing_otherwise_than_by_a_constraint_fails_its_group(tmp_path):
    # Not a constraint (here: an unknown table; in life I/O or a full disk, after which SQLite
    # may have rolled the transaction back): no writer of the group is told it succeeded, and
    # nothing of the group is stored, counts included.
    url, admin, acc = _sqlite_store(tmp_path)

    async def go(svc, repo):
        user = await repo.get_user_by_email(acc, "alice@example.com")
        phones = [_phone(acc, "alice@example.com" + s, n) for n, s in enumerate(SUFFIXES[:2])]
        results = await asyncio.gather(repo.add_phone(phones[0], user.id),
                                       repo.hot.write("INSERT INTO no_such_table VALUES (1)", ()),
                                       repo.add_phone(phones[1], user.id), return_exceptions=True)
        page = await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=30)
        retry = await repo.add_phone(phones[0], user.id)
        after = await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=30)
        return results, page, retry, after

    results, page, retry, after = admin.run(go)
    assert all(isinstance(r, Exception) for r in results)
    assert page.total_records == 0 and page.items == []
    assert retry is None and after.total_records == len(after.items) == 1


def test_a_failed_commit_fails_every_writer_of_its_group(tmp_path):
    # A group that cannot commit (here: its connection breaks in the middle) reaches every writer
    # of the group as an error, never as a success, and nothing of it is stored.
    url, admin, acc = _sqlite_store(tmp_path)

    async def go(svc, repo):
        user = await repo.get_user_by_email(acc, "alice@example.com")
        phones = [_phone(acc, "alice@example.com" + s, n) for n, s in enumerate(SUFFIXES[:2])]

        def break_connection(execute):
            repo.hot._writer.close()

        results = await asyncio.gather(repo.add_phone(phones[0], user.id), repo.hot.write_fn(break_connection),
                                       repo.add_phone(phones[1], user.id), return_exceptions=True)
        page = await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=30)
        retry = await repo.add_phone(phones[0], user.id)   # the runner reconnects for the next group
        return results, page, retry, await repo.get_phone(acc, phones[0].id)

    results, page, retry, reread = admin.run(go)
    assert all(isinstance(r, Exception) for r in results)
    assert page.total_records == 0 and page.items == []
    assert retry is None and reread is not None


def test_a_write_lock_held_by_another_process_does_not_block_the_loop(tmp_path):
    import sqlite3

    url, admin, acc = _sqlite_store(tmp_path)
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)

    async def go(svc, repo):
        user = await repo.get_user_by_email(acc, "alice@example.com")
        other.execute("BEGIN IMMEDIATE")            # another process' writer holds the lock
        task = asyncio.ensure_future(repo.add_phone(_phone(acc, "alice@example.com", 7), user.id))
        ticks = 0
        for _ in range(20):                          # the loop keeps running other work meanwhile
            await asyncio.sleep(0.002)
            ticks += 1
        waiting = not task.done()
        other.execute("COMMIT")
        await asyncio.wait_for(task, 5.0)
        return ticks, waiting, await repo.get_phone(acc, _phone(acc, "alice@example.com", 7).id)

    try:
        ticks, waiting, phone = admin.run(go)
    finally:
        other.close()
    assert ticks == 20 and waiting and phone is not None


def test_a_blocking_sqlalchemy_write_commits_the_queued_group_first(tmp_path):
    url, admin, acc = _sqlite_store(tmp_path)

    async def go(svc, repo):
        user = await repo.get_user_by_email(acc, "alice@example.com")
        task = asyncio.ensure_future(repo.add_phone(_phone(acc, "alice@example.com", 1), user.id))
        await asyncio.sleep(0)                     # the write is queued, its group not yet committed
        assert repo.hot._queue
        # A SQLAlchemy write (an app: user creates are on the hot path too) must not wait on the group.
        await asyncio.wait_for(svc.create_app(acc, "second app"), 5.0)
        await task
        total = len(await repo.list_apps(acc))
        return total, await repo.get_phone(acc, _phone(acc, "alice@example.com", 1).id)

    total, phone = admin.run(go)
    assert total == 2 and phone is not None


def test_remembered_address_verdicts_match_the_rules_and_stay_bounded(monkeypatch):
    from sipphones.phones import rules, validation

    monkeypatch.setattr(validation, "_ADDRESS_VERDICTS_MAX", 3)
    monkeypatch.setattr(validation, "_server_verdicts", {})
    values = ["10.0.0.1:5060", "999.1.1.1", "[::1]:5061", "bad host", "10.0.0.1:5060", "sip.example.com", "999.1.1.1"]
    for value in values * 2:
        assert validation._remembered(validation._server_verdicts, rules.check_server, value) == rules.check_server(value)
        assert len(validation._server_verdicts) <= 3


def test_list_records_hold_empty_optional_fields_as_empty_strings(admin_creds):
    # The list statement reads the usually-empty columns as NULL when empty (cheaper to convert);
    # a record still shows them as "" - never None - and every other field as stored.
    admin, creds = admin_creds
    acc = creds.account_id
    now = time.time()
    sparse = SipPhone(id=f"hot100{acc[:20]}", account_id=acc, user_email="alice@example.com", user_name="1001",
                      authorization_name="a1", password='p"w\\ü', domain="sip.test",
                      servers=(ServerSet("r1.example", "", Transport.UDP), ServerSet("r2.example", "", Transport.TCP),
                               ServerSet()), created_at=now, updated_at=now)
    full = SipPhone(id=f"hot101{acc[:20]}", account_id=acc, user_email="alice@example.com.mac", user_name="1002",
                    authorization_name="a2", password="pw2", domain="sip.test",
                    servers=(ServerSet("r1.example", "p1.example", Transport.TLS),
                             ServerSet("r2.example", "p2.example", Transport.AUTO),
                             ServerSet("r3.example", "p3.example", Transport.UDP)),
                    registration_expire_time=120, voice_mail="4000", display_number="+15550100",
                    created_at=now, updated_at=now)

    async def go(svc, repo):
        user = await repo.get_user_by_email(acc, "alice@example.com")
        for p in (sparse, full):
            await repo.add_phone(p, user.id)
        legacy = await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=30)
        current = await repo.list_phones(acc, search=None, after_id=None, offset=0, limit=30, with_total=False)
        searched = await repo.list_phones(acc, search="1001", after_id=None, offset=0, limit=30)
        return legacy, current, searched

    legacy, current, searched = admin.run(go)
    expected = [
        (sparse.id, "alice@example.com", "1001", "a1", 'p"w\\ü', "sip.test", "r1.example", "", "UDP",
         "r2.example", "", "TCP", "", "", "", 60, "", ""),
        (full.id, "alice@example.com.mac", "1002", "a2", "pw2", "sip.test", "r1.example", "p1.example", "TLS",
         "r2.example", "p2.example", "AUTO", "r3.example", "p3.example", "UDP", 120, "4000", "+15550100"),
    ]
    assert [tuple(r) for r in legacy.items] == expected and legacy.total_records == 2
    assert [tuple(r) for r in current.items] == expected
    assert [tuple(r) for r in searched.items] == expected[:1]
    assert legacy.items[1].display_number == "+15550100" and current.items[0].proxy_server3 == ""

