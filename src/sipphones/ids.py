"""Opaque, URL-safe identifiers that sort by creation time.

Zoom documents phone IDs only as opaque strings. Ours are 22 characters from an alphabet in
ASCII order, so a byte-wise ``ORDER BY id`` is creation order: that is what keyset pagination
walks. The first 8 characters hold the millisecond clock, the remaining 14 are random.
"""

from __future__ import annotations

import secrets
import time

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
assert "".join(sorted(ALPHABET)) == ALPHABET and len(ALPHABET) == 64


def _encode(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(ALPHABET[value & 63])
        value >>= 6
    return "".join(reversed(out))


def new_id(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return _encode(ms & ((1 << 48) - 1), 8) + _encode(secrets.randbits(84), 14)


def new_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_client_id(length: int = 22) -> str:
    """Letters and digits only, like Zoom's client IDs (never starts with '-', safe on a command line)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))
