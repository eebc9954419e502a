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
from sipphones.phones.models import PhoneChanges, Transport

_TEXT_LIMITS = {
    "user_name": rules.MAX_NAME,
    "authorization_name": rules.MAX_NAME,
    "password": rules.MAX_PASSWORD,
    "voice_mail": rules.MAX_VOICE_MAIL,
    "display_number": rules.MAX_DISPLAY_NUMBER,
}
_OPTIONAL_EMPTY_OK = {"voice_mail", "display_number"}
_TRANSPORTS = {t.value for t in Transport}


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


def _slot_of(name: str) -> tuple[str, int]:
    if name[-1] in "23" and name[:-1] in ("register_server", "proxy_server", "transport_protocol"):
        return name[:-1], int(name[-1])
    return name, 1


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
        where = label(name)
        base, slot = _slot_of(name)
        if name == "registration_expire_time":
            if msg := rules.check_expire_time(value):
                errors.append(FieldError(where, msg))
            else:
                changes.scalars[name] = value
            continue
        if not isinstance(value, str):
            errors.append(FieldError(where, "Must be a string."))
            continue
        if name == "user_email":
            if msg := rules.check_email(value):
                errors.append(FieldError(where, msg))
            else:
                email = value
                _, suffix = rules.split_email(value, rules.LEGACY_SUFFIXES)
                if suffix and suffix not in email_suffixes:
                    errors.append(FieldError(where, f"The platform suffix '{suffix}' is not accepted here; use one of {', '.join(email_suffixes)}."))
            continue
        if name == "domain":
            if msg := _remembered(_domain_verdicts, rules.check_domain, value):
                errors.append(FieldError(where, msg))
            else:
                changes.scalars[name] = value
            continue
        if base in ("register_server", "proxy_server"):
            if value == "":
                if base == "register_server" and slot == 1:
                    errors.append(FieldError(where, "Must not be empty."))
                else:
                    changes.servers.setdefault(slot, {})[base] = ""
            elif msg := _remembered(_server_verdicts, rules.check_server, value):
                errors.append(FieldError(where, msg))
            else:
                changes.servers.setdefault(slot, {})[base] = value
            continue
        if base == "transport_protocol":
            if value == "" and slot != 1:
                changes.servers.setdefault(slot, {})[base] = None
            elif value not in _TRANSPORTS:  # exactly Zoom's enum: "udp" would fail against Zoom too
                errors.append(FieldError(where, "Must be one of UDP, TCP, TLS, AUTO."))
            else:
                changes.servers.setdefault(slot, {})[base] = Transport(value)
            continue
        if name in _TEXT_LIMITS:
            if msg := rules.check_text(value, _TEXT_LIMITS[name], required=name not in _OPTIONAL_EMPTY_OK):
                errors.append(FieldError(where, msg))
            else:
                changes.scalars[name] = value
            continue
        # Unknown fields are ignored, as Zoom ignores them.

    if errors:
        raise ValidationFailed(errors)
    return changes, email
