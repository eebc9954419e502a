"""Migration 0004: ``sip_phones.version``. Phones stored before it get version 1, a write of the
row bumps it in the write's own statement; downgrading drops the column again (SQLite and
PostgreSQL, through Alembic as ``migrate`` runs it on an existing store)."""

from __future__ import annotations

import sqlalchemy as sa

from sipphones.storage import database
from tests.test_migration_permissions import alembic, fresh_url  # noqa: F401 - the fixture

PHONE_COLUMNS = ("id, account_id, user_id, user_email, email_key, user_name, authorization_name, password_enc, "
                 "domain, register_server, proxy_server, transport_protocol, register_server2, proxy_server2, "
                 "transport_protocol2, register_server3, proxy_server3, transport_protocol3, "
                 "registration_expire_time, voice_mail, display_number, created_at, updated_at")


def _run(url: str, sql: str, params: dict | None = None):
    engine = database.sync_engine(url)
    try:
        with engine.begin() as conn:
            res = conn.execute(sa.text(sql), params or {})
            return res.all() if res.returns_rows else None
    finally:
        engine.dispose()


def test_existing_phones_start_at_version_1_and_downgrade_drops_it(fresh_url):
    alembic(fresh_url, "upgrade", "0003")  # a store as the previous release left it
    _run(fresh_url, "INSERT INTO accounts (id, name, plan, sip_phone_integration, unlimited, phone_count, created_at) "
                    "VALUES ('acc', 'Old account', 'pro', true, false, 2, 0)")
    _run(fresh_url, "INSERT INTO users (id, account_id, email, first_name, last_name, type, status, created_at) "
                    "VALUES ('usr', 'acc', 'a@example.com', '', '', 1, 'active', 0)")
    for pid in ("p1", "p2"):
        _run(fresh_url, f"INSERT INTO sip_phones ({PHONE_COLUMNS}) VALUES (:id, 'acc', 'usr', :email, :email, 'u', "
                        "'u', :pw, 'sip.test', 'r', 'r', 'UDP', '', '', '', '', '', '', 60, '', '', 0, 0)",
             {"id": pid, "email": f"a@example.com.{pid}", "pw": b"x"})

    assert database.migrate(fresh_url) == database.HEAD_REVISION == "0005"
    assert _run(fresh_url, "SELECT id, version FROM sip_phones ORDER BY id") == [("p1", 1), ("p2", 1)]

    alembic(fresh_url, "downgrade", "0003")
    engine = database.sync_engine(fresh_url)
    try:
        assert "version" not in {c["name"] for c in sa.inspect(engine).get_columns("sip_phones")}
    finally:
        engine.dispose()
    assert _run(fresh_url, "SELECT id FROM sip_phones ORDER BY id") == [("p1",), ("p2",)]
