"""Field rules of a SIP phone, as plain functions (no HTTP, no storage).

Each ``check_*`` returns ``None`` when the value is acceptable, else a sentence that names what is
wrong; the API layer attaches the field name and answers Zoom's ``Validation Failed.`` body.
"""

from __future__ import annotations

import ipaddress
import re

from sipphones.sip.address import HostPort  # the core's type; parse_host below is the API's grammar

MAX_NAME = 64          # domain, authorization_name, user_name, user_email (Zoom's maxLength)
MAX_VOICE_MAIL = 255   # Zoom's maxLength
MAX_PASSWORD = 255     # not documented by Zoom; a bound so nothing unbounded is stored
MAX_SERVER = 255       # not documented by Zoom; the longest DNS name plus a port fits
MAX_DISPLAY_NUMBER = 64
EXPIRE_MIN, EXPIRE_MAX, EXPIRE_DEFAULT = 1, 127, 60

# Platform suffixes a user_email may carry: each suffixed address is its own phone.
LEGACY_SUFFIXES = (".win", ".mac", ".android", ".ipad", ".iphone", ".linux", ".pc", ".mobile", ".pad")
CURRENT_SUFFIXES = (".pc", ".mobile", ".pad")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # C0 controls and DEL
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


class AddressError(ValueError):
    pass


def _is_dns_name(host: str) -> bool:
    if len(host) > 253:
        return False
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return False
    # A name made only of digits and dots would be a mistyped IPv4 address.
    return not all(label.isdigit() for label in labels)


def parse_host(text: str, *, allow_port: bool = True) -> HostPort:
    """Parse ``host[:port]`` where host is IPv4, ``[IPv6]`` or a DNS name. Raises AddressError."""
    if not isinstance(text, str) or not text:
        raise AddressError("must not be empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise AddressError("must not contain spaces")
    host, port_text, kind = text, None, "name"
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError("has an unclosed '[' around an IPv6 address")
        host, rest = text[1:end], text[end + 1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"'{host}' is not a valid IPv6 address") from None
        kind = "ipv6"
        if rest:
            if not rest.startswith(":"):
                raise AddressError("has text after the IPv6 address that is not ':port'")
            port_text = rest[1:]
    else:
        if text.count(":") > 1:
            raise AddressError("looks like an IPv6 address: write it in brackets, e.g. [2001:db8::1]:5060")
        if ":" in text:
            host, port_text = text.split(":", 1)
        if re.fullmatch(r"[0-9.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise AddressError(f"'{host}' is not a valid IPv4 address") from None
            kind = "ipv4"
        elif not _is_dns_name(host):
            raise AddressError(f"'{host}' is not a valid IPv4 address, [IPv6] address or DNS name")
    port = None
    if port_text is not None:
        if not allow_port:
            raise AddressError("must not carry a port")
        if not (port_text.isascii() and port_text.isdigit()) or not (1 <= int(port_text) <= 65535):
            raise AddressError(f"port '{port_text}' is not a number from 1 to 65535")
        port = int(port_text)
    return HostPort(host=host.lower() if kind == "name" else host, port=port, kind=kind)


def check_server(value: str) -> str | None:
    if len(value) > MAX_SERVER:
        return f"Must be at most {MAX_SERVER} characters."
    try:
        parse_host(value)
    except AddressError as e:
        return f"Invalid server address: {e}. Use an IPv4 address, a bracketed IPv6 address or a DNS name, with an optional :port."
    return None


def check_domain(value: str) -> str | None:
    if not value:
        return "Must not be empty."
    if len(value) > MAX_NAME:
        return f"Must be at most {MAX_NAME} characters."
    try:
        parse_host(value, allow_port=False)
    except AddressError as e:
        return f"Invalid SIP domain: {e}. Use a domain name or an IP address."
    return None


def check_text(value: str, max_len: int, *, required: bool = True) -> str | None:
    if required and not value:
        return "Must not be empty."
    if len(value) > max_len:
        return f"Must be at most {max_len} characters."
    if _CONTROL.search(value):
        return "Must not contain control characters."
    return None


def split_email(value: str, suffixes: tuple[str, ...]) -> tuple[str, str]:
    """``user@x.com.mac`` -> (``user@x.com``, ``.mac``); no known suffix -> (value, "")."""
    lower = value.lower()
    if not lower.endswith(suffixes):  # one C call for the common case: no suffix at all
        return value, ""
    for suffix in suffixes:
        if lower.endswith(suffix):
            base = value[: -len(suffix)]
            if _EMAIL.match(base):
                return base, value[-len(suffix):].lower()
    return value, ""


def check_email(value: str) -> str | None:
    if not value:
        return "Must not be empty."
    if len(value) > MAX_NAME:
        return f"Must be at most {MAX_NAME} characters."
    if not _EMAIL.match(value):
        return "Invalid email address."
    return None


def check_expire_time(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "Must be an integer number of minutes."
    if not (EXPIRE_MIN <= value <= EXPIRE_MAX):
        return f"Must be from {EXPIRE_MIN} to {EXPIRE_MAX} (minutes)."
    return None
