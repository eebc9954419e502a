"""The request journal: every Zoom-path request and its answer, in memory, within bounds.

A ring buffer of at most ``max_entries`` entries: the oldest goes when a new one comes. Each
entry keeps at most ``max_entry_bytes`` of recorded text: its headers first (at most a quarter of
that), then the two bodies, the request's before the answer's when both do not fit (a body cut
short is kept as text, ``truncated`` says so). Secrets are masked before anything is stored
(``sipphones.emulator.masking``).

An entry is what the HTTP layer saw (``Exchange``): method, path, query, the account the request
was made for (from a verified access token, or the ``account_id`` of a token request), the
request's headers and body, the answer's status, headers and body (none when a fault rule
dropped the connection), when it started (the emulator's clock) and how long it took, and the
fault rule that answered instead of the service, if one did.

Queries select by method, path glob, account, status and time; ``count`` takes the same matcher
plus ``body``: members the request's JSON (or form) body must hold, compared as equal values,
objects compared member by member (``{"user_email": "a@example.com"}`` matches a create for that
user whatever its other fields).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from itertools import chain
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import orjson

from sipphones.emulator.masking import (
    SECRET_HEADER_NAMES, mask_form, mask_header_bytes, mask_json, mask_json_bytes, mask_json_text, may_hold_secrets,
)
from sipphones.emulator.patterns import MAX_ID_CHARS, Checked, path_matches
from sipphones.errors import ValidationFailed

DEFAULT_MAX_ENTRIES = 1000
DEFAULT_MAX_ENTRY_BYTES = 32_768
MAX_MATCHER_BODY_BYTES = 8_192
MAX_QUERY_LIMIT = 10_000

HeaderList = Sequence[tuple[bytes, bytes]]


@dataclass(slots=True)
class Exchange:
    """One request and its answer as the HTTP layer saw them (raw, unmasked: never stored as is)."""

    method: str
    path: str
    query: str
    account_id: str | None
    request_headers: HeaderList
    request_body: bytes
    status: int | None             # None: no answer was sent (the connection was dropped)
    response_headers: HeaderList
    response_body: bytes
    started: float                 # Unix seconds, the emulator's clock
    duration: float                # seconds
    fault_id: str | None = None
    request_size: int | None = None    # the bodies' full sizes, when the bodies above are cut short
    response_size: int | None = None


class Body:
    """A body as kept: decoded JSON, a form mapping, text, or nothing. A JSON body that holds no
    secret is kept as its bytes and decoded when first read (recording stays cheap)."""

    __slots__ = ("_value", "_raw", "format", "size", "truncated")

    def __init__(self, value: Any, format: str, size: int, truncated: bool = False, raw: bytes | None = None):
        self._value = value
        self._raw = raw
        self.format = format      # "json", "form", "text" or "none"
        self.size = size          # the body's length as sent, in bytes
        self.truncated = truncated

    @property
    def value(self) -> Any:
        raw = self._raw
        if raw is not None:
            try:
                self._value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self._value, self.format = raw.decode("utf-8", "replace"), "text"
            self._raw = None
        return self._value

    def as_dict(self) -> dict[str, Any]:
        value = self.value
        return {"body": value, "body_format": self.format, "body_bytes": self.size, "body_truncated": self.truncated}


@dataclass(slots=True)
class Entry:
    id: int
    time: float
    method: str
    path: str
    query: str
    account_id: str | None
    request_headers: list[tuple[bytes, bytes]]     # secrets masked
    request: Body
    status: int | None
    response_headers: list[tuple[bytes, bytes]]
    response: Body
    duration_ms: float
    fault_id: str | None
    headers_truncated: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "time": self.time, "method": self.method, "path": self.path, "query": self.query,
            "account_id": self.account_id,
            "request": {"headers": dict_of(self.request_headers), **self.request.as_dict()},
            "response": None if self.status is None else {
                "status": self.status, "headers": dict_of(self.response_headers), **self.response.as_dict()},
            "dropped": self.status is None, "duration_ms": self.duration_ms, "fault_id": self.fault_id,
            "headers_truncated": self.headers_truncated,
        }


def dict_of(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers as a mapping (a repeated header's values joined with ", ", as HTTP allows)."""
    out: dict[str, str] = {}
    for name_bytes, value_bytes in headers:
        name, value = name_bytes.decode("latin-1").lower(), value_bytes.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


