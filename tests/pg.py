"""A throw-away PostgreSQL database (the test session's, and each benchmark store's)."""

from __future__ import annotations

import uuid
from typing import Callable


def fresh_postgres_database(admin_url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database ``<prefix>_<random>`` on the server of ``admin_url``; return its
    URL and a function that drops it (even with open connections)."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return admin.set(database=name).render_as_string(hide_password=False), drop
