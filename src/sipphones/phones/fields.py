"""The fields of a SIP phone, in one table: every other place takes its names from here.

``FIELDS`` lists each field once, in the phone's canonical order (the order of ``PhoneRecord``,
of the list statement's columns and, without the id, of the CSV columns). For each field it says:

* ``name``: the legacy (flat) key, e.g. ``register_server2``; validation works on these names;
* ``current_path``: where the current shape nests it, e.g. ``("server_2", "register_server")``;
* ``slot``: its server set (1-3), None for a scalar; ``base``: its name within the set;
* ``column``: its storage column (``password_enc`` holds the password, encrypted);
* ``kind``: what a value must be (a text with ``max_length``, an email, a SIP domain, a server
  address, a transport of ``Transport``, minutes from 1 to 127);
* ``required``: the requests that must carry it (present and not null), among ``LEGACY_CREATE``,
  ``LEGACY_UPDATE``, ``CURRENT_CREATE`` and ``CURRENT_UPDATE`` (nothing: absent fields stay);
* ``empty_ok``: whether ``""`` is a value (voice mail; a proxy; sets 2 and 3, where an empty
  register server removes the set);
* ``default``: what a new phone holds when the field is not given;
* ``secret``: never logged (the password; the API returns it in clear, as Zoom does);
* ``legacy`` / ``current``: whether the field is part of each shape (``display_number`` is not a
  legacy field); ``in_body``: whether a request may send it (not the id); ``updatable``: whether a
  PATCH may change it (the owner, ``user_email``, never changes: a PATCH body's is ignored).

The limits themselves are ``rules.MAX_*`` (the check functions enforce the same numbers).

The shapes' key orders are Zoom's: the legacy shape lists the server fields by name, then slot
(``register_server``, ``register_server2``, ``register_server3``, ``proxy_server``, ...); the
current shape puts its scalars first, then one object per configured server set.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sipphones.phones import rules
from sipphones.phones.models import SERVER_FIELDS, SLOTS, Transport, flat_name

# A configured server set without a transport uses UDP (Zoom's client default): what the service
# stores, what the shapes show for a set without one, what the SIP engine uses. Decided here only.
DEFAULT_TRANSPORT = Transport.UDP

TRANSPORTS = tuple(t.value for t in Transport)

# The current shape's key of each server set.
SERVER_KEYS = {1: "server", 2: "server_2", 3: "server_3"}

# The requests a field may be required in.
LEGACY_CREATE = "legacy create"
LEGACY_UPDATE = "legacy update"
CURRENT_CREATE = "current create"
CURRENT_UPDATE = "current update"


class Kind(StrEnum):
    ID = "id"                # assigned by the service
    EMAIL = "email"          # rules.check_email
    TEXT = "text"            # rules.check_text: at most max_length, no control characters
    DOMAIN = "domain"        # rules.check_domain: a DNS name or an IP address, no port
    SERVER = "server"        # rules.check_server: IPv4, [IPv6] or a DNS name, optional :port
    TRANSPORT = "transport"  # exactly one of TRANSPORTS ("udp" is refused, as Zoom refuses it)
    MINUTES = "minutes"      # rules.check_expire_time: an integer from 1 to 127


@dataclass(frozen=True)
class PhoneField:
    name: str
    kind: Kind
    column: str
    max_length: int | None = None
    default: object = ""
    required: frozenset[str] = frozenset()
    empty_ok: bool = False
    slot: int | None = None
    secret: bool = False
    legacy: bool = True
    current: bool = True
    in_body: bool = True
    updatable: bool = True
    current_key: str | None = None   # the current shape's key when not the name (scalars only)

    @property
    def base(self) -> str:
        """The name within a server set (``register_server`` for ``register_server2``)."""
        return self.name[:-1] if self.slot is not None and self.slot != 1 else self.name

    @property
    def current_path(self) -> tuple[str, ...]:
        if self.slot is not None:
            return (SERVER_KEYS[self.slot], self.base)
        return (self.current_key or self.name,)

    @property
    def current_label(self) -> str:
        """The name an error gives the field in the current shape (``server_2.register_server``)."""
        return ".".join(self.current_path)


def _required(*requests: str) -> frozenset[str]:
    return frozenset(requests)


_LC, _LU, _CC = LEGACY_CREATE, LEGACY_UPDATE, CURRENT_CREATE


def _server_fields(slot: int) -> list[PhoneField]:
    first = slot == 1
    return [
        PhoneField(flat_name("register_server", slot), Kind.SERVER, flat_name("register_server", slot),
                   rules.MAX_SERVER, slot=slot, empty_ok=not first,
                   required=_required(_LC, _LU, _CC) if first else _required(_LU)),
        PhoneField(flat_name("proxy_server", slot), Kind.SERVER, flat_name("proxy_server", slot),
                   rules.MAX_SERVER, slot=slot, empty_ok=True,
                   required=_required(_LC, _LU) if first else _required(_LU)),
        PhoneField(flat_name("transport_protocol", slot), Kind.TRANSPORT, flat_name("transport_protocol", slot),
                   default=DEFAULT_TRANSPORT, slot=slot, empty_ok=not first),
    ]


FIELDS: tuple[PhoneField, ...] = (
    PhoneField("id", Kind.ID, "id", default=None, in_body=False, updatable=False, current_key="phone_id"),
    PhoneField("user_email", Kind.EMAIL, "user_email", rules.MAX_NAME, required=_required(_LC, _CC),
               updatable=False),
    PhoneField("user_name", Kind.TEXT, "user_name", rules.MAX_NAME, required=_required(_LC, _LU, _CC)),
    PhoneField("authorization_name", Kind.TEXT, "authorization_name", rules.MAX_NAME,
               required=_required(_LC, _LU, _CC)),
    PhoneField("password", Kind.TEXT, "password_enc", rules.MAX_PASSWORD, required=_required(_LC, _LU, _CC),
               secret=True),
    PhoneField("domain", Kind.DOMAIN, "domain", rules.MAX_NAME, required=_required(_LC, _LU, _CC)),
    *_server_fields(1),
    *_server_fields(2),
    *_server_fields(3),
    PhoneField("registration_expire_time", Kind.MINUTES, "registration_expire_time", default=rules.EXPIRE_DEFAULT),
    PhoneField("voice_mail", Kind.TEXT, "voice_mail", rules.MAX_VOICE_MAIL, required=_required(_LC, _LU),
               empty_ok=True),
    PhoneField("display_number", Kind.TEXT, "display_number", rules.MAX_DISPLAY_NUMBER, empty_ok=True,
               legacy=False),
)

BY_NAME: dict[str, PhoneField] = {f.name: f for f in FIELDS}

# --- what the other modules take from the table -----------------------------------------------

# The record (list item) order: PhoneRecord's fields, the list statement's columns.
RECORD_NAMES = tuple(f.name for f in FIELDS)
COLUMNS = tuple(f.column for f in FIELDS)
SCALARS = tuple(f for f in FIELDS if f.slot is None)


def _legacy_order(fields: tuple[PhoneField, ...]) -> tuple[PhoneField, ...]:
    """Zoom's legacy order: the server fields, grouped by name then slot, where the first one is."""
    servers = sorted((f for f in fields if f.slot is not None), key=lambda f: (SERVER_FIELDS.index(f.base), f.slot))
    out: list[PhoneField] = []
    for f in fields:
        if f.slot is None:
            out.append(f)
        elif f is servers[0]:  # the first server field of the table: the whole block here
            out.extend(servers)
    return tuple(out)


