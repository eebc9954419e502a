"""user role permissions for existing apps

The users endpoints now check the app's role permissions as the SIP phone endpoints do:
``User:Read`` to list users, ``User:Edit`` to create and delete them (Zoom's Users API). Before,
they checked the scopes only, and an app's stored permissions were its SIP phone role alone.

Existing apps are given the user permissions their SIP phone role implies, so that nothing an app
was meant to do stops working: any SIP phone permission brings ``User:Read`` (creating a phone
names a user of the account), ``SipPhone:Edit`` brings ``User:Edit`` as well. An app created with
the old defaults (both SIP phone permissions) thus holds all four, as a new app does; an app whose
role only reads SIP phones can still list users but no longer create or delete them, which was
the defect. Apps with no permissions get none. Tokens issued before the upgrade carry the old
permissions until they expire (at most the token lifetime, 1 hour by default).

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

USER_PERMISSIONS = ("User:Read", "User:Edit")

apps = sa.table("apps", sa.column("client_id", sa.String), sa.column("permissions", sa.Text))


def granted(permissions: list[str]) -> list[str]:
    """The stored SIP phone role with the user permissions it implies (order kept, no duplicates)."""
    out = list(permissions)
    extra = []
    if "SipPhone:Read" in out or "SipPhone:Edit" in out:
        extra.append("User:Read")
    if "SipPhone:Edit" in out:
        extra.append("User:Edit")
    return out + [p for p in extra if p not in out]


def _rewrite(change) -> None:
    conn = op.get_bind()
    for client_id, text in conn.execute(sa.select(apps.c.client_id, apps.c.permissions)).all():
        before = text.split()
        after = change(before)
        if after != before:
            conn.execute(apps.update().where(apps.c.client_id == client_id).values(permissions=" ".join(after)))


def upgrade() -> None:
    _rewrite(granted)


def downgrade() -> None:
    _rewrite(lambda permissions: [p for p in permissions if p not in USER_PERMISSIONS])