@dataclass(frozen=True, slots=True)
class Matcher:
    """What selects entries: every given criterion must hold; ``body`` only for ``count``."""

    method: str | None = None
    path: str | None = None
    account_id: str | None = None
    status: int | None = None
    since: float | None = None
    until: float | None = None
    body: dict[str, Any] | None = field(default=None, hash=False)

    @classmethod
    def parse(cls, data: Any, *, with_body: bool = True) -> "Matcher":
        """From a JSON object (the control plane's); ``ValidationFailed`` naming each bad field."""
        names = {"method", "path", "account_id", "status", "since", "until"} | ({"body"} if with_body else set())
        checked = Checked(data, frozenset(names))
        body = checked.data.get("body")
        if body is not None and (not isinstance(body, dict) or len(orjson.dumps(body)) > MAX_MATCHER_BODY_BYTES):
            checked.fail("body", f"must be a JSON object of at most {MAX_MATCHER_BODY_BYTES} bytes")
            body = None
        matcher = cls(checked.method(), checked.path(), checked.text("account_id", MAX_ID_CHARS),
                      checked.integer("status", 100, 599), checked.time("since"), checked.time("until"), body)
        if checked.errors:
            raise ValidationFailed(checked.errors)
        return matcher

    def matches(self, entry: Entry) -> bool:
        return ((self.method is None or entry.method == self.method)
                and (self.account_id is None or entry.account_id == self.account_id)
                and (self.status is None or entry.status == self.status)
                and (self.since is None or entry.time >= self.since)
                and (self.until is None or entry.time <= self.until)
                and path_matches(self.path, entry.path)
                and (self.body is None or contains(entry.request.value, self.body)))


def contains(value: Any, wanted: Any) -> bool:
    """Whether ``value`` holds ``wanted``: objects member by member (recursively), else equal."""
    if isinstance(wanted, dict):
        return isinstance(value, dict) and all(k in value and contains(value[k], v) for k, v in wanted.items())
    return bool(value == wanted) and type(value) is type(wanted) or _same_number(value, wanted)


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return (isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool)
            and not isinstance(b, bool) and a == b)