LEGACY_SHAPE = _legacy_order(tuple(f for f in FIELDS if f.legacy))
# The current shape: the scalars, then each server set as an object of SERVER_FIELDS.
CURRENT_SHAPE_SCALARS = tuple(f for f in SCALARS if f.current)
CURRENT_SERVER_SETS = tuple((SERVER_KEYS[slot], tuple(f for f in FIELDS if f.slot == slot)) for slot in SLOTS)

LEGACY_KEYS = tuple(f.name for f in LEGACY_SHAPE)                                # a legacy response
LEGACY_BODY_KEYS = tuple(f.name for f in LEGACY_SHAPE if f.in_body)              # a legacy request
CURRENT_BODY_SCALARS = tuple(f.name for f in CURRENT_SHAPE_SCALARS if f.in_body)  # a current request's scalars
NOT_UPDATABLE = tuple(f.name for f in FIELDS if f.in_body and not f.updatable)  # ignored in a PATCH body


def required(request: str) -> tuple[str, ...]:
    """The flat names ``request`` must carry, in the order their errors are reported."""
    return tuple(sorted(f.name for f in FIELDS if request in f.required))


LEGACY_CREATE_REQUIRED = required(LEGACY_CREATE)
LEGACY_UPDATE_REQUIRED = required(LEGACY_UPDATE)
CURRENT_CREATE_REQUIRED = required(CURRENT_CREATE)
CURRENT_UPDATE_REQUIRED = required(CURRENT_UPDATE)


_CURRENT_LABELS = {f.name: f.current_label for f in FIELDS}


def current_label(name: str) -> str:
    """A flat name as the current shape names it (``register_server2`` -> ``server_2.register_server``)."""
    return _CURRENT_LABELS.get(name, name)


NEW_SCALAR_DEFAULTS = {f.name: f.default for f in SCALARS if f.in_body and f.updatable}


def new_scalars(given: dict[str, object]) -> dict[str, object]:
    """The scalar fields of a new phone: the table's defaults, then what was given."""
    return {**NEW_SCALAR_DEFAULTS, **given}


# --- CSV (import and export) ------------------------------------------------------------------

CSV_COLUMNS = tuple(f.name for f in FIELDS if f.in_body)


def csv_columns() -> tuple[str, ...]:
    """The CSV columns, in order: every field a request may carry, by its legacy name."""
    return CSV_COLUMNS


def fields_of_csv_row(row: dict[str, str]) -> dict[str, object]:
    """A CSV row (column -> text, as ``csv.DictReader`` gives it) as flat fields for validation:
    empty cells left out (the field's default applies), ``registration_expire_time`` an integer
    when it is one (else left as text, which validation refuses with its usual sentence), unknown
    columns ignored. ``display_number`` comes along: it is set through the current set."""
    out: dict[str, object] = {}
    for name in CSV_COLUMNS:
        value = row.get(name)
        if value is None or value == "":
            continue
        if BY_NAME[name].kind is Kind.MINUTES and value.isascii() and value.isdigit() and len(value) <= 3:
            out[name] = int(value)
        else:
            out[name] = value
    return out
