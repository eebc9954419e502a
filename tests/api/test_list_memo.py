"""List items rendered once per phone version (``phones.rendered``): a page must always show what
the store holds now, whoever changed it (this server, another worker, the CLI in another
process), and the memo must stay bounded."""

from __future__ import annotations

import time

import httpx
import pytest

from sipphones.phones.models import ServerSet, SipPhone, Transport
from sipphones.phones.rendered import RenderedItems
from sipphones.storage.database import migrate
from sipphones.repository import PhoneRecord
from tests.api.zoom import current_body, legacy_body, plain_client, token_client, unique_email
from tests.servers import Admin, Credentials, start_sqlite_server

LEGACY, CURRENT = "/v2/sip_phones", "/v2/sip_phones/phones"


# --- the memo itself --------------------------------------------------------------------------

def _record(pid: str, user_name: str = "1001") -> PhoneRecord:
    return PhoneRecord(pid, f"{pid}@example.com", user_name, "auth", "pw", "sip.example.com", "192.0.2.1",
                       "192.0.2.1", "UDP", "", "", "", "", "", "", 60, "", "")


def _counting() -> tuple[RenderedItems, list[str]]:
    rendered: list[str] = []

    def render(r: PhoneRecord) -> tuple:
        rendered.append(r.id)
        return ("item", r.id, r.user_name)

    return RenderedItems(render, capacity=3), rendered


def test_memo_serves_a_page_only_when_every_item_is_there_in_its_version():
    memo, rendered = _counting()
    assert memo.lookup([("a", b"1")]) is None
    assert memo.add([_record("a"), _record("b")], [b"1", b"1"]) == [("item", "a", "1001"), ("item", "b", "1001")]
    assert memo.lookup([("a", b"1"), ("b", b"1")]) == [("item", "a", "1001"), ("item", "b", "1001")]
    assert memo.lookup([]) == []
    assert memo.lookup([("a", b"1"), ("b", b"2")]) is None      # b changed since
    assert memo.lookup([("a", b"1"), ("c", b"1")]) is None      # c never seen
    # Rows as drivers give them: a count after the version, versions of any type, a NULL one.
    assert memo.lookup([("a", memoryview(b"1"), 7), ("b", b"1", 7)]) == [("item", "a", "1001"), ("item", "b", "1001")]
    assert memo.lookup([("a", None)]) is None
    # Reading the page again re-renders only what changed; the new version replaces the old one.
    assert memo.add([_record("a"), _record("b", "2002")], [b"1", b"2"])[1] == ("item", "b", "2002")
    assert rendered == ["a", "b", "b"]
    assert memo.lookup([("b", b"1")]) is None
    assert memo.lookup([("b", b"2")]) == [("item", "b", "2002")]
    assert len(memo) == 2


def test_memo_is_bounded_and_drops_the_oldest_first():
    memo, _ = _counting()
    memo.add([_record("a"), _record("b"), _record("c")], [b"1"] * 3)
    memo.add([_record("a")], [b"2"])                 # a re-rendered: now the newest
    memo.add([_record("d")], [b"1"])                 # over capacity: b (the oldest) goes
    assert len(memo) == 3
    assert memo.lookup([("b", b"1")]) is None
    assert memo.lookup([("c", b"1"), ("a", b"2"), ("d", b"1")]) is not None


def test_memo_of_capacity_zero_renders_every_time_and_keeps_nothing():
    rendered: list[str] = []
    memo = RenderedItems(lambda r: rendered.append(r.id) or r.id, capacity=0)
    assert memo.add([_record("a")], [b"1"]) == ["a"]
    assert memo.add([_record("a")], [b"1"]) == ["a"]
    assert rendered == ["a", "a"] and len(memo) == 0
    assert memo.lookup([("a", b"1")]) is None
    with pytest.raises(ValueError):
        RenderedItems(lambda r: r, capacity=-1)


# --- the row version: every write of a row bumps it ---------------------------------------------

def _phone(account_id: str, pid: str, email: str, password: str = "same") -> SipPhone:
    now = time.time()
    return SipPhone(id=pid + account_id[:16], account_id=account_id, user_email=email, user_name="1001",
                    authorization_name="1001", password=password, domain="sip.example.com",
                    servers=(ServerSet("192.0.2.1", "192.0.2.1", Transport.UDP), ServerSet(), ServerSet()),
                    created_at=now, updated_at=now)


@pytest.fixture
def store(database_url, tmp_path) -> tuple[Admin, Credentials]:
    """A fresh store (each database) with one account whose one user is version@example.com."""
    migrate(database_url)
    admin = Admin(database_url, tmp_path)
    return admin, admin.account(users=("version@example.com",))


