"""monitors sharing a fleet: their leases and which one keeps each phone

``monitors``: one row per running ``sipphones monitor`` process, its lease renewed by heartbeats.
``phone_keepers``: the monitor that keeps each phone registered and the Contact its binding holds
at the registrar (a monitor taking a dead one's phone over removes that binding).

Revision ID: 0006
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'monitors',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('started_at', sa.Float(), nullable=False),
        sa.Column('heartbeat_at', sa.Float(), nullable=False),
        sa.Column('lease_seconds', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'phone_keepers',
        sa.Column('phone_id', sa.String(length=32).with_variant(sa.String(length=32, collation='C'), 'postgresql'),
                  nullable=False),
        sa.Column('monitor_id', sa.String(length=32), nullable=False),
        sa.Column('contact', sa.String(length=512), nullable=False),
        sa.Column('claimed_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['phone_id'], ['sip_phones.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('phone_id'),
    )
    op.create_index('ix_phone_keepers_monitor', 'phone_keepers', ['monitor_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_phone_keepers_monitor', table_name='phone_keepers')
    op.drop_table('phone_keepers')
    op.drop_table('monitors')
