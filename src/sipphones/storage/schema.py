"""Tables (SQLAlchemy Core). Alembic migrations under ``migrations/`` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    Boolean, Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Table, Text,
    UniqueConstraint, false as sa_false,
)

metadata = MetaData()

# Keys that lists page through with ORDER BY: compared byte-wise on PostgreSQL too (migration 0002),
# so that id order is creation order whatever the database's locale.
ORDERED_ID = String(32).with_variant(String(32, collation="C"), "postgresql")

accounts = Table(
    "accounts", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("plan", String(16), nullable=False),
    Column("sip_phone_integration", Boolean, nullable=False),
    Column("unlimited", Boolean, nullable=False, default=False),
    Column("phone_count", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
)

users = Table(
    "users", metadata,
    Column("id", ORDERED_ID, primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(128), nullable=False),      # stored lower-case
    Column("first_name", String(64), nullable=False, default=""),
    Column("last_name", String(64), nullable=False, default=""),
    Column("type", Integer, nullable=False, default=1),
    Column("status", String(16), nullable=False, default="active"),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("account_id", "email", name="uq_users_account_email"),
)

apps = Table(
    "apps", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("scopes", Text, nullable=False),             # space separated
    Column("permissions", Text, nullable=False),        # space separated
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
    # migration 0005: user-managed apps beside Server-to-Server ones
    Column("app_type", String(24), nullable=False, default="server_to_server", server_default="server_to_server"),
    Column("redirect_uris", Text, nullable=False, default="", server_default=""),  # space separated
    Column("public_client", Boolean, nullable=False, default=False, server_default=sa_false()),
    Index("ix_apps_account", "account_id"),
)

# User-managed OAuth (migration 0005): codes and grants, their secrets only as SHA-256 digests.
oauth_codes = Table(
    "oauth_codes", metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), ForeignKey("apps.client_id", ondelete="CASCADE"), nullable=False),
    Column("account_id", String(32), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ORDERED_ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", String(2048), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("challenge", String(128), nullable=False),
    Column("challenge_method", String(8), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Column("grant_id", String(32), nullable=True),
    Index("ix_oauth_codes_expires", "expires_at"),
)

oauth_grants = Table(
    "oauth_grants", metadata,
    Column("id", String(32), primary_key=True),
    Column("client_id", String(64), ForeignKey("apps.client_id", ondelete="CASCADE"), nullable=False),
    Column("account_id", String(32), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ORDERED_ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("refresh_hash", String(64), nullable=False),
    Column("refresh_expires_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Index("ix_oauth_grants_client_user", "client_id", "user_id"),
)

sip_phones = Table(
    "sip_phones", metadata,
    Column("id", ORDERED_ID, primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ORDERED_ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("user_email", String(128), nullable=False),  # as given (with any platform suffix)
    Column("email_key", String(128), nullable=False),   # lower-case user_email: the uniqueness key
    Column("user_name", String(64), nullable=False),
    Column("authorization_name", String(64), nullable=False),
    Column("password_enc", LargeBinary, nullable=False),  # AES-GCM, never clear text
    Column("domain", String(64), nullable=False),
    Column("register_server", String(255), nullable=False, default=""),
    Column("proxy_server", String(255), nullable=False, default=""),
    Column("transport_protocol", String(8), nullable=False, default=""),
    Column("register_server2", String(255), nullable=False, default=""),
    Column("proxy_server2", String(255), nullable=False, default=""),
    Column("transport_protocol2", String(8), nullable=False, default=""),
    Column("register_server3", String(255), nullable=False, default=""),
    Column("proxy_server3", String(255), nullable=False, default=""),
    Column("transport_protocol3", String(8), nullable=False, default=""),
    Column("registration_expire_time", Integer, nullable=False, default=60),
    Column("voice_mail", String(255), nullable=False, default=""),
    Column("display_number", String(64), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # 1 when created, one more with every write of the row, in the statement of the write (migration 0004)
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    UniqueConstraint("account_id", "email_key", name="uq_sip_phones_account_email"),
    Index("ix_sip_phones_account_id", "account_id", "id"),
    Index("ix_sip_phones_user", "user_id"),
)

# Per-phone registration health, written by the monitor (one row per phone).
phone_status = Table(
    "phone_status", metadata,
    Column("phone_id", ORDERED_ID, ForeignKey("sip_phones.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("registered", Boolean, nullable=False, default=False),
    Column("state", String(32), nullable=False, default="unknown"),
    Column("server_slot", Integer, nullable=True),
    Column("server_address", String(255), nullable=False, default=""),
    Column("transport", String(8), nullable=False, default=""),
    Column("last_error", Text, nullable=False, default=""),
    Column("last_status_code", Integer, nullable=True),
    Column("last_success_at", Float, nullable=True),
    Column("last_attempt_at", Float, nullable=True),
    Column("granted_expires", Integer, nullable=True),
    Column("updated_at", Float, nullable=False),
)
