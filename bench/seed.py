"""Fast data set-up for the benchmark: accounts and apps through the project's own service, bulk
users and phones straight into the tables (SQLite executemany, PostgreSQL COPY).

Going through the API would take hours for a million phones, so bulk rows are written with the
project's own pieces: its table definitions (``sipphones.storage.schema``), its id generator, and its
``PasswordCipher`` with the sub-key derived from the server's data directory, so the server decrypts
every seeded password exactly as it decrypts its own (AES-GCM with the phone id as associated data).
``accounts.phone_count`` is set to the number of phones seeded, as the server's own inserts keep it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sqlalchemy.engine import make_url

from sipphones.accounts.models import ALL_PERMISSIONS, Plan
from sipphones.accounts.service import AccountService
from sipphones.auth.scopes import DEFAULT_APP_SCOPES
from sipphones.ids import new_id
from sipphones.phones.rules import LEGACY_SUFFIXES
from sipphones.storage import schema
from sipphones.storage.crypto import PasswordCipher
from sipphones.storage.database import migrate
from sipphones.storage.keys import Keys, load_master_key
from sipphones.storage.store import SqlRepository

# Each user owns up to ten phones: the plain address and one per legacy platform suffix.
VARIANTS = ("",) + LEGACY_SUFFIXES
EMAIL_DOMAIN = "bench.example"


def user_email(prefix: str, n: int) -> str:
    return f"{prefix}{n}@{EMAIL_DOMAIN}"


def phone_email(prefix: str, k: int) -> str:
    """The k-th distinct phone address of the users ``prefix0``, ``prefix1``, ... (ten per user)."""
    return user_email(prefix, k // len(VARIANTS)) + VARIANTS[k % len(VARIANTS)]


@dataclass(frozen=True)
class Credentials:
    account_id: str
    client_id: str
    client_secret: str


def keys_for(data_dir: Path) -> Keys:
    """The server's sub-keys (the master key is created in ``data_dir`` on first use, as the server does)."""
    return Keys.derive(load_master_key("", data_dir))


def provision_account(url: str, data_dir: Path, name: str) -> Credentials:
    """An unlimited (no rate limits) business account with an app holding every SIP phone scope."""

    async def go() -> Credentials:
        repo = SqlRepository.from_url(url, PasswordCipher(keys_for(data_dir).sip_password))
        try:
            svc = AccountService(repo)
            acc = await svc.create_account(name, Plan.BUSINESS, sip_phone_integration=True, unlimited=True)
            app = await svc.create_app(acc.id, f"{name} app", tuple(DEFAULT_APP_SCOPES), tuple(ALL_PERMISSIONS))
            return Credentials(acc.id, app.app.client_id, app.client_secret)
        finally:
            await repo.close()

    return asyncio.run(go())


def prepare_schema(url: str) -> None:
    migrate(url)


class _Writer:
    """Bulk rows into one table, by column name, for SQLite or PostgreSQL."""

    def __init__(self, url: str):
        u = make_url(url)
        self.backend = u.get_backend_name()
        if self.backend == "sqlite":
            self.conn = sqlite3.connect(u.database, isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout=30000")
            self.conn.execute("PRAGMA synchronous=OFF")  # a bulk load: durability comes from the final commit
            self.conn.execute("PRAGMA cache_size=-262144")
        elif self.backend in ("postgresql", "postgres"):
            import psycopg

            self.conn = psycopg.connect(u.set(drivername="postgresql").render_as_string(hide_password=False))
        else:
            raise ValueError(f"unsupported database {self.backend}")

    def insert(self, table: str, columns: list[str], rows: Iterator[tuple], batch: int = 20000) -> int:
        n = 0
        if self.backend == "sqlite":
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            self.conn.execute("BEGIN")
            chunk: list[tuple] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) >= batch:
                    self.conn.executemany(sql, chunk)
                    n += len(chunk)
                    chunk.clear()
            if chunk:
                self.conn.executemany(sql, chunk)
                n += len(chunk)
            self.conn.execute("COMMIT")
            return n
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        self.conn.commit()
        return n

    def execute(self, sql_sqlite: str, sql_pg: str, params: tuple) -> None:
        if self.backend == "sqlite":
            self.conn.execute(sql_sqlite, params)
        else:
            self.conn.execute(sql_pg, params)
            self.conn.commit()

    def scalar(self, sql_sqlite: str, sql_pg: str, params: tuple):
        if self.backend == "sqlite":
            return self.conn.execute(sql_sqlite, params).fetchone()[0]
        return self.conn.execute(sql_pg, params).fetchone()[0]

    def analyze(self) -> None:
        if self.backend == "sqlite":
            self.conn.execute("ANALYZE")
        else:
            self.conn.execute("ANALYZE")
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def _columns_or_fail(table, provided: set[str]) -> list[str]:
    """The table's columns we fill; fail loudly when the schema grew a required column we do not know."""
    missing = [c.name for c in table.c if c.name not in provided and not c.nullable and c.default is None
               and c.server_default is None]
    if missing:
        raise RuntimeError(f"bench/seed.py does not know how to fill {table.name}.{', '.join(missing)}: update it")
    return [c.name for c in table.c if c.name in provided]


