"""``POST /v2/users`` and ``GET /v2/users`` on the raw hot path (``storage.raw``), on SQLite and
PostgreSQL: the answers are exactly those of the SQLAlchemy path they replaced, and a user create
racing its account's delete is told apart from a duplicate.

``users_answers.json`` holds the answers of a fixed conversation as the SQLAlchemy path gave them
(recorded from it at commit b13665f, on both stores alike): status, header names and their values
where they do not depend on time or ids, and the body with ids, timestamps and page tokens
replaced by placeholders in order of appearance. The raw path must give the same answers."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from sipphones.accounts.models import Plan
from sipphones.accounts.service import NotFoundError
from sipphones.repository import DuplicateKey, MissingReference
from sipphones.storage.database import migrate
from tests.api.zoom import assert_error, token_client
from tests.servers import Admin

GOLDEN = Path(__file__).with_name("users_answers.json")
# Header values that change from request to request (the limiter's clock, the date, a random id).
_VARYING_HEADERS = {"date", "x-ratelimit-remaining", "retry-after", "x-zm-trackingid"}
_TIME_KEYS = {"user_created_at"}


def _conversation(c: httpx.Client) -> list[tuple[str, httpx.Response]]:
    """The requests whose answers are compared, each with a name."""
    out = []

    def post(name, body):
        out.append((name, c.post("/v2/users", json=body)))
        time.sleep(0.002)  # ids carry the millisecond clock: each user's a later one, pages in creation order

    def get(name, **params):
        out.append((name, c.get("/v2/users", params=params)))

    post("create", {"action": "create", "user_info": {"email": "Dave@Example.com", "first_name": "Dave",
                                                      "last_name": "Doe", "type": 2}})
    post("create plain", {"action": "custCreate", "user_info": {"email": "erin@example.com"}})
    post("create third", {"action": "autoCreate", "user_info": {"email": "frank@example.com", "first_name": "F"}})
    post("duplicate", {"action": "create", "user_info": {"email": "DAVE@example.com"}})
    post("bad fields", {"action": 1, "user_info": {"email": 1, "type": True}})
    post("bad email", {"action": "create", "user_info": {"email": "not-an-email", "type": 7}})
    post("no user_info", {"action": "create"})
    out.append(("not json", c.post("/v2/users", content=b"{nope", headers={"content-type": "application/json"})))
    get("first page", page_size=2)
    token = out[-1][1].json()["next_page_token"]
    get("second page", page_size=2, next_page_token=token)
    get("default size")
    get("page of three", page_size=3)
    token = out[-1][1].json()["next_page_token"]
    frank = out[2][1].json()["id"]
    out.append(("delete the last", c.delete(f"/v2/users/{frank}")))
    get("past the last user", page_size=3, next_page_token=token)  # no row carries the count
    get("bad token", next_page_token="junk")
    get("bad size", page_size="x")
    get("zero size", page_size=0)
    get("huge size", page_size=10**6)
    return out


def _normal(answers: list[tuple[str, httpx.Response]]) -> list[dict]:
    ids: dict[str, str] = {}
    tokens: dict[str, str] = {}

    def placeholder(table: dict, value: str, kind: str) -> str:
        return table.setdefault(value, f"<{kind}{len(table) + 1}>")

    def walk(value, key=None):
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if key == "id" and isinstance(value, str):
            return placeholder(ids, value, "id")
        if key == "next_page_token" and value:
            return placeholder(tokens, value, "token")
        if key in _TIME_KEYS and isinstance(value, str):
            return "<time>"
        return value

    out = []
    for name, r in answers:
        headers = {k.lower(): ("<varies>" if k.lower() in _VARYING_HEADERS else v) for k, v in r.headers.items()}
        headers.pop("content-length", None)  # the body (with its ids and times) is compared instead
        body = walk(r.json()) if r.content else None
        out.append({"name": name, "status": r.status_code, "headers": headers, "body": body})
    return out


def test_users_answers_are_those_of_the_path_they_replaced(server, admin):
    """A limited account (the rate-limit headers are part of the answer), the same conversation."""
    creds = admin.account(plan=Plan.BUSINESS, unlimited=False, users=("alice@example.com",))
    with token_client(server, creds) as c:
        got = _normal(_conversation(c))
    if os.environ.get("SIPPHONES_RECORD_USERS_ANSWERS") == "1":  # how users_answers.json was made
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(GOLDEN.read_text())


# --- a user create racing its account's delete ---------------------------------------------------

def _plain_pg_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


_DELETE_ACCOUNT = ("DELETE FROM apps WHERE account_id = {p}", "DELETE FROM users WHERE account_id = {p}",
                   "DELETE FROM accounts WHERE id = {p}")


def test_a_create_whose_account_is_deleted_meanwhile_is_404_account_not_found(server, admin):
    """The account is deleted after the request's token check and before its insert: another
    client holds the account (SQLite: the file's write lock; PostgreSQL: the account row, which
    the insert's foreign-key check must share), the request is sent, then the holder deletes the
    account and commits. The insert fails its foreign key: Zoom's 404 "Account does not exist"
    (not 409 "already exists", not a 500), and no user row is left behind."""
    creds = admin.account(users=())
    result: dict = {}
    body = {"action": "create", "user_info": {"email": "late@example.com"}}
    with token_client(server, creds) as c:
        assert c.get("/v2/users").status_code == 200  # the token works, the account exists

        def send():
            result["r"] = c.post("/v2/users", json=body)

        sender = threading.Thread(target=send)
        if server.database_url.startswith("sqlite"):
            conn = sqlite3.connect(server.database_url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")   # the write lock: the server's insert waits for it
                sender.start()
                time.sleep(0.5)                   # the request's token check (a read) is done by now
                for sql in _DELETE_ACCOUNT:
                    conn.execute(sql.format(p="?"), (creds.account_id,))
                conn.execute("COMMIT")
            finally:
                conn.close()
            left = _sqlite_count(server.database_url, creds.account_id)
        else:
            import psycopg

            url = _plain_pg_url(server.database_url)
            with psycopg.connect(url) as conn, psycopg.connect(url, autocommit=True) as watch:
                conn.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (creds.account_id,))
                sender.start()
                _wait_for_a_lock_wait(watch)      # the insert's foreign-key check waits on the row
                for sql in _DELETE_ACCOUNT:
                    conn.execute(sql.format(p="%s"), (creds.account_id,))
                conn.commit()
                left = watch.execute("SELECT count(*) FROM users WHERE account_id = %s",
                                     (creds.account_id,)).fetchone()[0]
        sender.join(20)
    assert not sender.is_alive()
    assert_error(result["r"], 404, 2001, f"Account does not exist: {creds.account_id}.")
    assert left == 0


def _sqlite_count(url: str, account_id: str) -> int:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return conn.execute("SELECT count(*) FROM users WHERE account_id = ?", (account_id,)).fetchone()[0]
    finally:
        conn.close()


def _wait_for_a_lock_wait(watch, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = watch.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND wait_event_type = 'Lock'").fetchone()[0]
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError("the server's insert never waited on the account row")


@pytest.fixture
def store(database_url, tmp_path) -> Admin:
    migrate(database_url)
    return Admin(database_url, tmp_path)


def test_user_and_app_creates_for_a_missing_account_are_not_found_not_duplicates(store):
    """The repository tells a foreign-key failure (MissingReference) from a duplicate
    (DuplicateKey) by the driver's error code, on both paths (raw: users; SQLAlchemy: apps)."""
    from sipphones.accounts.models import App, User

    async def go(svc, repo):
        acc = await svc.create_account("gone soon")
        await svc.create_user(acc.id, "kept@example.com")
        with pytest.raises(DuplicateKey):
            await repo.add_user(User(id="dup-user", account_id=acc.id, email="kept@example.com", created_at=1.0))
        await svc.delete_account(acc.id)
        with pytest.raises(MissingReference):
            await repo.add_user(User(id="orphan-user", account_id=acc.id, email="x@example.com", created_at=1.0))
        with pytest.raises(MissingReference):
            await repo.add_app(App(client_id="orphan-app", account_id=acc.id, name="a", secret_hash="h", scopes=(),
                                   created_at=1.0))
        with pytest.raises(NotFoundError, match=f"no account with id {acc.id}"):
            await svc.create_user(acc.id, "y@example.com")
        with pytest.raises(NotFoundError, match="no account with id nope"):
            await svc.create_app("nope")
        return await repo.list_users(acc.id, after_id=None, limit=10)

    assert store.run(go) == ([], 0)


def test_user_creates_racing_the_accounts_delete_are_created_or_not_found(store):
    """Creates from one repository (one server process) and the account's delete from another,
    at once: each create either succeeded before the delete (and its user went with the account)
    or is "no account"; never a duplicate, never another error, no user left."""

    async def go(svc, creator):
        from sipphones.accounts.service import AccountService
        from sipphones.storage.store import SqlRepository

        acc = await svc.create_account("race")
        deleter = SqlRepository.from_url(store.settings.resolved_database_url(), creator.cipher)
        try:
            async def create(n: int):
                await asyncio.sleep(0.001 * (n % 7))
                try:
                    await svc.create_user(acc.id, f"u{n}@example.com")
                except NotFoundError:
                    return "account gone"
                return "created"

            async def delete():
                await asyncio.sleep(0.003)
                await AccountService(deleter).delete_account(acc.id)

            *outcomes, _ = await asyncio.gather(*(create(n) for n in range(40)), delete())
        finally:
            await deleter.close()
        return outcomes, await creator.list_users(acc.id, after_id=None, limit=100)

    outcomes, page = store.run(go)
    assert set(outcomes) <= {"created", "account gone"}
    assert page == ([], 0)
