"""user-managed OAuth apps: app type, redirect URIs, public clients; authorization codes and grants

``apps`` gains ``app_type`` (existing apps are Server-to-Server), ``redirect_uris`` (space
separated) and ``public_client``. ``oauth_codes`` holds authorization codes (by the SHA-256 of
the code, with the PKCE challenge, the redirect URI and when it was used), ``oauth_grants`` one
user's authorization of one app (the SHA-256 of the current refresh secret, its expiry, when it
was revoked). Nothing secret is stored in clear.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# users.id is compared byte-wise on PostgreSQL (0002): a column referring to it is too.
USER_ID = sa.String(length=32).with_variant(sa.String(length=32, collation="C"), "postgresql")


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both databases (no table copy on SQLite).
    op.add_column('apps', sa.Column('app_type', sa.String(length=24), server_default='server_to_server',
                                    nullable=False))
    op.add_column('apps', sa.Column('redirect_uris', sa.Text(), server_default='', nullable=False))
    op.add_column('apps', sa.Column('public_client', sa.Boolean(), server_default=sa.false(), nullable=False))

    op.create_table('oauth_codes',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', USER_ID, nullable=False),
    sa.Column('redirect_uri', sa.String(length=2048), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('challenge', sa.String(length=128), nullable=False),
    sa.Column('challenge_method', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('used_at', sa.Float(), nullable=True),
    sa.Column('grant_id', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_id'], ['apps.client_id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code_hash')
    )
    with op.batch_alter_table('oauth_codes', schema=None) as batch_op:
        batch_op.create_index('ix_oauth_codes_expires', ['expires_at'], unique=False)

    op.create_table('oauth_grants',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', USER_ID, nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('refresh_hash', sa.String(length=64), nullable=False),
    sa.Column('refresh_expires_at', sa.Float(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('revoked_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_id'], ['apps.client_id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('oauth_grants', schema=None) as batch_op:
        batch_op.create_index('ix_oauth_grants_client_user', ['client_id', 'user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oauth_grants', schema=None) as batch_op:
        batch_op.drop_index('ix_oauth_grants_client_user')
    op.drop_table('oauth_grants')
    with op.batch_alter_table('oauth_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_oauth_codes_expires')
    op.drop_table('oauth_codes')
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('public_client')
        batch_op.drop_column('redirect_uris')
        batch_op.drop_column('app_type')
