"""Rows to domain objects and back, by position in the column orders of ``storage.raw.statements``
(both paths read phones through these: the hot path's driver tuples and SQLAlchemy rows alike)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, TypeVar

from sipphones.accounts.models import Account, Plan, User
from sipphones.phones import fields
from sipphones.phones.models import NO_SERVER, ServerSet, SipPhone, Transport
from sipphones.repository import CorruptRecord, PhoneRecord
from sipphones.storage.crypto import PasswordCipher
from sipphones.storage.raw.statements import _LIST_NULLABLE, LIST_COLUMN_NAMES, PHONE_COLUMN_NAMES

# Where a phone row (PHONE_COLUMN_NAMES) holds the password and the server sets: per slot, the
# columns of ServerSet's fields in their order (register, proxy, transport).
_PASSWORD_AT = PHONE_COLUMN_NAMES.index(fields.BY_NAME["password"].column)
_SERVER_COLUMNS = tuple(tuple(f.column for f in set_fields) for _, set_fields in fields.CURRENT_SERVER_SETS)
_SERVERS_AT = PHONE_COLUMN_NAMES.index(_SERVER_COLUMNS[0][0])
_SERVERS_END = _SERVERS_AT + sum(map(len, _SERVER_COLUMNS))
_SCALAR_COLUMNS = tuple((f.column, f.name) for f in fields.SCALARS if not f.secret)  # column, SipPhone attribute
if (PHONE_COLUMN_NAMES[_SERVERS_AT:_SERVERS_END] != sum(_SERVER_COLUMNS, ())
        or any(tuple(f.base for f in set_fields) != tuple(f.name for f in dataclasses.fields(ServerSet))
               for _, set_fields in fields.CURRENT_SERVER_SETS)
        or tuple(f.name for f in dataclasses.fields(SipPhone)) != (
            PHONE_COLUMN_NAMES[:_PASSWORD_AT] + ("password",) + PHONE_COLUMN_NAMES[_PASSWORD_AT + 1:_SERVERS_AT]
            + ("servers",) + PHONE_COLUMN_NAMES[_SERVERS_END:])):
    raise ImportError("a phone row's columns (phones.fields) do not map onto SipPhone and ServerSet")
# A list row: LIST_COLUMN_NAMES, then the row's version (``statements._LIST_COLS``).
_LIST_ROW_NAMES = LIST_COLUMN_NAMES + ("version",)
if len(set(_LIST_ROW_NAMES)) != len(_LIST_ROW_NAMES):
    raise ImportError("a list row's columns (phones.fields and the version) are not distinct names")


# --- row mappers, generated from the column lists ----------------------------------------------
# Rows are unpacked by position into locals named as their columns and packed again, in one
# function compiled once at import: what hand-written mappers would be (a page maps up to 300
# rows), with the column order written in one place.

def _compiled(name: str, source: str, namespace: dict):
    exec(compile(source, f"<sipphones.storage.raw.rows.{name}>", "exec"), namespace)  # noqa: S102 - our columns
    return namespace[name]


_PASSWORD = fields.BY_NAME["password"].column


def _records_source() -> str:
    """``records(rows, decrypt, version_of)``: PhoneRecords of list rows (LIST_COLUMN_NAMES then
    the version), the password decrypted, the NULLs of empty optional columns as ""; each row's
    version handed to ``version_of``."""
    values = ", ".join("password" if n == _PASSWORD else f'({n} or "")' if n in _LIST_NULLABLE else n
                       for n in LIST_COLUMN_NAMES)
    return "\n".join([
        "def records(rows, decrypt, version_of):",
        "    out = []",
        "    append = out.append",
        f"    for ({', '.join(_LIST_ROW_NAMES)},) in rows:",
        "        try:",
        f"            password = decrypt({_PASSWORD}, context=id)",
        "        except (ValueError, TypeError) as e:",
        '            raise CorruptRecord(f"phone {id}: {e}") from None',
        "        version_of(version)",
        f"        append(new(({values},)))",
        "    return out",
    ])


def _phone_source() -> str:
    """``phone(row, decrypt)``: the SipPhone of a PHONE_COLUMN_NAMES row (server sets shared)."""
    servers = ", ".join(PHONE_COLUMN_NAMES[_SERVERS_AT:_SERVERS_END])
    values = ", ".join(PHONE_COLUMN_NAMES[:_PASSWORD_AT] + ("password",)
                       + PHONE_COLUMN_NAMES[_PASSWORD_AT + 1:_SERVERS_AT] + (f"server_sets(({servers},))",)
                       + PHONE_COLUMN_NAMES[_SERVERS_END:])
    return "\n".join([
        "def phone(row, decrypt):",
        f"    ({', '.join(PHONE_COLUMN_NAMES)},) = row",
        "    try:",
        f"        password = decrypt({_PASSWORD}, context=id)",
        "    except (ValueError, TypeError) as e:",
        '        raise CorruptRecord(f"phone {id}: {e}") from None',
        f"    return make_phone(({values},))",
    ])


_TRANSPORTS: dict[str, Transport | None] = {t.value: t for t in Transport}
_TRANSPORTS[""] = None
# Server sets are immutable values and the phones of one deployment share few distinct ones:
# the three sets of a row are reused by their nine column values (a bounded cache).
_SERVER_SETS: dict[tuple, tuple[ServerSet, ServerSet, ServerSet]] = {}
_SERVER_SET_CACHE_MAX = 4096


def _server_set(register: str, proxy: str, transport: str) -> ServerSet:
    if not register and not proxy and not transport:
        return NO_SERVER
    tp = _TRANSPORTS[transport] if transport in _TRANSPORTS else Transport(transport)
    return ServerSet(register, proxy, tp)


def _server_sets(key: tuple) -> tuple[ServerSet, ServerSet, ServerSet]:
    """``key``: register, proxy, transport of slots 1, 2 and 3."""
    sets = _SERVER_SETS.get(key)
    if sets is None:
        if len(_SERVER_SETS) >= _SERVER_SET_CACHE_MAX:
            _SERVER_SETS.clear()
        sets = _SERVER_SETS[key] = (_server_set(*key[0:3]), _server_set(*key[3:6]), _server_set(*key[6:9]))
    return sets


T = TypeVar("T")

_new_record = functools.partial(tuple.__new__, PhoneRecord)


def _maker(cls: type[T]) -> Callable[[tuple], T]:
    """``cls(*values)`` for a frozen dataclass, without its per-field ``object.__setattr__``
    (about half the cost: every request builds its account, a create its user, a page up to 300
    phones). The instance is the same: same fields, equal, immutable."""
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    new = object.__new__

    def make(values: tuple) -> T:
        obj = new(cls)
        obj.__dict__.update(zip(names, values))
        return obj

    return make


_make_phone = _maker(SipPhone)
_records_of = _compiled("records", _records_source(), {"new": _new_record, "CorruptRecord": CorruptRecord})
_phone_of = _compiled("phone", _phone_source(), {"make_phone": _make_phone, "server_sets": _server_sets,
                                                 "CorruptRecord": CorruptRecord})
_make_account = _maker(Account)
_make_user = _maker(User)
_PLANS = {p.value: p for p in Plan}


class PhoneRows:
    """A phone as a stored row and back, list items from list rows: the password encrypted and
    decrypted with ``cipher``."""

    cipher: PasswordCipher

    def _phone_row(self, phone: SipPhone) -> dict:
        """A phone as stored, by column name (password encrypted, bound to the phone id; ``version``
        as the phone carries it: an insert stores it, an update bumps the stored one instead)."""
        values = {column: getattr(phone, name) for column, name in _SCALAR_COLUMNS}
        values["account_id"] = phone.account_id
        values["password_enc"] = self.cipher.encrypt(phone.password, context=phone.id)
        values["created_at"] = phone.created_at
        values["updated_at"] = phone.updated_at
        values["version"] = phone.version
        for s, (register, proxy, transport) in zip(phone.servers, _SERVER_COLUMNS):
            values[register] = s.register_server
            values[proxy] = s.proxy_server
            values[transport] = s.transport_protocol.value if s.transport_protocol else ""
        return values

    def _phone(self, row) -> SipPhone:
        """A phone from a row in PHONE_COLUMN_NAMES order (a driver tuple or a SQLAlchemy row)."""
        return _phone_of(row, self.cipher.decrypt)

    def _records(self, rows) -> tuple[list[PhoneRecord], list[int]]:
        """List items from rows of LIST_COLUMN_NAMES then the version (``_LIST_COLS``): the columns
        as they are, the password decrypted in place, the NULLs of empty optional columns back to
        ""; and their rows' versions."""
        versions: list[int] = []
        return _records_of(rows, self.cipher.decrypt, versions.append), versions
