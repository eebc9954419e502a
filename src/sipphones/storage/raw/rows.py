"""Rows to domain objects and back, by position in the column orders of ``storage.raw.statements``
(both paths read phones through these: the hot path's driver tuples and SQLAlchemy rows alike)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, TypeVar

from sipphones.accounts.models import Account, Plan, User
from sipphones.phones.models import NO_SERVER, SLOTS, ServerSet, SipPhone, Transport, flat_name
from sipphones.repository import CorruptRecord, PhoneRecord
from sipphones.storage.crypto import PasswordCipher

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
        values = {
            "id": phone.id, "account_id": phone.account_id, "user_email": phone.user_email,
            "user_name": phone.user_name, "authorization_name": phone.authorization_name,
            "password_enc": self.cipher.encrypt(phone.password, context=phone.id), "domain": phone.domain,
            "registration_expire_time": phone.registration_expire_time, "voice_mail": phone.voice_mail,
            "display_number": phone.display_number, "created_at": phone.created_at, "updated_at": phone.updated_at,
            "version": phone.version,
        }
        for slot, s in zip(SLOTS, phone.servers):
            values[flat_name("register_server", slot)] = s.register_server
            values[flat_name("proxy_server", slot)] = s.proxy_server
            values[flat_name("transport_protocol", slot)] = s.transport_protocol.value if s.transport_protocol else ""
        return values

    def _phone(self, row) -> SipPhone:
        """A phone from a row in PHONE_COLUMN_NAMES order (a driver tuple or a SQLAlchemy row)."""
        pid = row[0]
        try:
            password = self.cipher.decrypt(row[5], context=pid)
        except (ValueError, TypeError) as e:
            raise CorruptRecord(f"phone {pid}: {e}") from None
        return _make_phone((pid, row[1], row[2], row[3], row[4], password, row[6], _server_sets(tuple(row[7:16])),
                            row[16], row[17], row[18], row[19], row[20], row[21]))

    def _records(self, rows) -> tuple[list[PhoneRecord], list[int]]:
        """List items from rows of LIST_COLUMN_NAMES then the version (``_LIST_COLS``): the columns
        as they are, the password decrypted in place, the NULLs of empty optional columns back to
        ""; and their rows' versions."""
        decrypt = self.cipher.decrypt
        new = _new_record
        out = []
        append = out.append
        versions: list[int] = []
        for pid, email, user_name, auth_name, blob, domain, rs1, ps1, tp1, rs2, ps2, tp2, rs3, ps3, tp3, expire, \
                voice_mail, display_number, version in rows:
            try:
                password = decrypt(blob, context=pid)
            except (ValueError, TypeError) as e:
                raise CorruptRecord(f"phone {pid}: {e}") from None
            versions.append(version)
            append(new((pid, email, user_name, auth_name, password, domain, rs1, ps1, tp1, rs2 or "", ps2 or "",
                        tp2 or "", rs3 or "", ps3 or "", tp3 or "", expire, voice_mail, display_number or "")))
        return out, versions
