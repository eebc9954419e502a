"""The hot path's statements: fixed SQL strings (``?`` placeholders; the PostgreSQL runner turns
them into ``%s`` once), run by ``storage.raw.runner``'s runners, and the column orders their rows
are read in (``storage.raw.rows``)."""

from __future__ import annotations

import functools
import operator

from sipphones.phones import fields
from sipphones.storage import schema as t
from sipphones.storage.counts import counted_group_insert, counted_insert

# A phone's columns: its fields' (``phones.fields``, in the table's order) with the owner, the
# timestamps and the row's version, in SipPhone's order: rows are read by position (see
# ``PhoneRows._phone``).
PHONE_COLUMN_NAMES = ("id", "account_id") + fields.COLUMNS[1:] + ("created_at", "updated_at", "version")
_PHONE_COLUMNS = [t.sip_phones.c[n] for n in PHONE_COLUMN_NAMES]
_PHONE_COLS = ", ".join(PHONE_COLUMN_NAMES)
_ACCOUNT_COLS = "a.id, a.name, a.plan, a.sip_phone_integration, a.unlimited, a.created_at"
_USER_COLS = "id, account_id, email, first_name, last_name, type, status, created_at"
# Everything of a phone a PATCH can change, in this order (then account_id, id for the WHERE).
# (Not the version: every UPDATE bumps the stored one, see SQL_UPDATE_PHONE.)
_UPDATABLE = tuple(f.column for f in fields.FIELDS if f.updatable) + ("updated_at",)
_INSERTED = PHONE_COLUMN_NAMES + ("user_id", "email_key")
# A row's values (by column name) as the statement's parameters, in its column order.
_inserted_values = operator.itemgetter(*_INSERTED)
_updatable_values = operator.itemgetter(*_UPDATABLE)

SQL_ACTIVE_APP_ACCOUNT = (
    f"SELECT {_ACCOUNT_COLS} FROM apps p JOIN accounts a ON a.id = p.account_id "
    "WHERE p.client_id = ? AND a.id = ? AND p.active"
)
# A user-managed app's token: its grant still active, the app active, the user still there.
SQL_ACTIVE_GRANT_ACCOUNT = (
    f"SELECT {_ACCOUNT_COLS} FROM oauth_grants g JOIN apps p ON p.client_id = g.client_id "
    "JOIN accounts a ON a.id = g.account_id JOIN users u ON u.id = g.user_id AND u.account_id = g.account_id "
    "WHERE g.id = ? AND g.client_id = ? AND g.account_id = ? AND g.user_id = ? AND g.revoked_at IS NULL AND p.active"
)
SQL_USERS_BY_EMAILS = f"SELECT {_USER_COLS} FROM users WHERE account_id = ? AND email IN (?, ?)"
# A user create: one statement (the account's existence is its foreign key: MissingReference).
SQL_INSERT_USER = f"INSERT INTO users ({_USER_COLS}) VALUES ({', '.join('?' for _ in _USER_COLS.split(', '))})"
# A page of an account's users in id order, the account's user count as its last column (one
# statement); past the last page no row carries the count: SQL_USER_COUNT then.
SQL_USERS_PAGE_TOTAL = (f"SELECT {_USER_COLS}, (SELECT count(*) FROM users WHERE account_id = ?) "
                        "FROM users WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?")
SQL_USER_COUNT = "SELECT count(*) FROM users WHERE account_id = ?"
SQL_PHONE = f"SELECT {_PHONE_COLS} FROM sip_phones WHERE account_id = ? AND id = ?"
SQL_INSERT_PHONE = (f"INSERT INTO sip_phones ({', '.join(_INSERTED)}) "
                    f"VALUES ({', '.join('?' for _ in _INSERTED)})")
# The row's version goes up in the statement of the write itself (no extra round trip).
SQL_UPDATE_PHONE = (f"UPDATE sip_phones SET {', '.join(n + ' = ?' for n in _UPDATABLE)}, version = version + 1 "
                    "WHERE account_id = ? AND id = ?")
# PostgreSQL: the insert and the account's phone count in one statement (``storage.counts``).
SQL_INSERT_PHONE_COUNTED = counted_insert(SQL_INSERT_PHONE)
# PostgreSQL: a group of one account's creates (``storage.raw.pg_group``), n rows then the account id.
sql_insert_phones_counted = functools.partial(counted_group_insert, SQL_INSERT_PHONE)
SQL_DELETE_STATUS = "DELETE FROM phone_status WHERE phone_id = ?"
SQL_DELETE_PHONE = "DELETE FROM sip_phones WHERE account_id = ? AND id = ?"
# List pages read only what a list item shows (PhoneRecord), in its order, the encrypted password
# in the password's place, then the row's version (``RecordPage.versions``). The columns that are usually empty (the second and third server sets,
# the display number) come back as NULL when empty: the driver converts a NULL with one call
# instead of three for a string, on up to 300 rows of a page (``_records`` turns them back into "").
_LIST_NULLABLE = frozenset(("register_server2", "proxy_server2", "transport_protocol2", "register_server3",
                            "proxy_server3", "transport_protocol3", "display_number"))
LIST_COLUMN_NAMES = fields.COLUMNS  # PhoneRecord's fields (the table's), the password as stored
_LIST_COLS = ", ".join(f"NULLIF({n}, '')" if n in _LIST_NULLABLE else n for n in LIST_COLUMN_NAMES) + ", version"
SQL_PAGE = f"SELECT {_LIST_COLS} FROM sip_phones WHERE account_id = ? AND id > ? ORDER BY id LIMIT ? OFFSET ?"
# The page and the account's phone count in one statement (the count is the last column).
SQL_PAGE_TOTAL = (f"SELECT {_LIST_COLS}, (SELECT phone_count FROM accounts WHERE id = ?) "
                  "FROM sip_phones WHERE account_id = ? AND id > ? ORDER BY id LIMIT ? OFFSET ?")
SQL_PHONE_COUNT = "SELECT phone_count FROM accounts WHERE id = ?"
# The same pages as (id, version) pairs (``RecordPage.versions``): a page whose items are all
# rendered already (``phones.rendered``) reads two short columns instead of nineteen.
SQL_VERSIONS = "SELECT id, version FROM sip_phones WHERE account_id = ? AND id > ? ORDER BY id LIMIT ? OFFSET ?"
SQL_VERSIONS_TOTAL = ("SELECT id, version, (SELECT phone_count FROM accounts WHERE id = ?) "
                      "FROM sip_phones WHERE account_id = ? AND id > ? ORDER BY id LIMIT ? OFFSET ?")
