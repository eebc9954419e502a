"""an explicit version of each SIP phone row

``sip_phones.version``: 1 when a phone is created, one more with every write of its row, in the
statement of the write. The list memo (``phones.rendered``) and the monitor's change detection
(``Repository.phone_versions``) compare it, instead of the password ciphertext (the memo) and
``updated_at`` (the monitor: two writes within one clock tick, or a clock set back, left a change
unseen). Existing phones start at 1: a running server or monitor takes them as new versions once,
re-rendering or re-reading them.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sip_phones', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('sip_phones', schema=None) as batch_op:
        batch_op.drop_column('version')
