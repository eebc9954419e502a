"""Migration 0005: user-managed OAuth. Apps stored before it are Server-to-Server apps without
redirect URIs (and keep working as such); the code and grant tables exist; downgrading drops them
and the new app columns (SQLite and PostgreSQL, through Alembic as ``migrate`` runs it)."""

from __future__ import annotations

import sqlalchemy as sa

from sipphones.storage import database
from tests.test_migration_permissions import alembic, fresh_url  # noqa: F401 - the fixture
from tests.test_migration_row_version import _run


def test_existing_apps_become_server_to_server_and_downgrade_drops_it(fresh_url):
    alembic(fresh_url, "upgrade", "0004")  # a store as the previous release left it
    _run(fresh_url, "INSERT INTO accounts (id, name, plan, sip_phone_integration, unlimited, phone_count, created_at) "
                    "VALUES ('acc', 'Old account', 'pro', true, false, 0, 0)")
    _run(fresh_url, "INSERT INTO apps (client_id, account_id, name, secret_hash, scopes, permissions, active, "
                    "created_at) VALUES ('cid', 'acc', 'old app', 'sha256$x$y', 'sip_phone:read:admin', "
                    "'SipPhone:Read', true, 0)")

    assert database.migrate(fresh_url) == database.HEAD_REVISION == "0005"
    rows = _run(fresh_url, "SELECT client_id, app_type, redirect_uris, public_client FROM apps")
    assert [(r[0], r[1], r[2], bool(r[3])) for r in rows] == [("cid", "server_to_server", "", False)]
    engine = database.sync_engine(fresh_url)
    try:
        assert {"oauth_codes", "oauth_grants"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()

    alembic(fresh_url, "downgrade", "0004")
    engine = database.sync_engine(fresh_url)
    try:
        inspector = sa.inspect(engine)
        assert not {"oauth_codes", "oauth_grants"} & set(inspector.get_table_names())
        assert not {"app_type", "redirect_uris", "public_client"} & {c["name"] for c in inspector.get_columns("apps")}
    finally:
        engine.dispose()
    assert _run(fresh_url, "SELECT client_id FROM apps") == [("cid",)]