def test_every_save_of_a_phone_bumps_its_version_even_when_nothing_changes(store):
    # Not even updated_at: two writes in one clock tick, or a clock set back, must still be seen
    # by the list memo and by the monitor (which compared updated_at before).
    admin, creds = store

    async def go(svc, repo):
        user = await repo.get_user_by_email(creds.account_id, "version@example.com")
        phone = _phone(creds.account_id, "versiontest", "version@example.com")
        await repo.add_phone(phone, user.id)
        seen = []
        for _ in range(3):
            page = await repo.list_phone_versions(creds.account_id, after_id=None, offset=0, limit=30)
            full = await repo.list_phones(creds.account_id, search=None, after_id=None, offset=0, limit=30)
            searched = await repo.list_phones(creds.account_id, search="version@example.com", after_id=None,
                                              offset=0, limit=30)
            assert [tuple(row[:2]) for row in page.versions] == list(zip([r.id for r in full.items], full.versions))
            assert searched.versions == full.versions
            stored = await repo.get_phone(creds.account_id, phone.id)
            assert stored == await repo.find_phone(phone.id)
            seen.append((page.versions[0][1], stored.version, (await repo.phone_versions())[phone.id]))
            assert await repo.save_phone(stored)  # the very same record, updated_at included
        return seen, page

    seen, page = admin.run(go)
    assert seen == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]
    assert page.total_records == 1 and page.next_cursor is None


def test_version_pages_page_like_list_pages(store):
    admin, creds = store

    async def go(svc, repo):
        user = await repo.get_user_by_email(creds.account_id, "version@example.com")
        for n, suffix in enumerate(("win", "mac", "pc", "ipad", "iphone", "linux", "pad")):
            phone = _phone(creds.account_id, f"version{n:02d}", f"version@example.com.{suffix}", f"pw{n}")
            await repo.add_phone(phone, user.id)
            for _ in range(n % 3):
                assert await repo.save_phone(phone)
        out = []
        for kw in ({"after_id": None, "offset": 0}, {"after_id": None, "offset": 3},
                   {"after_id": "version02" + creds.account_id[:16], "offset": 0}, {"after_id": None, "offset": 6}):
            for with_total in (True, False):
                known = await repo.list_phone_versions(creds.account_id, limit=3, with_total=with_total, **kw)
                full = await repo.list_phones(creds.account_id, search=None, limit=3, with_total=with_total, **kw)
                out.append((known, full))
        empty = await repo.list_phone_versions(creds.account_id, after_id="z" * 22, offset=0, limit=3)
        return out, empty

    pages, empty = admin.run(go)
    for known, full in pages:
        assert [row[0] for row in known.versions] == [r.id for r in full.items]
        assert [row[1] for row in known.versions] == full.versions
        assert full.versions == [int(r.id[7:9]) % 3 + 1 for r in full.items]
        assert (known.total_records, known.next_cursor) == (full.total_records, full.next_cursor)
    assert (empty.versions, empty.total_records, empty.next_cursor) == ([], 7, None)


# --- what clients see ---------------------------------------------------------------------------

def _current_items(c: httpx.Client) -> dict[str, dict]:
    r = c.get(CURRENT, params={"page_size": 300})
    assert r.status_code == 200, r.text
    return {p["phone_id"]: p for p in r.json()["phones"]}


def _legacy_items(c: httpx.Client) -> dict[str, dict]:
    r = c.get(LEGACY, params={"page_size": 300})
    assert r.status_code == 200, r.text
    return {p["id"]: p for p in r.json()["phones"]}


