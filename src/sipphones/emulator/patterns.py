"""The request patterns the journal and the fault rules share: path globs, methods, times.

A path glob is matched against the whole request path (no query): ``*`` stands for any run of
characters, ``/`` included (``/v2/sip_phones*`` matches ``/v2/sip_phones/phones/abc``); ``?``
for one character; everything else is itself (no character classes: ``[`` is a plain character).
A pattern without ``*`` or ``?`` is an exact path.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any, Callable

from sipphones.errors import FieldError

MAX_PATTERN_CHARS = 512
MAX_ID_CHARS = 128
METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"})


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A predicate telling whether a path matches ``pattern`` (see the module's docstring).

    No backtracking: the pattern is cut at its ``*`` into pieces of fixed length (``?`` is one
    character); the first piece must start the path, the last end it, and each piece between is
    found leftmost after the one before (which is right for fixed-length pieces). Time grows with
    the path's length times the pattern's, whatever the pattern (a regex ``.*a.*a.*a...`` would
    take exponential time on some paths)."""
    if "*" not in pattern and "?" not in pattern:
        return pattern.__eq__
    pieces = [re.compile("".join("." if c == "?" else re.escape(c) for c in piece), re.DOTALL)
              for piece in pattern.split("*")]
    if len(pieces) == 1:
        return pieces[0].fullmatch  # type: ignore[return-value]
    first, middle, last = pieces[0], pieces[1:-1], pieces[-1]
    head, tail = len(pattern.split("*")[0]), len(pattern.split("*")[-1])

    def matches(path: str) -> bool:
        end = len(path) - tail
        if end < head or not first.match(path, 0, head) or not last.fullmatch(path, end):
            return False
        pos = head
        for piece in middle:
            found = piece.search(path, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True

    return matches


def path_matches(pattern: str | None, path: str) -> bool:
    return pattern is None or bool(compile_glob(pattern)(path))


class Checked:
    """Reads the fields of a JSON object given to the control plane, collecting one
    ``FieldError`` per bad field (``errors``) instead of stopping at the first."""

    def __init__(self, data: Any, allowed: frozenset[str]):
        self.errors: list[FieldError] = []
        if not isinstance(data, dict):
            self.errors.append(FieldError("body", "must be a JSON object"))
            data = {}
        for name in sorted(set(data) - allowed):
            self.errors.append(FieldError(str(name)[:64], "unknown field"))
        self.data = data

    def fail(self, name: str, message: str) -> None:
        self.errors.append(FieldError(name, message))

    def text(self, name: str, limit: int) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value or len(value) > limit:
            self.fail(name, f"must be a non-empty string of at most {limit} characters")
            return None
        return value

    def method(self, name: str = "method") -> str | None:
        value = self.text(name, 16)
        if value is None:
            return None
        if value.upper() not in METHODS:
            self.fail(name, f"must be one of {', '.join(sorted(METHODS))}")
            return None
        return value.upper()

    def path(self, name: str = "path") -> str | None:
        value = self.text(name, MAX_PATTERN_CHARS)
        if value is not None and not value.startswith("/"):
            self.fail(name, "must start with /")
            return None
        return value

    def integer(self, name: str, low: int, high: int) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.fail(name, f"must be an integer from {low} to {high}")
            return None
        return value

    def number(self, name: str, low: float, high: float) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            self.fail(name, f"must be a number from {low:g} to {high:g}")
            return None
        return float(value)

    def time(self, name: str) -> float | None:
        """A moment: Unix seconds, or an ISO-8601 date and time (UTC when it names no zone)."""
        value = self.data.get(name)
        if value is None:
            return None
        moment = parse_time(value)
        if moment is None:
            self.fail(name, "must be Unix seconds or an ISO-8601 date and time")
        return moment


def parse_time(value: Any) -> float | None:
    """Unix seconds from a number or an ISO-8601 text (or a text holding a number); None if neither."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if 0 <= value <= 253_402_300_799 else None   # up to the year 9999
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        return parse_time(float(value))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()
