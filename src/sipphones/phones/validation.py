"""Validation of phone fields given in Zoom's flat (legacy) naming.

Both API shapes are translated to flat names first (``server_2.register_server`` becomes
``register_server2``); ``label`` turns a flat name back into the name the client sent, so every
error names the field as the client knows it. All problems are collected, then raised together as
Zoom's ``Validation Failed.`` error.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from sipphones.errors import FieldError, ValidationFailed
from sipphones.phones import rules
from sipphones.phones.fields import BY_NAME, TRANSPORTS, Kind
from sipphones.phones.models import PhoneChanges, Transport

_TRANSPORTS = frozenset(TRANSPORTS)
_MINUTES, _EMAIL, _DOMAIN, _SERVER, _TRANSPORT, _TEXT = (
    Kind.MINUTES, Kind.EMAIL, Kind.DOMAIN, Kind.SERVER, Kind.TRANSPORT, Kind.TEXT)


# Address checks are pure functions of the text, and a deployment's phones name few distinct
# servers and domains: their verdicts are remembered (bounded; addresses are not secrets).
_ADDRESS_VERDICTS_MAX = 4096
_server_verdicts: dict[str, str | None] = {}
_domain_verdicts: dict[str, str | None] = {}


def _remembered(cache: dict[str, str | None], check: Callable[[str], str | None], value: str) -> str | None:
    try:
        return cache[value]
    except KeyError:
        pass
    verdict = check(value)
    if len(cache) >= _ADDRESS_VERDICTS_MAX:
        cache.clear()
    cache[value] = verdict
    return verdict


def validate_phone_fields(
    values: dict[str, Any],
    *,
    required: Iterable[str] = (),
    label: Callable[[str], str] = lambda name: name,
    email_suffixes: tuple[str, ...] = rules.LEGACY_SUFFIXES,
    errors: Iterable[FieldError] = (),
) -> tuple[PhoneChanges, str | None]:
    """Check the given flat fields; return the changes and the ``user_email`` (if given).

    ``errors`` are problems the caller already found (e.g. a server entry that is not an object):
    they are reported together with these, in one answer."""
    errors = list(errors)
    changes = PhoneChanges()
    email: str | None = None

    for name in required:
        if values.get(name) is None:
            errors.append(FieldError(label(name), "Required field is missing."))

    for name, value in values.items():
        if value is None:
            continue
        field = BY_NAME.get(name)
        if field is None or not field.in_body:  # unknown fields are ignored, as Zoom ignores them
            continue
        where = label(name)
        kind = field.kind
        if kind is _MINUTES:
            if msg := rules.check_expire_time(value):
                errors.append(FieldError(where, msg))
            else:
                changes.scalars[name] = value
            continue
        if not isinstance(value, str):
            errors.append(FieldError(where, "Must be a string."))
            continue
        if kind is _EMAIL:
            if msg := rules.check_email(value):
                errors.append(FieldError(where, msg))
            else:
                email = value
                _, suffix = rules.split_email(value, rules.LEGACY_SUFFIXES)
                if suffix and suffix not in email_suffixes:
                    errors.append(FieldError(where, f"The platform suffix '{suffix}' is not accepted here; use one of {', '.join(email_suffixes)}."))
        elif kind is _DOMAIN:
            if msg := _remembered(_domain_verdicts, rules.check_domain, value):
                errors.append(FieldError(where, msg))
            else:
                changes.scalars[name] = value
        elif kind is _SERVER:
            if value == "":
                if field.empty_ok:  # an empty register server of set 2 or 3 removes the set
                    changes.servers.setdefault(field.slot, {})[field.base] = ""  # type: ignore[arg-type]
                else:
                    errors.append(FieldError(where, "Must not be empty."))
            elif msg := _remembered(_server_verdicts, rules.check_server, value):
                errors.append(FieldError(where, msg))
            else:
                changes.servers.setdefault(field.slot, {})[field.base] = value  # type: ignore[arg-type]
        elif kind is _TRANSPORT:
            if value == "" and field.empty_ok:
                changes.servers.setdefault(field.slot, {})[field.base] = None  # type: ignore[arg-type]
            elif value not in _TRANSPORTS:  # exactly Zoom's enum: "udp" would fail against Zoom too
                errors.append(FieldError(where, f"Must be one of {', '.join(TRANSPORTS)}."))
            else:
                changes.servers.setdefault(field.slot, {})[field.base] = Transport(value)  # type: ignore[arg-type]
        elif kind is _TEXT:
            if msg := rules.check_text(value, field.max_length, required=not field.empty_ok):  # type: ignore[arg-type]
                errors.append(FieldError(where, msg))
            else:
                changes.scalars[name] = value

    if errors:
        raise ValidationFailed(errors)
    return changes, email