def test_lists_show_every_change_whoever_made_it(admin, server):
    creds = admin.account(users=("memo@example.com",))
    with token_client(server, creds) as c:
        ids = [c.post(LEGACY, json=legacy_body("memo@example.com" + s)).json()["id"] for s in ("", ".mac", ".pc")]
        assert set(_current_items(c)) == set(_legacy_items(c)) == set(ids)  # both memos warm
        assert set(_current_items(c)) == set(ids)

        # A change through the current set shows in both shapes (the password too).
        assert c.patch(f"{CURRENT}/{ids[1]}", json={"user_name": "7777", "password": "new-secret"}).status_code == 204
        for items in (_current_items(c), _legacy_items(c)):
            assert items[ids[1]]["user_name"] == "7777" and items[ids[1]]["password"] == "new-secret"
            assert items[ids[0]]["user_name"] != "7777"

        # The same value written again is still a new version: nothing stale either way.
        assert c.patch(f"{CURRENT}/{ids[1]}", json={"user_name": "7777"}).status_code == 204
        assert _current_items(c)[ids[1]]["user_name"] == "7777"

        # Deleted and created phones.
        assert c.delete(f"{CURRENT}/{ids[2]}").status_code == 204
        new = c.post(CURRENT, json=current_body("memo@example.com.pad")).json()["phone_id"]
        assert set(_current_items(c)) == set(_legacy_items(c)) == {ids[0], ids[1], new}
        assert _legacy_items(c)[new]["transport_protocol"] == "TCP"

        # A change made by another process on the store (as the CLI or an import would).
        async def rename(svc, repo):
            phone = await repo.get_phone(creds.account_id, ids[0])
            assert await repo.save_phone(phone.replace(user_name="5555", domain="other.example.com"))
        admin.run(rename)
        for items in (_current_items(c), _legacy_items(c)):
            assert (items[ids[0]]["user_name"], items[ids[0]]["domain"]) == ("5555", "other.example.com")

        # Searches are served whole, and agree.
        r = c.get(LEGACY, params={"search_key": "5555"})
        assert [p["id"] for p in r.json()["phones"]] == [ids[0]]


def test_two_workers_never_serve_each_others_stale_items(tmp_path):
    """Each worker process keeps its own memo: every list, answered by whichever worker, shows the
    change made just before through the other one."""
    srv = start_sqlite_server(tmp_path, workers=2)
    try:
        admin = Admin(srv.database_url, tmp_path)
        creds = admin.account(users=("workers@example.com",))
        with token_client(srv, creds) as c:
            pid = c.post(CURRENT, json=current_body("workers@example.com")).json()["phone_id"]
            token = c.headers["Authorization"]
        # No keep-alive: a new connection per request, which the kernel spreads over both workers.
        with plain_client(srv, limits=httpx.Limits(max_keepalive_connections=0),
                          headers={"Authorization": token}) as c:
            for i in range(24):
                assert c.patch(f"{CURRENT}/{pid}", json={"user_name": f"{9000 + i}"}).status_code == 204
                for path in (CURRENT, LEGACY):
                    r = c.get(path)
                    assert r.json()["phones"][0]["user_name"] == f"{9000 + i}", (i, path, r.text)
    finally:
        srv.stop()


@pytest.mark.parametrize("capacity", ["0", "2"])
def test_lists_are_right_with_a_small_memo_or_none(tmp_path, capacity):
    srv = start_sqlite_server(tmp_path, extra_env={"SIPPHONES_LIST_CACHE_ITEMS": capacity})
    try:
        admin = Admin(srv.database_url, tmp_path)
        creds = admin.account(users=())
        with token_client(srv, creds) as c:
            emails = [unique_email("small") for _ in range(5)]
            for email in emails:
                assert c.post("/v2/users", json={"action": "create", "user_info": {"email": email}}).status_code == 201
            ids = [c.post(LEGACY, json=legacy_body(e)).json()["id"] for e in emails]
            for round_ in range(4):
                seen, token = [], ""
                while True:
                    r = c.get(CURRENT, params={"page_size": 2, "next_page_token": token})
                    assert r.status_code == 200, r.text
                    seen += [(p["phone_id"], p["user_name"]) for p in r.json()["phones"]]
                    token = r.json()["next_page_token"]
                    if not token:
                        break
                # Id order: creation order, but for ids of the same millisecond (random suffixes).
                assert [pid for pid, _ in seen] == sorted(ids, key=str.encode)
                names = dict(seen)
                assert [names[ids[k]] for k in range(1, round_ + 1)] == [f"r{k}" for k in range(1, round_ + 1)]
                if round_ < 3:
                    r = c.patch(f"{CURRENT}/{ids[round_ + 1]}", json={"user_name": f"r{round_ + 1}"})
                    assert r.status_code == 204
            legacy = c.get(LEGACY, params={"page_size": 300}).json()
            assert legacy["total_records"] == 5
            names = {p["id"]: p["user_name"] for p in legacy["phones"]}
            assert [names[pid] for pid in ids[1:4]] == ["r1", "r2", "r3"]
    finally:
        srv.stop()


def test_a_negative_memo_size_is_refused_with_a_sentence(tmp_path):
    from sipphones.config import load_settings
    with pytest.raises(ValueError, match="SIPPHONES_LIST_CACHE_ITEMS must be 0 or more"):
        load_settings(list_cache_items="-5", data_dir=str(tmp_path))
