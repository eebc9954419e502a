"""Where a request's time goes on PostgreSQL, one operation at a time, in-process (no HTTP):

    .venv/bin/python bench/pg_costs.py [--postgres-url URL] [-n 300]

On a fresh database (created and dropped here): CPU µs and wall µs per call, one call at a time,
of each statement a create and a list page make on the hot path (the app check, the user lookup,
a page of (id, version) pairs, a page of users), then the same ``SELECT 1`` through a pool
checkout and on a held connection (the pool's hand-off), a phone create alone and 30 creates of
one account sent together (a group: ``storage.raw.pg_group``) and each alone
(``SIPPHONES_DATABASE_GROUP_CREATES=1``), per create. Medians of 5 repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def _timed(name: str, fn, n: int, per: int = 1) -> None:
    for _ in range(10):
        await fn()
    cpu, wall = [], []
    for _ in range(5):
        t, w = time.process_time(), time.perf_counter()
        for _ in range(n):
            await fn()
        cpu.append((time.process_time() - t) / (n * per) * 1e6)
        wall.append((time.perf_counter() - w) / (n * per) * 1e6)
    print(f"  {name:52s} {statistics.median(cpu):7.0f} us CPU {statistics.median(wall):8.0f} us wall")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("-n", type=int, default=200, help="calls per repetition")
    args = ap.parse_args()

    from sipphones.ids import new_id
    from sipphones.phones.models import ServerSet, SipPhone, Transport
    from sipphones.storage.database import migrate
    from sipphones.storage.store import SqlRepository
    from tests.pg import fresh_postgres_database
    from tests.servers import Admin

    url, drop = fresh_postgres_database(args.postgres_url, "sipphones_pgcosts")
    try:
        migrate(url)
        admin = Admin(url, Path(tempfile.mkdtemp(prefix="sipphones-pgcosts-")))
        creds = admin.account(users=("alice@example.com",))
        acc = creds.account_id
        n = args.n

        def phone(email: str) -> SipPhone:
            now = time.time()
            return SipPhone(id=new_id(), account_id=acc, user_email=email, user_name="1001",
                            authorization_name="1001", password="pw", domain="sip.test",
                            servers=(ServerSet("192.0.2.1", "", Transport.UDP), ServerSet(), ServerSet()),
                            created_at=now, updated_at=now)

        async def go(svc, repo: SqlRepository):
            users = [await svc.create_user(acc, f"u{i}@example.com") for i in range(40)]
            alice = await repo.get_user_by_email(acc, "alice@example.com")
            pool = await repo.hot.pool()
            print(f"PostgreSQL costs per call ({n} calls x 5, one at a time; the machine's load shows in wall time):")
            await _timed("app check (hot path)", lambda: repo.get_active_app_account(creds.client_id, acc), n)
            await _timed("user lookup by address (hot path)",
                         lambda: repo.get_user_by_emails(acc, ("alice@example.com",)), n)
            await _timed("page of 30 (id, version) with its count",
                         lambda: repo.list_phone_versions(acc, after_id=None, offset=0, limit=30), n)
            await _timed("users page of 30 with its count", lambda: repo.list_users(acc, after_id=None, limit=31), n)

            async def checkout():
                async with pool.connection() as conn:
                    await (await conn.execute("SELECT 1")).fetchone()
            await _timed("SELECT 1 through a pool checkout", checkout, n)
            conn = await pool.getconn()
            try:
                async def held():
                    await (await conn.execute("SELECT 1")).fetchone()
                await _timed("SELECT 1 on a held connection", held, n)
            finally:
                await pool.putconn(conn)
            k = iter(range(10**9))
            await _timed("phone create, alone", lambda: repo.add_phone(phone(f"p{next(k)}@x.example"), alice.id), n)
            alone = SqlRepository.from_url(url, repo.cipher, pools=admin.settings.postgres_tuning()._replace(group=1))
            try:
                for label, r in (("30 creates at once, in groups", repo), ("30 creates at once, each alone", alone)):
                    async def burst(r=r):
                        await asyncio.gather(*(r.add_phone(phone(f"b{next(k)}@x.example"), users[i].id)
                                               for i in range(30)))
                    await _timed(label + ", per create", burst, max(1, n // 30), per=30)
            finally:
                await alone.close()

        admin.run(go)
    finally:
        drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
