"""The SQLite schema the migrations produce, statement by statement in the order Alembic creates
it (``sqlite_master`` order), at ``REVISION``. ``storage.database.migrate`` gives a new SQLite
file this schema and stamps it at ``REVISION`` with the standard library alone, without
importing Alembic and SQLAlchemy (~0.2 s of a cold ``serve`` on the 2-vCPU machine).

Generated from a database migrated by Alembic; ``tests/test_sqlite_snapshot.py`` checks that this
file is that output and that a file made from it is identical to a migrated one
(``sqlite_master`` row for row, pragmas, the stamped revision). After adding a migration,
regenerate it with ``python -m tests.test_sqlite_snapshot`` (the test fails until then).
PostgreSQL is always migrated by Alembic.
"""
REVISION = '0005'

STATEMENTS = (
    'CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)',
    'CREATE TABLE accounts (\n\tid VARCHAR(32) NOT NULL, \n\tname VARCHAR(255) NOT NULL, \n\t"plan" VARCHAR(16) NOT NULL, \n\tsip_phone_integration BOOLEAN NOT NULL, \n\tunlimited BOOLEAN NOT NULL, \n\tphone_count INTEGER NOT NULL, \n\tcreated_at FLOAT NOT NULL, \n\tPRIMARY KEY (id)\n)',
    "CREATE TABLE apps (\n\tclient_id VARCHAR(64) NOT NULL, \n\taccount_id VARCHAR(32) NOT NULL, \n\tname VARCHAR(128) NOT NULL, \n\tsecret_hash VARCHAR(255) NOT NULL, \n\tscopes TEXT NOT NULL, \n\tpermissions TEXT NOT NULL, \n\tactive BOOLEAN NOT NULL, \n\tcreated_at FLOAT NOT NULL, app_type VARCHAR(24) DEFAULT 'server_to_server' NOT NULL, redirect_uris TEXT DEFAULT '' NOT NULL, public_client BOOLEAN DEFAULT 0 NOT NULL, \n\tPRIMARY KEY (client_id), \n\tFOREIGN KEY(account_id) REFERENCES accounts (id) ON DELETE CASCADE\n)",
    'CREATE INDEX ix_apps_account ON apps (account_id)',
    'CREATE TABLE users (\n\tid VARCHAR(32) NOT NULL, \n\taccount_id VARCHAR(32) NOT NULL, \n\temail VARCHAR(128) NOT NULL, \n\tfirst_name VARCHAR(64) NOT NULL, \n\tlast_name VARCHAR(64) NOT NULL, \n\ttype INTEGER NOT NULL, \n\tstatus VARCHAR(16) NOT NULL, \n\tcreated_at FLOAT NOT NULL, \n\tPRIMARY KEY (id), \n\tFOREIGN KEY(account_id) REFERENCES accounts (id) ON DELETE CASCADE, \n\tCONSTRAINT uq_users_account_email UNIQUE (account_id, email)\n)',
    "CREATE TABLE sip_phones (\n\tid VARCHAR(32) NOT NULL, \n\taccount_id VARCHAR(32) NOT NULL, \n\tuser_id VARCHAR(32) NOT NULL, \n\tuser_email VARCHAR(128) NOT NULL, \n\temail_key VARCHAR(128) NOT NULL, \n\tuser_name VARCHAR(64) NOT NULL, \n\tauthorization_name VARCHAR(64) NOT NULL, \n\tpassword_enc BLOB NOT NULL, \n\tdomain VARCHAR(64) NOT NULL, \n\tregister_server VARCHAR(255) NOT NULL, \n\tproxy_server VARCHAR(255) NOT NULL, \n\ttransport_protocol VARCHAR(8) NOT NULL, \n\tregister_server2 VARCHAR(255) NOT NULL, \n\tproxy_server2 VARCHAR(255) NOT NULL, \n\ttransport_protocol2 VARCHAR(8) NOT NULL, \n\tregister_server3 VARCHAR(255) NOT NULL, \n\tproxy_server3 VARCHAR(255) NOT NULL, \n\ttransport_protocol3 VARCHAR(8) NOT NULL, \n\tregistration_expire_time INTEGER NOT NULL, \n\tvoice_mail VARCHAR(255) NOT NULL, \n\tdisplay_number VARCHAR(64) NOT NULL, \n\tcreated_at FLOAT NOT NULL, \n\tupdated_at FLOAT NOT NULL, version INTEGER DEFAULT '1' NOT NULL, \n\tPRIMARY KEY (id), \n\tFOREIGN KEY(account_id) REFERENCES accounts (id) ON DELETE CASCADE, \n\tFOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, \n\tCONSTRAINT uq_sip_phones_account_email UNIQUE (account_id, email_key)\n)",
    'CREATE INDEX ix_sip_phones_account_id ON sip_phones (account_id, id)',
    'CREATE INDEX ix_sip_phones_user ON sip_phones (user_id)',
    'CREATE TABLE phone_status (\n\tphone_id VARCHAR(32) NOT NULL, \n\taccount_id VARCHAR(32) NOT NULL, \n\tregistered BOOLEAN NOT NULL, \n\tstate VARCHAR(32) NOT NULL, \n\tserver_slot INTEGER, \n\tserver_address VARCHAR(255) NOT NULL, \n\ttransport VARCHAR(8) NOT NULL, \n\tlast_error TEXT NOT NULL, \n\tlast_status_code INTEGER, \n\tlast_success_at FLOAT, \n\tlast_attempt_at FLOAT, \n\tgranted_expires INTEGER, \n\tupdated_at FLOAT NOT NULL, \n\tPRIMARY KEY (phone_id), \n\tFOREIGN KEY(phone_id) REFERENCES sip_phones (id) ON DELETE CASCADE\n)',
    'CREATE TABLE oauth_codes (\n\tcode_hash VARCHAR(64) NOT NULL, \n\tclient_id VARCHAR(64) NOT NULL, \n\taccount_id VARCHAR(32) NOT NULL, \n\tuser_id VARCHAR(32) NOT NULL, \n\tredirect_uri VARCHAR(2048) NOT NULL, \n\tscopes TEXT NOT NULL, \n\tchallenge VARCHAR(128) NOT NULL, \n\tchallenge_method VARCHAR(8) NOT NULL, \n\tcreated_at FLOAT NOT NULL, \n\texpires_at FLOAT NOT NULL, \n\tused_at FLOAT, \n\tgrant_id VARCHAR(32), \n\tPRIMARY KEY (code_hash), \n\tFOREIGN KEY(account_id) REFERENCES accounts (id) ON DELETE CASCADE, \n\tFOREIGN KEY(client_id) REFERENCES apps (client_id) ON DELETE CASCADE, \n\tFOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE\n)',
    'CREATE INDEX ix_oauth_codes_expires ON oauth_codes (expires_at)',
    'CREATE TABLE oauth_grants (\n\tid VARCHAR(32) NOT NULL, \n\tclient_id VARCHAR(64) NOT NULL, \n\taccount_id VARCHAR(32) NOT NULL, \n\tuser_id VARCHAR(32) NOT NULL, \n\tscopes TEXT NOT NULL, \n\trefresh_hash VARCHAR(64) NOT NULL, \n\trefresh_expires_at FLOAT NOT NULL, \n\tcreated_at FLOAT NOT NULL, \n\trevoked_at FLOAT, \n\tPRIMARY KEY (id), \n\tFOREIGN KEY(account_id) REFERENCES accounts (id) ON DELETE CASCADE, \n\tFOREIGN KEY(client_id) REFERENCES apps (client_id) ON DELETE CASCADE, \n\tFOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE\n)',
    'CREATE INDEX ix_oauth_grants_client_user ON oauth_grants (client_id, user_id)',
)

# SQLite's schema cookie as the migrations leave it: one per DDL statement they ran (an
# ALTER TABLE counts, so it may exceed the number of STATEMENTS).
SCHEMA_VERSION = 17

# The stamp Alembic writes into the version table.
STAMP = "INSERT INTO alembic_version (version_num) VALUES ('" + REVISION + "')"
