"""The two Zoom shapes of a SIP phone: legacy (flat) and current (nested server objects).

Translation both ways: a phone to each response shape, and a request body in each shape to the
flat field names the domain validates (with a label function so errors name the client's field).
"""

from __future__ import annotations

from typing import Any

from sipphones.errors import FieldError
from sipphones.phones.models import SERVER_FIELDS, SLOTS, SipPhone, flat_name

LEGACY_FIELDS = (
    "user_email", "user_name", "authorization_name", "password", "domain",
    "register_server", "register_server2", "register_server3",
    "proxy_server", "proxy_server2", "proxy_server3",
    "transport_protocol", "transport_protocol2", "transport_protocol3",
    "registration_expire_time", "voice_mail",
)
CURRENT_SCALARS = (
    "user_email", "user_name", "authorization_name", "password", "domain", "registration_expire_time",
    "voice_mail", "display_number",
)
SERVER_KEYS = {1: "server", 2: "server_2", 3: "server_3"}


def legacy_phone(phone: SipPhone) -> dict[str, Any]:
    flat = phone.flat()
    out = {"id": phone.id}
    for name in LEGACY_FIELDS:
        out[name] = flat[name]
    for slot in SLOTS:
        # Zoom's schema makes every transport an enum: an unused slot shows the client default
        # (UDP) rather than an empty string outside the enum.
        name = flat_name("transport_protocol", slot)
        out[name] = out[name] or "UDP"
    return out


def current_phone(phone: SipPhone) -> dict[str, Any]:
    out: dict[str, Any] = {"phone_id": phone.id}
    flat = phone.flat()
    for name in CURRENT_SCALARS:
        out[name] = flat[name]
    for slot in SLOTS:
        s = phone.server(slot)
        if s.configured:
            out[SERVER_KEYS[slot]] = {
                "register_server": s.register_server,
                "proxy_server": s.proxy_server,
                "transport_protocol": s.transport_protocol.value if s.transport_protocol else "UDP",
            }
    return out


def legacy_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {name: body[name] for name in LEGACY_FIELDS if name in body}


def current_label(name: str) -> str:
    for slot in SLOTS:
        for f in SERVER_FIELDS:
            if name == flat_name(f, slot):
                return f"{SERVER_KEYS[slot]}.{f}"
    return name


def current_fields(body: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Flatten a current-set body; a server entry that is not an object is returned as an error
    (beside the flat fields) so that one answer lists every failing field."""
    flat = {name: body[name] for name in CURRENT_SCALARS if name in body}
    errors: list[FieldError] = []
    for slot, key in SERVER_KEYS.items():
        if key not in body or body[key] is None:
            continue
        value = body[key]
        if not isinstance(value, dict):
            errors.append(FieldError(key, "Must be an object."))
            continue
        for f in SERVER_FIELDS:
            if f in value:
                flat[flat_name(f, slot)] = value[f]
    return flat, errors
