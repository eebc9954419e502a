"""The two Zoom shapes of a SIP phone: legacy (flat) and current (nested server objects).

Translation both ways: a phone to each response shape, and a request body in each shape to the
flat field names the domain validates (with a label function so errors name the client's field).
"""

from __future__ import annotations

from typing import Any, Callable

from sipphones.errors import FieldError
from sipphones.phones import fields
from sipphones.phones.fields import CURRENT_SERVER_SETS, CURRENT_SHAPE_SCALARS, LEGACY_SHAPE, PhoneField
from sipphones.phones.models import SipPhone
from sipphones.repository import PhoneRecord

LEGACY_FIELDS = fields.LEGACY_BODY_KEYS
CURRENT_SCALARS = fields.CURRENT_BODY_SCALARS
current_label = fields.current_label

# --- responses, generated from the table ------------------------------------------------------
# Each renderer is one function with the table's key order written out, compiled once at import
# (a dict display: what a hand-written renderer would be, with no per-item look-up of the table).
# Rules of both shapes: a transport not given shows the default transport (Zoom's schema makes
# every transport an enum, so an unused legacy slot shows it rather than ""); the current shape
# leaves out a server set whose register server is empty (not configured).

_DEFAULT = repr(fields.DEFAULT_TRANSPORT.value)
_CONFIGURED_BY = "register_server"  # a server set is configured when this field is given


def _of_phone(f: PhoneField) -> str:
    """The expression of ``f``'s value in a renderer of a SipPhone ``phone`` (sets ``s1``..``s3``)."""
    value = f"phone.{f.name}" if f.slot is None else f"s{f.slot}.{f.base}"
    return f"({value} or {_DEFAULT})" if f.kind is fields.Kind.TRANSPORT else value


def _of_record(f: PhoneField) -> str:
    """The same in a renderer of a PhoneRecord unpacked into locals named as the fields."""
    return f"({f.name} or {_DEFAULT})" if f.kind is fields.Kind.TRANSPORT else f.name


def _key(f: PhoneField, legacy: bool) -> str:
    return repr(f.name if legacy else f.current_path[-1])


def _source(name: str, arg: str, prelude: str, value: Callable[[PhoneField], str], legacy: bool) -> str:
    lines = [f"def {name}({arg}):", f"    {prelude}"]
    if legacy:
        items = ", ".join(f"{_key(f, True)}: {value(f)}" for f in LEGACY_SHAPE)
        lines.append(f"    return {{{items}}}")
        return "\n".join(lines)
    items = ", ".join(f"{_key(f, False)}: {value(f)}" for f in CURRENT_SHAPE_SCALARS)
    lines.append(f"    out = {{{items}}}")
    for key, set_fields in CURRENT_SERVER_SETS:
        by_base = {f.base: f for f in set_fields}
        inner = ", ".join(f"{_key(f, False)}: {value(f)}" for f in set_fields)
        lines.append(f"    if {value(by_base[_CONFIGURED_BY])}:")
        lines.append(f"        out[{key!r}] = {{{inner}}}")
    lines.append("    return out")
    return "\n".join(lines)


_PHONE_PRELUDE = "s1, s2, s3 = phone.servers"
_RECORD_PRELUDE = f"({', '.join(fields.RECORD_NAMES)},) = r"

SOURCES = {
    "legacy_phone": _source("legacy_phone", "phone", _PHONE_PRELUDE, _of_phone, legacy=True),
    "current_phone": _source("current_phone", "phone", _PHONE_PRELUDE, _of_phone, legacy=False),
    "legacy_record": _source("legacy_record", "r", _RECORD_PRELUDE, _of_record, legacy=True),
    "current_record": _source("current_record", "r", _RECORD_PRELUDE, _of_record, legacy=False),
}


def _compiled(name: str) -> Callable[[Any], dict[str, Any]]:
    namespace: dict[str, Any] = {}
    exec(compile(SOURCES[name], f"<sipphones.api.shapes.{name}>", "exec"), namespace)  # noqa: S102 - our table
    return namespace[name]


legacy_phone: Callable[[SipPhone], dict[str, Any]] = _compiled("legacy_phone")
current_phone: Callable[[SipPhone], dict[str, Any]] = _compiled("current_phone")
# List items (PhoneRecord: flat, unused slots empty): the same fields and rules as the phones'.
legacy_record: Callable[[PhoneRecord], dict[str, Any]] = _compiled("legacy_record")
current_record: Callable[[PhoneRecord], dict[str, Any]] = _compiled("current_record")


# --- request bodies -> flat field names ----------------------------------------------------------

def legacy_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {name: body[name] for name in LEGACY_FIELDS if name in body}


def current_fields(body: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Flatten a current-set body; a server entry that is not an object is returned as an error
    (beside the flat fields) so that one answer lists every failing field."""
    flat = {name: body[name] for name in CURRENT_SCALARS if name in body}
    errors: list[FieldError] = []
    for key, set_fields in CURRENT_SERVER_SETS:
        if key not in body or body[key] is None:
            continue
        value = body[key]
        if not isinstance(value, dict):
            errors.append(FieldError(key, "Must be an object."))
            continue
        for f in set_fields:
            if f.base in value:
                flat[f.name] = value[f.base]
    return flat, errors
