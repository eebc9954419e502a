"""Migration 0003: apps stored before the users endpoints checked role permissions get the user
permissions their SIP phone role implies (SQLite and PostgreSQL, through Alembic as ``migrate``
runs it on an existing store); downgrading takes them away again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sipphones.storage import database
from tests.conftest import POSTGRES_URL
from tests.pg import fresh_postgres_database

BEFORE_AFTER = {
    "defaults": ("SipPhone:Read SipPhone:Edit", "SipPhone:Read SipPhone:Edit User:Read User:Edit"),
    "reader": ("SipPhone:Read", "SipPhone:Read User:Read"),
    "editor": ("SipPhone:Edit", "SipPhone:Edit User:Read User:Edit"),
    "none": ("", ""),
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url, drop = fresh_postgres_database(POSTGRES_URL, "sipphones_migration")
    yield url
    drop()


def alembic(url: str, action: str, revision: str) -> None:
    from alembic import command

    engine = database.sync_engine(url)
    try:
        cfg = database._alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
    finally:
        engine.dispose()


def stored_permissions(url: str) -> dict[str, str]:
    engine = database.sync_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT client_id, permissions FROM apps")).all())
    finally:
        engine.dispose()


def test_existing_apps_get_the_user_permissions_their_role_implies(fresh_url):
    alembic(fresh_url, "upgrade", "0002")  # a store as the previous release left it
    engine = database.sync_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO accounts (id, name, plan, sip_phone_integration, unlimited, phone_count, created_at) "
                "VALUES ('acc', 'Old account', 'pro', true, false, 0, 0)"))
            for client_id, (before, _) in BEFORE_AFTER.items():
                conn.execute(sa.text(
                    "INSERT INTO apps (client_id, account_id, name, secret_hash, scopes, permissions, active, "
                    "created_at) VALUES (:c, 'acc', 'old app', 'x', 'sip_phone:read:admin', :p, true, 0)"),
                    {"c": client_id, "p": before})
    finally:
        engine.dispose()

    assert database.migrate(fresh_url) == database.HEAD_REVISION == "0005"
    assert stored_permissions(fresh_url) == {c: after for c, (_, after) in BEFORE_AFTER.items()}

    alembic(fresh_url, "downgrade", "0002")
    assert stored_permissions(fresh_url) == {c: before for c, (before, _) in BEFORE_AFTER.items()}