class Journal:
    """The bounded journal of one server process (thread-safe: the in-process mode may call it
    from a test's thread while the app records)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
                 now: Callable[[], float] = time.time, enabled: bool = True):
        if not 1 <= max_entries <= 1_000_000:
            raise ValueError(f"the journal's max entries must be from 1 to 1,000,000, not {max_entries}")
        if not 1024 <= max_entry_bytes <= 16 * 1024 * 1024:
            raise ValueError(f"the journal's max bytes per entry must be from 1,024 to 16 MiB, not {max_entry_bytes}")
        self.max_entries = max_entries
        self.max_entry_bytes = max_entry_bytes
        self.now = now
        self.enabled = enabled
        self._entries: deque[Entry] = deque(maxlen=max_entries)
        self._next_id = 1
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, exchange: Exchange) -> Entry | None:
        """Stores ``exchange``, masked and cut to the bounds; None when the journal is off."""
        if not self.enabled:
            return None
        budget = self.max_entry_bytes
        request_headers, used, cut_request, request_type = _headers(exchange.request_headers, budget // 4)
        response_headers, used_too, cut_response, response_type = _headers(exchange.response_headers,
                                                                           budget // 4 - used)
        budget -= used + used_too
        request_size = _size(exchange.request_body, exchange.request_size)
        response_size = _size(exchange.response_body, exchange.response_size)
        request_share = max(budget // 2, budget - response_size)
        request = _body(exchange.request_body, request_size, request_type, request_share)
        response = _body(exchange.response_body, response_size, response_type,
                         budget - min(request_size, request_share))
        with self._lock:
            entry = Entry(self._next_id, exchange.started, exchange.method, exchange.path, exchange.query,
                          exchange.account_id, request_headers, request, exchange.status, response_headers,
                          response, round(exchange.duration * 1000, 3), exchange.fault_id,
                          cut_request or cut_response)
            self._next_id += 1
            self._entries.append(entry)
        return entry

    def query(self, matcher: Matcher, *, limit: int = 100, newest_first: bool = False) -> tuple[list[Entry], int]:
        """The first ``limit`` entries ``matcher`` selects (oldest first unless ``newest_first``)
        and how many it selects in all."""
        entries = self._snapshot()
        if newest_first:
            entries.reverse()
        selected = [e for e in entries if matcher.matches(e)]
        return selected[:max(0, min(limit, MAX_QUERY_LIMIT))], len(selected)

    def get(self, entry_id: int) -> Entry | None:
        """The entry numbered ``entry_id``, while the journal still holds it."""
        with self._lock:
            if not self._entries or not self._entries[0].id <= entry_id <= self._entries[-1].id:
                return None
            return self._entries[entry_id - self._entries[0].id]   # ids are consecutive

    def count(self, matcher: Matcher) -> int:
        return sum(1 for e in self._snapshot() if matcher.matches(e))

    def clear(self) -> int:
        """Forgets every entry; how many there were."""
        with self._lock:
            n = len(self._entries)
            self._entries.clear()
            return n

    def _snapshot(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)


def _headers(raw: Sequence[tuple[bytes, bytes]], budget: int) -> tuple[list[tuple[bytes, bytes]], int, bool, str]:
    """Masked headers within ``budget`` bytes; the bytes used; whether some were left out; the
    content type (its media type, in lower case). ASGI header names are in lower case; they are
    decoded when an entry is read. (The common case - all headers fit - runs in C: one size
    sum, one dict.)"""
    if not isinstance(raw, (list, tuple)):
        raw = list(raw)          # any iterable ASGI allows, read once
    index = dict(raw)
    content_type = index.get(b"content-type", b"").partition(b";")[0].strip().lower().decode("latin-1")
    if SECRET_HEADER_NAMES.isdisjoint(index):
        out = list(raw)
    else:
        out = [(n, mask_header_bytes(v)) if n in SECRET_HEADER_NAMES else (n, v) for n, v in raw]
    used = sum(map(len, chain.from_iterable(out)))
    if used <= budget:
        return out, used, False, content_type
    kept = []
    used = 0
    for name, value in out:
        size = len(name) + len(value)
        if used + size <= budget:
            used += size
            kept.append((name, value))
    return kept, used, True, content_type


def _size(raw: bytes, declared: int | None) -> int:
    return len(raw) if declared is None else max(declared, len(raw))


def _body(raw: bytes, size: int, content_type: str, budget: int) -> Body:
    """A body as kept: ``raw`` is all of it, or its start when shorter than ``size``."""
    if not size:
        return Body(None, "none", 0)
    budget = max(0, budget)
    complete = len(raw) == size
    if content_type == "application/x-www-form-urlencoded":
        form = mask_form(raw.decode("utf-8", "replace"))
        if complete and size <= budget:
            return Body(form, "form", size)
        return Body(orjson.dumps(form).decode()[:budget], "text", size, True)
    if content_type.endswith("json") or raw[:1] in (b"{", b"["):
        masked = None
        if complete:
            low = raw.lower()
            masked = mask_json_bytes(raw, low) if may_hold_secrets(raw, low) else raw
        if masked is not None:
            if size <= budget:
                return Body(None, "json", size, raw=masked)       # decoded when read
            return Body(masked[:budget].decode("utf-8", "replace"), "text", size, True)
        if complete:
            try:
                document = orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
            else:
                mask_json(document)
                if size <= budget:
                    return Body(document, "json", size)
                return Body(orjson.dumps(document).decode()[:budget], "text", size, True)
        text = mask_json_text(raw.decode("utf-8", "replace"))
        return Body(text[:budget], "text", size, not complete or len(text) > budget)
    text = raw[:budget + 1].decode("utf-8", "replace")
    return Body(text[:budget], "text", size, not complete or len(text) > budget)
