"""The phone form, built from the field table (``phones.fields``): one input per legacy API field,
named as the legacy API names it, checked by the API's validation (``validate_phone_fields``)
with the required fields of the legacy create or update request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from sipphones.errors import FieldError
from sipphones.phones import fields, rules
from sipphones.phones.fields import Kind, PhoneField
from sipphones.phones.models import SipPhone
from sipphones.phones.validation import validate_phone_fields
from sipphones.phones.models import PhoneChanges

MAX_INPUT = 1024  # characters kept of any one input (every field's own limit is lower)

_WORDS = {"user_email": "User email", "user_name": "User name", "authorization_name": "Authorization name",
          "password": "Password", "domain": "Domain", "register_server": "Register server",
          "proxy_server": "Proxy server", "transport_protocol": "Transport protocol",
          "registration_expire_time": "Registration expire time (minutes)", "voice_mail": "Voice mail"}
_INPUT_TYPES = {Kind.EMAIL: "email", Kind.MINUTES: "number"}
_HINTS = {Kind.SERVER: "An IPv4 address, [IPv6] address or host name, optionally :port.",
          Kind.DOMAIN: "A DNS name or an IP address, no port.",
          Kind.MINUTES: f"{rules.EXPIRE_MIN} to {rules.EXPIRE_MAX}; empty: {rules.EXPIRE_DEFAULT}."}


@dataclass(frozen=True)
class Input:
    """One input of the form: ``name`` is the legacy API's field name."""

    field: PhoneField
    label: str
    type: str
    required: bool
    hint: str

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def options(self) -> tuple[str, ...]:
        """A transport's choices: "" first (the default transport in set 1, no set in 2 and 3)."""
        return ("",) + fields.TRANSPORTS


@dataclass(frozen=True)
class Group:
    legend: str
    inputs: tuple[Input, ...]


def _label(f: PhoneField) -> str:
    return _WORDS.get(f.base, f.base.replace("_", " ").capitalize())


def _input(f: PhoneField, request: str) -> Input:
    kind_type = "password" if f.secret else _INPUT_TYPES.get(f.kind, "text")
    required = request in f.required and not f.empty_ok
    hint = _HINTS.get(f.kind, "")
    if f.secret and request == fields.LEGACY_UPDATE:
        required, hint = False, "Leave empty to keep the current password."
    if f.kind is Kind.TRANSPORT:
        hint = f"Empty: {fields.DEFAULT_TRANSPORT.value}." if f.slot == 1 else "Empty when the set is not used."
    return Input(f, _label(f), kind_type, required, hint)


def _groups(request: str) -> tuple[Group, ...]:
    body = [f for f in fields.LEGACY_SHAPE if f.in_body and (request == fields.LEGACY_CREATE or f.updatable)]
    scalars = tuple(_input(f, request) for f in body if f.slot is None)
    groups = [Group("Phone", scalars)]
    for slot in (1, 2, 3):
        legend = "Server set 1" if slot == 1 else f"Server set {slot} (optional)"
        groups.append(Group(legend, tuple(_input(f, request) for f in body if f.slot == slot)))
    return tuple(groups)


CREATE_FORM = _groups(fields.LEGACY_CREATE)
EDIT_FORM = _groups(fields.LEGACY_UPDATE)
FORM_NAMES = tuple(i.name for g in CREATE_FORM for i in g.inputs)


def values_of_phone(phone: SipPhone) -> dict[str, str]:
    """What the edit form shows first (the password left empty: kept unless typed)."""
    out: dict[str, str] = {}
    for name in FORM_NAMES:
        f = fields.BY_NAME[name]
        value: Any = getattr(phone, name) if f.slot is None else getattr(phone.server(f.slot), f.base)
        out[name] = "" if value is None or f.secret else str(getattr(value, "value", value))
    return out


def values_of_form(form: FormData) -> dict[str, str]:
    out = {}
    for name in FORM_NAMES:
        value = form.get(name)
        out[name] = value[:MAX_INPUT] if isinstance(value, str) else ""
    return out


def _flat(values: dict[str, str], *, editing: bool, stored: SipPhone | None) -> dict[str, object]:
    """The form's text as the legacy API's flat fields: an empty expiry or first transport left
    out (the default applies), the expiry as a number when it is one, the stored password when
    the edit form's is left empty."""
    flat: dict[str, object] = {}
    for name, value in values.items():
        f = fields.BY_NAME[name]
        if editing and not f.updatable:
            continue
        if f.kind is Kind.MINUTES:
            if value.strip() == "":
                continue
            text = value.strip()
            flat[name] = int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else text
        elif f.kind is Kind.TRANSPORT and value == "" and not f.empty_ok:
            continue
        elif f.secret and editing and value == "" and stored is not None:
            flat[name] = stored.password
        else:
            flat[name] = value
    return flat


def check(values: dict[str, str], *, editing: bool, stored: SipPhone | None = None
          ) -> tuple[PhoneChanges, str | None]:
    """The API's validation of the form; raises ``ValidationFailed`` naming the inputs."""
    required = fields.LEGACY_UPDATE_REQUIRED if editing else fields.LEGACY_CREATE_REQUIRED
    return validate_phone_fields(_flat(values, editing=editing, stored=stored), required=required)


def errors_by_input(errors: list[FieldError] | tuple[FieldError, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in errors:
        out[e.field] = f"{out[e.field]} {e.message}" if e.field in out else e.message
    return out
