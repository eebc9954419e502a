"""The two Zoom shapes of a SIP phone: legacy (flat) and current (nested server objects).

Translation both ways: a phone to each response shape, and a request body in each shape to the
flat field names the domain validates (with a label function so errors name the client's field).
"""

from __future__ import annotations

from typing import Any

from sipphones.errors import FieldError
from sipphones.phones.models import SERVER_FIELDS, SLOTS, SipPhone, flat_name
from sipphones.repository import PhoneRecord

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
SERVER_KEYS_IN_ORDER = tuple(SERVER_KEYS[slot] for slot in SLOTS)


def _transport(s) -> str:
    # Zoom's schema makes every transport an enum: an unused slot shows the client default (UDP)
    # rather than an empty string outside the enum. (A Transport is a str: its value as is.)
    return s.transport_protocol or "UDP"


def legacy_phone(phone: SipPhone) -> dict[str, Any]:
    s1, s2, s3 = phone.servers
    return {
        "id": phone.id,
        "user_email": phone.user_email,
        "user_name": phone.user_name,
        "authorization_name": phone.authorization_name,
        "password": phone.password,
        "domain": phone.domain,
        "register_server": s1.register_server,
        "register_server2": s2.register_server,
        "register_server3": s3.register_server,
        "proxy_server": s1.proxy_server,
        "proxy_server2": s2.proxy_server,
        "proxy_server3": s3.proxy_server,
        "transport_protocol": _transport(s1),
        "transport_protocol2": _transport(s2),
        "transport_protocol3": _transport(s3),
        "registration_expire_time": phone.registration_expire_time,
        "voice_mail": phone.voice_mail,
    }


def current_phone(phone: SipPhone) -> dict[str, Any]:
    out: dict[str, Any] = {
        "phone_id": phone.id,
        "user_email": phone.user_email,
        "user_name": phone.user_name,
        "authorization_name": phone.authorization_name,
        "password": phone.password,
        "domain": phone.domain,
        "registration_expire_time": phone.registration_expire_time,
        "voice_mail": phone.voice_mail,
        "display_number": phone.display_number,
    }
    for key, s in zip(SERVER_KEYS_IN_ORDER, phone.servers):
        if s.register_server:  # configured
            out[key] = {"register_server": s.register_server, "proxy_server": s.proxy_server,
                        "transport_protocol": s.transport_protocol or "UDP"}
    return out


# --- list items (PhoneRecord: flat, unused slots empty) ------------------------------------

def legacy_record(r: PhoneRecord) -> dict[str, Any]:
    """The legacy shape of a list item (the same fields and rules as ``legacy_phone``)."""
    return {
        "id": r.id,
        "user_email": r.user_email,
        "user_name": r.user_name,
        "authorization_name": r.authorization_name,
        "password": r.password,
        "domain": r.domain,
        "register_server": r.register_server,
        "register_server2": r.register_server2,
        "register_server3": r.register_server3,
        "proxy_server": r.proxy_server,
        "proxy_server2": r.proxy_server2,
        "proxy_server3": r.proxy_server3,
        "transport_protocol": r.transport_protocol or "UDP",
        "transport_protocol2": r.transport_protocol2 or "UDP",
        "transport_protocol3": r.transport_protocol3 or "UDP",
        "registration_expire_time": r.registration_expire_time,
        "voice_mail": r.voice_mail,
    }


def current_record(r: PhoneRecord) -> dict[str, Any]:
    """The current shape of a list item (the same fields and rules as ``current_phone``)."""
    (pid, user_email, user_name, authorization_name, password, domain, rs1, ps1, tp1, rs2, ps2, tp2, rs3, ps3, tp3,
     expire, voice_mail, display_number) = r
    out: dict[str, Any] = {
        "phone_id": pid,
        "user_email": user_email,
        "user_name": user_name,
        "authorization_name": authorization_name,
        "password": password,
        "domain": domain,
        "registration_expire_time": expire,
        "voice_mail": voice_mail,
        "display_number": display_number,
    }
    if rs1:
        out["server"] = {"register_server": rs1, "proxy_server": ps1, "transport_protocol": tp1 or "UDP"}
    if rs2:
        out["server_2"] = {"register_server": rs2, "proxy_server": ps2, "transport_protocol": tp2 or "UDP"}
    if rs3:
        out["server_3"] = {"register_server": rs3, "proxy_server": ps3, "transport_protocol": tp3 or "UDP"}
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