def _sequential_ids(count: int, start_ms: int) -> Iterator[str]:
    """Ids in the server's format (8 chars of milliseconds + 14 random), strictly increasing, one
    millisecond apart so every seeded id sorts before anything the server creates later."""
    for i in range(count):
        yield new_id(now_ms=start_ms + i)


def seed_users(url: str, account_id: str, prefix: str, count: int) -> list[str]:
    """``count`` users ``{prefix}{n}@bench.example``; returns their ids in order."""
    now = time.time()
    ids = list(_sequential_ids(count, int(now * 1000) - 10 * 86400 * 1000))
    values = {
        "id": None, "account_id": account_id, "email": None, "first_name": "Bench", "last_name": None,
        "type": 1, "status": "active", "created_at": now,
    }
    cols = _columns_or_fail(schema.users, set(values))

    def rows():
        for n, uid in enumerate(ids):
            v = dict(values, id=uid, email=user_email(prefix, n), last_name=str(n))
            yield tuple(v[c] for c in cols)

    w = _Writer(url)
    try:
        w.insert("users", cols, rows())
        w.analyze()
    finally:
        w.close()
    return ids


def seed_phones(url: str, data_dir: Path, account_id: str, prefix: str, user_ids: list[str], count: int) -> list[str]:
    """``count`` phones for the users seeded with ``prefix`` (ten per user); returns the phone ids
    in id order and adds ``count`` to the account's ``phone_count``."""
    if count > len(user_ids) * len(VARIANTS):
        raise ValueError("not enough users for that many phones")
    cipher = PasswordCipher(keys_for(data_dir).sip_password)
    now = time.time()
    ids = list(_sequential_ids(count, int(now * 1000) - 2 * count - 60_000))
    template = {
        "id": None, "account_id": account_id, "user_id": None, "user_email": None, "email_key": None,
        "user_name": None, "authorization_name": None, "password_enc": None, "domain": "sip.example.com",
        "register_server": "192.0.2.10", "proxy_server": "192.0.2.10", "transport_protocol": "UDP",
        "register_server2": "", "proxy_server2": "", "transport_protocol2": "",
        "register_server3": "", "proxy_server3": "", "transport_protocol3": "",
        "registration_expire_time": 60, "voice_mail": "4000", "display_number": "",
        "created_at": now, "updated_at": now,
    }
    cols = _columns_or_fail(schema.sip_phones, set(template))
    pos = {c: i for i, c in enumerate(cols)}
    base = [template[c] for c in cols]
    i_id, i_user, i_email, i_key = pos["id"], pos["user_id"], pos["user_email"], pos["email_key"]
    i_name, i_auth, i_pw = pos["user_name"], pos["authorization_name"], pos["password_enc"]

    def rows():
        for k, pid in enumerate(ids):
            row = base.copy()
            email = phone_email(prefix, k)
            row[i_id] = pid
            row[i_user] = user_ids[k // len(VARIANTS)]
            row[i_email] = email
            row[i_key] = email.lower()
            row[i_name] = row[i_auth] = str(100000 + k)
            row[i_pw] = cipher.encrypt(f"pw-{k}", context=pid)
            yield tuple(row)

    w = _Writer(url)
    try:
        w.insert("sip_phones", cols, rows())
        w.execute("UPDATE accounts SET phone_count = phone_count + ? WHERE id = ?",
                  "UPDATE accounts SET phone_count = phone_count + %s WHERE id = %s", (count, account_id))
        w.analyze()
    finally:
        w.close()
    return ids


def phone_count(url: str, account_id: str) -> tuple[int, int]:
    """(rows in sip_phones, accounts.phone_count) for one account."""
    w = _Writer(url)
    try:
        rows = w.scalar("SELECT count(*) FROM sip_phones WHERE account_id = ?",
                        "SELECT count(*) FROM sip_phones WHERE account_id = %s", (account_id,))
        stored = w.scalar("SELECT phone_count FROM accounts WHERE id = ?",
                          "SELECT phone_count FROM accounts WHERE id = %s", (account_id,))
        return int(rows), int(stored)
    finally:
        w.close()
