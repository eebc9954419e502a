"""The records the client sends and returns: plain dicts, exactly as Zoom's JSON, typed here.

The client does not convert the service's JSON into objects: what a method returns is the
decoded body (a ``dict``), so a field Zoom adds later is there too. These ``TypedDict``s
document the fields and let a type checker help.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "CreatedUser", "CurrentPhone", "CurrentPhoneFields", "CurrentPhonePage", "LegacyPhone", "LegacyPhoneFields",
    "LegacyPhonePage", "PhoneStatus", "PhoneStatusPage", "ServerSet", "Transport", "User", "UserPage",
]

Transport = Literal["UDP", "TCP", "TLS", "AUTO"]


class LegacyPhoneFields(TypedDict, total=False):
    """The body of a legacy create (``POST /sip_phones``) or update (``PATCH /sip_phones/{id}``).

    Create requires ``user_email``, ``user_name``, ``authorization_name``, ``password``,
    ``domain``, ``register_server``, ``proxy_server`` and ``voice_mail``; the legacy update
    (a near-full replace) requires those but ``user_email``, plus the proxy and register servers
    2 and 3 (empty strings for unused sets)."""

    user_email: str
    user_name: str
    authorization_name: str
    password: str
    domain: str
    register_server: str
    register_server2: str
    register_server3: str
    proxy_server: str
    proxy_server2: str
    proxy_server3: str
    transport_protocol: Transport
    transport_protocol2: Transport
    transport_protocol3: Transport
    registration_expire_time: int
    voice_mail: str


class LegacyPhone(LegacyPhoneFields):
    """A phone in the legacy shape (every field present; unused server sets ``""`` / ``UDP``)."""

    id: str


class LegacyPhonePage(TypedDict):
    next_page_token: str  # "" on the last page
    page_count: int
    page_number: int
    page_size: int
    total_records: int
    phones: list[LegacyPhone]


class ServerSet(TypedDict, total=False):
    register_server: str
    proxy_server: str
    transport_protocol: Transport


class CurrentPhoneFields(TypedDict, total=False):
    """The body of a current create (``POST /sip_phones/phones``; requires ``user_email``,
    ``user_name``, ``authorization_name``, ``password``, ``domain``, ``server.register_server``)
    or update (``PATCH /sip_phones/phones/{id}``; nothing required, absent fields unchanged)."""

    user_email: str
    user_name: str
    authorization_name: str
    password: str
    domain: str
    server: ServerSet
    server_2: ServerSet
    server_3: ServerSet
    registration_expire_time: int
    voice_mail: str
    display_number: str


class CurrentPhone(CurrentPhoneFields):
    """A phone in the current shape (unused server sets left out)."""

    phone_id: str


class CurrentPhonePage(TypedDict):
    next_page_token: str  # "" on the last page
    page_size: int
    phones: list[CurrentPhone]


class User(TypedDict, total=False):
    id: str
    first_name: str
    last_name: str
    display_name: str
    email: str
    type: int
    status: str
    user_created_at: str


class UserPage(TypedDict):
    next_page_token: str
    page_count: int
    page_number: int
    page_size: int
    total_records: int
    users: list[User]


class CreatedUser(TypedDict):
    id: str
    first_name: str
    last_name: str
    email: str
    type: int


class PhoneStatus(TypedDict):
    """A phone's registration status as ``sipphones monitor`` recorded it (a sipphones extension,
    ``GET /_sipphones/v1/sip_phones/status``). ``state``: ``registered``, ``failed``, ``invalid``,
    ``idle``, ``resolving``, ``connecting``, ``registering``, ``stopping``, ``stopped``, or
    ``unknown`` (no monitor recorded the phone). Times are ISO-8601 UTC strings or None."""

    phone_id: str
    user_email: str
    state: str
    registered: bool
    server_slot: int | None
    server_address: str
    transport: str
    last_error: str
    last_status_code: int | None
    last_success_at: str | None
    last_attempt_at: str | None
    granted_expires: int | None
    updated_at: str | None
    monitor: str          # host:pid of the monitor that keeps the phone ("" for none)
    monitor_alive: bool   # False once that monitor's lease ran out (until another takes over)


class PhoneStatusPage(TypedDict):
    next_page_token: str  # "" on the last page
    page_size: int
    phones: list[PhoneStatus]
