"""byte-ordered ids on PostgreSQL

Ids start with their creation time in an alphabet written in ASCII order, and the lists page by
``ORDER BY id`` (keyset). PostgreSQL compares text with the database's collation, and under a
language collation (en-US and the like) 'a' sorts before 'Z': the lists would no longer come out
oldest first, and a phone added during a walk could land before the cursor. The "C" collation
compares bytes, whatever the database's locale. SQLite already compares bytes (BINARY).

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# (table, column): the keys that lists order by, and the columns that refer to them.
COLUMNS = (("users", "id"), ("sip_phones", "id"), ("sip_phones", "user_id"), ("phone_status", "phone_id"))


def _alter(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, existing_type=sa.String(length=32), existing_nullable=False,
                        type_=sa.String(length=32, collation=collation))


def upgrade() -> None:
    _alter("C")


def downgrade() -> None:
    _alter(None)
