"""SIP message objects (RFC 3261 §7) shared by the parser, the serializer and the state machines.

This module holds the data types only; parsing lives in ``sipphones.sip.parser`` and the
serializer is ``Request.to_bytes`` / ``Response.to_bytes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator

from .errors import SerializeError

# RFC 3261 §7.3.3 compact forms, and the canonical spelling used when we serialize.
COMPACT = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
    "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via",
    "o": "Event", "r": "Refer-To", "b": "Referred-By", "u": "Allow-Events", "a": "Accept-Contact",
    "j": "Reject-Contact", "d": "Request-Disposition", "x": "Session-Expires", "y": "Identity",
    "n": "Identity-Info",
}
CANONICAL = {
    name.lower(): name for name in (
        "Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq", "Contact", "Expires",
        "Min-Expires", "Retry-After", "Authorization", "Proxy-Authorization", "WWW-Authenticate",
        "Proxy-Authenticate", "Authentication-Info", "Content-Length", "Content-Type",
        "User-Agent", "Server", "Allow", "Supported", "Require", "Route", "Record-Route",
        "Path", "Date", "Warning", "Accept", "Timestamp", "Organization", "Unsupported",
        "Content-Encoding", "Subject", "Event", "Call-Info", "Reason",
    )
}
CANONICAL["www-authenticate"] = "WWW-Authenticate"
CANONICAL["call-id"] = "Call-ID"
CANONICAL["cseq"] = "CSeq"


@lru_cache(maxsize=1024)
def canonical_name(name: str) -> str:
    """Expand a compact form and give a header name its usual spelling (lookup is case-insensitive)."""
    low = name.strip().lower()
    if low in COMPACT:
        return COMPACT[low]
    return CANONICAL.get(low) or "-".join(part[:1].upper() + part[1:] for part in low.split("-"))


class Headers:
    """An ordered multi-map of header fields with case-insensitive, compact-form-aware names.

    Each stored entry is one header *line* (``add`` appends a line). ``get_all`` returns the
    lines' values as given; ``values`` additionally splits comma-separated lists (for headers
    such as Via and Contact, RFC 3261 §7.3.1), respecting quoted strings and angle brackets.
    """

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None):
        self._items: list[tuple[str, str]] = []
        for name, value in items or ():
            self.add(name, value)

    @classmethod
    def _trusted(cls, items: list[tuple[str, str]]) -> "Headers":
        """Wrap ``items`` as they are: the caller guarantees every name is ``canonical_name``
        output (the parser and the request builders, which must not pay for it twice)."""
        h = cls()   # not cls.__new__(cls): a mypyc-compiled class cannot be made that way
        h._items = items
        return h

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every line of ``name`` with one line (kept at the first line's position)."""
        key = canonical_name(name)
        out, placed = [], False
        for n, v in self._items:
            if n == key:
                if not placed:
                    out.append((key, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((key, value))
        self._items = out

    # Stored names are always canonical_name() output, which depends only on the lower-cased
    # name, so lookups compare canonical spellings directly (no per-item lower()).

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        for n, _ in self._items:
            if n == key:
                self._items = [(n, v) for n, v in self._items if n != key]
                return

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical_name(name)
        for n, v in self._items:
            if n == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name)
        return [v for n, v in self._items if n == key]

    def values(self, name: str) -> list[str]:
        out: list[str] = []
        for line in self.get_all(name):
            out.extend(split_list(line))
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> "Headers":
        h = Headers()
        h._items = list(self._items)
        return h

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, ignoring commas inside quotes or <...>."""
    if "," not in value:                            # one element: nothing to split
        value = value.strip()
        return [value] if value else []
    if '"' not in value:
        if "<" not in value:                        # nothing can hide a comma
            return [p for p in (part.strip() for part in value.split(",")) if p]
        # Only <...> can hide a comma: rejoin the pieces of a bracket left open (the state after
        # a piece is set by its last '<' or '>', as in the character loop below).
        out: list[str] = []
        pending: str | None = None
        for part in value.split(","):
            cur = part if pending is None else pending + "," + part
            if cur.rfind("<") > cur.rfind(">"):
                pending = cur
                continue
            pending = None
            cur = cur.strip()
            if cur:
                out.append(cur)
        if pending is not None:
            pending = pending.strip()
            if pending:
                out.append(pending)
        return out
    parts, buf, quoted, angle, escape = [], [], False, False, False
    for ch in value:
        if escape:
            buf.append(ch)
            escape = False
            continue
        if quoted and ch == "\\":
            buf.append(ch)
            escape = True
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle = True
        elif not quoted and ch == ">":
            angle = False
        if ch == "," and not quoted and not angle:
            parts.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    tail = "".join(buf).strip()
    if tail or parts:
        parts.append(tail)
    return [p for p in parts if p]


_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_WHITESPACE = re.compile(r"\s")   # the characters str.isspace() accepts
# Header names already checked against _TOKEN (bounded: names come from our own code and from
# parsed messages, whose names the parser checked with the same rule).
_VALID_NAMES: set[str] = set()


def _check_values(headers: Headers, stop_at: int | None = None) -> None:
    """Raise for the first header value (of the first ``stop_at`` written ones) with CR, LF or NUL."""
    n = 0
    for name, value in headers._items:
        if name == "Content-Length":
            continue
        if stop_at is not None and n >= stop_at:
            return
        n += 1
        if _FORBIDDEN.search(value):
            raise SerializeError(f"{name}: value contains CR, LF or NUL")


# (method, Request-URI) pairs that passed to_bytes's check (a phone sends the same every time).
# Bounded: cleared when full.
_GOOD_REQUEST_LINES: set[tuple[str, str]] = set()


def _forbidden_in(text: str) -> bool:
    """``_FORBIDDEN.search(text) is not None``, by three character searches (a regex scan of
    every REGISTER's header values cost more than the rest of its serialization)."""
    return "\r" in text or "\n" in text or "\x00" in text


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    """Write a message; refuse anything that would change its framing when read back.

    A CR or LF inside a header value (or NUL anywhere) would let a value smuggle extra headers
    or end the header section early, so it raises ``SerializeError`` instead of being written.
    """
    if _forbidden_in(start_line):
        raise SerializeError("start line contains CR, LF or NUL")
    lines = [start_line]
    append = lines.append
    values: list[str] = []
    for name, value in headers._items:   # names are canonical: see Headers
        if name == "Content-Length":
            continue
        if name not in _VALID_NAMES:
            if not _TOKEN.fullmatch(name):
                _check_values(headers, stop_at=len(values))   # an earlier bad value is reported first
                raise SerializeError(f"invalid header name {name!r}")
            if len(_VALID_NAMES) < 4096:
                _VALID_NAMES.add(name)
        values.append(value)
        append(f"{name}: {value}")
    if _forbidden_in("".join(values)):   # one scan; then find the culprit for the message
        _check_values(headers)
    append(f"Content-Length: {len(body)}")
    append("\r\n")
    return "\r\n".join(lines).encode("utf-8") + body


# Request and Response spell out the ``__init__`` that ``@dataclass`` would generate, so that mypyc
# compiles it (see "outputs" in sipphones.sip.registration; tests/sip/test_native_init.py checks it).
# ``headers=None`` (the default) stands for the field's default factory: a new, empty Headers().
@dataclass
class Request:
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def __init__(self, method: str, uri: str, headers: Headers | None = None, body: bytes = b"",
                 version: str = "SIP/2.0") -> None:
        self.method = method
        self.uri = uri
        self.headers = Headers() if headers is None else headers
        self.body = body
        self.version = version

    def to_bytes(self) -> bytes:
        """Serialize; Content-Length is always written from the body."""
        method, uri = self.method, self.uri
        if (method, uri) not in _GOOD_REQUEST_LINES:
            if not _TOKEN.fullmatch(method) or not uri or _WHITESPACE.search(uri):
                raise SerializeError(f"invalid request line {method!r} {uri!r}")
            if len(_GOOD_REQUEST_LINES) >= 1024:
                _GOOD_REQUEST_LINES.clear()
            _GOOD_REQUEST_LINES.add((method, uri))
        return _serialize(f"{self.method} {self.uri} {self.version}", self.headers, self.body)


@dataclass
class Response:
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def __init__(self, status: int, reason: str, headers: Headers | None = None, body: bytes = b"",
                 version: str = "SIP/2.0") -> None:
        self.status = status
        self.reason = reason
        self.headers = Headers() if headers is None else headers
        self.body = body
        self.version = version

    def to_bytes(self) -> bytes:
        """Serialize; Content-Length is always written from the body."""
        if not 100 <= self.status <= 699:
            raise SerializeError(f"status code {self.status} is not 100-699")
        return _serialize(f"{self.version} {self.status} {self.reason}", self.headers, self.body)


Message = Request | Response
