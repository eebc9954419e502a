"""Per-operation costs of the request path, in-process (no HTTP, no load generator): where a
request's CPU goes (bench/README.md).

    .venv/bin/python bench/micro.py [--no-postgres] [--json PATH]

1. Whole requests: the Starlette app called directly with an ASGI scope, one request at a time,
   for create, list page of 30 and update, on SQLite (and PostgreSQL): CPU µs per request; and
   the list page with none of its items rendered yet (``phones.rendered`` emptied before each).
2. One primary-key SELECT (the account lookup every request makes) through each database path:
   the repository (SQLAlchemy async, pool checkout per call), SQLAlchemy async on a held
   connection, raw aiosqlite / psycopg async on a held connection, and blocking sqlite3.
3. Pure-Python pieces: row -> SipPhone for 30 rows, SipPhone -> response dict, orjson,
   token verification (cached), page-token issue, validation, id, AES-GCM.

CPU is ``time.process_time`` (all threads of this process, so aiosqlite's worker thread counts);
each figure is the median of 5 repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import from the repository root, not from bench/ itself.
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import seed  # noqa: E402
from bench.workload import Workload  # noqa: E402

REPEAT = 5


async def _timed(fn, n: int) -> float:
    """Median over REPEAT of CPU µs per call of the coroutine function ``fn``."""
    out = []
    for _ in range(REPEAT):
        t = time.process_time()
        for _ in range(n):
            await fn()
        out.append((time.process_time() - t) / n * 1e6)
    return statistics.median(out)


def _timed_sync(fn, n: int) -> float:
    out = []
    for _ in range(REPEAT):
        t = time.process_time()
        for _ in range(n):
            fn()
        out.append((time.process_time() - t) / n * 1e6)
    return statistics.median(out)


class InProcessApp:
    """The real app (``create_app``) driven through ASGI calls, lifespan included."""

    def __init__(self, url: str, data_dir: Path):
        os.environ["SIPPHONES_DATABASE_URL"] = url
        os.environ["SIPPHONES_DATA_DIR"] = str(data_dir)
        from sipphones.api.app import create_app
        from sipphones.config import load_settings

        self.app = create_app(load_settings(database_url=url, data_dir=str(data_dir)), run_migrations=False)
        self._lifespan: asyncio.Task | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        started = asyncio.Event()
        first = True

        async def receive():
            nonlocal first
            if first:
                first = False
                return {"type": "lifespan.startup"}
            await self._stop.wait()
            return {"type": "lifespan.shutdown"}

        async def send(msg):
            if msg["type"] == "lifespan.startup.complete":
                started.set()
            elif msg["type"] == "lifespan.startup.failed":
                raise RuntimeError(msg.get("message"))

        self._lifespan = asyncio.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                                      receive, send))
        await asyncio.wait_for(started.wait(), 30)

    async def stop(self) -> None:
        self._stop.set()
        if self._lifespan:
            await asyncio.wait_for(self._lifespan, 30)

    async def call(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
        p, _, q = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": p, "raw_path": p.encode(), "query_string": q.encode(), "root_path": "",
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
                 + [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
        done = False
        status = 0

        async def receive():
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)

        async def send(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]

        await self.app(scope, receive, send)
        return status


def prepare_request_store(url: str, data_dir: Path, n: int) -> tuple:
    seed.prepare_schema(url)
    c_create = seed.provision_account(url, data_dir, "micro-create")
    c_list = seed.provision_account(url, data_dir, "micro-list")
    seed.seed_users(url, c_create.account_id, "c", (REPEAT + 1) * n // 10 + 100)
    users = seed.seed_users(url, c_list.account_id, "l", 100)
    ids = seed.seed_phones(url, data_dir, c_list.account_id, "l", users, 1000)
    return c_create, c_list, ids


async def request_costs(url: str, data_dir: Path, n: int, prepared: tuple) -> dict:
    c_create, c_list, ids = prepared
    app = InProcessApp(url, data_dir)
    await app.start()
    try:
        st = app.app.state.sipphones
        from sipphones.auth.scopes import DEFAULT_APP_SCOPES
        from sipphones.accounts.models import ALL_PERMISSIONS

        def token(c: seed.Credentials) -> str:
            return st.tokens.issue(account_id=c.account_id, client_id=c.client_id, scopes=DEFAULT_APP_SCOPES,
                                   permissions=ALL_PERMISSIONS)[0]

        loads = {
            "create": Workload("create", "POST", "/v2/sip_phones", token(c_create), prefix="c", expect=201),
            "list": Workload("list", "GET", "/v2/sip_phones/phones?page_size=30", token(c_list)),
            "update": Workload("update", "PATCH", "/v2/sip_phones/phones/{id}", token(c_list), ids=ids, expect=204),
        }
        out = {}
        for name, w in loads.items():
            counter = iter(range(10**9))

            async def one(w=w, counter=counter):
                path, body = w.target(next(counter))
                status = await app.call(w.method, path, w.headers(), body)
                if status != w.expect:
                    raise RuntimeError(f"{w.name}: {status}")

            for _ in range(50):
                await one()
            out[name] = await _timed(one, n)

        # A page none of whose phones is rendered yet (first read since they changed): the memo
        # emptied before each request, so every item is read, decrypted and rendered.
        w = loads["list"]

        async def cold_list():
            st.current_items.clear()
            path, body = w.target(0)
            if await app.call(w.method, path, w.headers(), body) != w.expect:
                raise RuntimeError("cold list failed")

        out["list, no item rendered yet"] = await _timed(cold_list, n)
        return out
    finally:
        await app.stop()


async def select_costs(url: str, data_dir: Path, n: int, creds: seed.Credentials) -> dict:
    from sqlalchemy import select
    from sqlalchemy.engine import make_url

    from sipphones.storage import schema as t
    from sipphones.storage.crypto import PasswordCipher
    from sipphones.storage.store import SqlRepository

    repo = SqlRepository.from_url(url, PasswordCipher(seed.keys_for(data_dir).sip_password))
    out = {}
    try:
        out["repository.get_account (SQLAlchemy async, checkout per call)"] = await _timed(
            lambda: repo.get_account(creds.account_id), n)
        async with repo.engine.connect() as conn:
            q = select(t.accounts).where(t.accounts.c.id == creds.account_id)

            async def held():
                (await conn.execute(q)).first()

            out["SQLAlchemy async, held connection, prebuilt statement"] = await _timed(held, n)
    finally:
        await repo.close()
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        import sqlite3

        sql = "SELECT * FROM accounts WHERE id = ?"
        try:  # a reference figure only: not a dependency of sipphones (pip install aiosqlite)
            import aiosqlite
        except ImportError:
            aiosqlite = None
        if aiosqlite is not None:
            async with aiosqlite.connect(u.database) as db:
                async def raw():
                    async with db.execute(sql, (creds.account_id,)) as cur:
                        await cur.fetchone()

                out["aiosqlite, held connection"] = await _timed(raw, n)
        con = sqlite3.connect(u.database)
        out["sqlite3 blocking, held connection"] = _timed_sync(
            lambda: con.execute(sql, (creds.account_id,)).fetchone(), n)
        con.close()
    else:
        import psycopg

        conninfo = u.set(drivername="postgresql").render_as_string(hide_password=False)
        sql = "SELECT * FROM accounts WHERE id = %s"
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            async def raw():
                cur = await conn.execute(sql, (creds.account_id,))
                await cur.fetchone()

            out["psycopg async, held connection"] = await _timed(raw, n)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            out["psycopg blocking, held connection"] = _timed_sync(
                lambda: conn.execute(sql, (creds.account_id,)).fetchone(), n)
    return out


def python_costs(url: str, data_dir: Path, n: int) -> dict:
    import orjson
    from sqlalchemy import select

    from sipphones.api.responses import tracking_id
    from sipphones.api.shapes import current_phone, legacy_fields
    from sipphones.api.sip_phones import LEGACY_CREATE_REQUIRED
    from sipphones.auth.tokens import TokenService
    from sipphones.ids import new_id
    from sipphones.phones.pagination import PageTokens
    from sipphones.phones.validation import validate_phone_fields
    from sipphones.storage import schema as t
    from sipphones.storage.crypto import PasswordCipher
    from sipphones.storage.database import sync_engine
    from sipphones.storage.raw.statements import _PHONE_COLUMNS
    from sipphones.storage.store import SqlRepository
    from bench.workload import CREATE_BODY

    keys = seed.keys_for(data_dir)
    cipher = PasswordCipher(keys.sip_password)
    eng = sync_engine(url)
    with eng.connect() as conn:
        rows = conn.execute(select(*_PHONE_COLUMNS).order_by(t.sip_phones.c.id).limit(30)).all()
    eng.dispose()
    repo = SqlRepository.__new__(SqlRepository)
    repo.cipher = cipher
    phones = [repo._phone(r) for r in rows]
    dicts = [current_phone(p) for p in phones]
    page = {"next_page_token": "x" * 120, "page_size": 30, "phones": dicts}
    tokens = TokenService(keys.access_token)
    tok, _ = tokens.issue(account_id="A" * 22, client_id="B" * 22, scopes=("sip_phone:read:admin",), permissions=())
    tokens.verify(tok)
    pt = PageTokens(keys.page_token)
    body = dict(CREATE_BODY, user_email="c1@bench.example")
    m = max(1, n // 10)
    return {
        "30 rows -> SipPhone (decrypt, enums, dataclasses)": _timed_sync(lambda: [repo._phone(r) for r in rows], m),
        "30 SipPhone -> current-set dict": _timed_sync(lambda: [current_phone(p) for p in phones], m),
        "orjson.dumps of a 30-phone page": _timed_sync(lambda: orjson.dumps(page), n),
        "access token verify (cached)": _timed_sync(lambda: tokens.verify(tok), n),
        "next_page_token issue": _timed_sync(lambda: pt.issue(account_id="A" * 22, search=None, after_id="x" * 22,
                                                              page_number=2, now=time.time()), n),
        "validate legacy create body": _timed_sync(
            lambda: validate_phone_fields(legacy_fields(body), required=LEGACY_CREATE_REQUIRED), n),
        "new_id + tracking_id": _timed_sync(lambda: (new_id(), tracking_id()), n),
        "AES-GCM encrypt one password": _timed_sync(lambda: cipher.encrypt("s3cretPass", context="x" * 22), n),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--no-postgres", action="store_true")
    p.add_argument("--postgres-url", default=os.environ.get("SIPPHONES_BENCH_POSTGRES_URL",
                                                            "postgresql://postgres@127.0.0.1:5432/test"))
    p.add_argument("-n", type=int, default=500, help="calls per repetition")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()

    from bench.run import Cleanup, create_pg_database

    cleanup = Cleanup()
    work = Path(tempfile.mkdtemp(prefix="sipphones-micro-"))
    cleanup.add("work directory", lambda: __import__("shutil").rmtree(work, ignore_errors=True))
    results: dict = {}
    try:
        stores = [("sqlite", f"sqlite:///{work / 'req' / 'sipphones.db'}", f"sqlite:///{work / 'sel' / 'sipphones.db'}")]
        if not args.no_postgres:
            stores.append(("postgres", create_pg_database(args.postgres_url, cleanup),
                           create_pg_database(args.postgres_url, cleanup)))
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:  # pragma: no cover
            runner = asyncio.run
        for name, req_url, sel_url in stores:
            prepared = prepare_request_store(req_url, work / f"req-{name}", args.n)
            results[f"{name}: whole request, in-process (CPU us)"] = runner(
                request_costs(req_url, work / f"req-{name}", args.n, prepared))
            seed.prepare_schema(sel_url)
            creds = seed.provision_account(sel_url, work / f"sel-{name}", "micro-select")
            results[f"{name}: one primary-key SELECT (CPU us)"] = runner(
                select_costs(sel_url, work / f"sel-{name}", args.n * 2, creds))
        results["python pieces (CPU us)"] = python_costs(stores[0][1], work / "req-sqlite", args.n * 4)
    finally:
        cleanup.run()
    for section, values in results.items():
        print(f"\n{section}")
        for k, v in values.items():
            print(f"  {v:9.1f}  {k}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
