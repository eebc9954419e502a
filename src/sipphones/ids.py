"""Opaque, URL-safe identifiers that sort by creation time.

Zoom documents phone IDs only as opaque strings. Ours are 22 characters from an alphabet in
ASCII order, so a byte-wise ``ORDER BY id`` is creation order: that is what keyset pagination
walks. The first 8 characters hold the millisecond clock, the remaining 14 are random.
"""

from __future__ import annotations

import base64
import os
import secrets
import time


ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
assert "".join(sorted(ALPHABET)) == ALPHABET and len(ALPHABET) == 64

# Base64 writes each 6-bit value v as its alphabet's v-th character; mapping that character to
# ALPHABET[v] turns standard base64 into this alphabet (one C call instead of a loop per character).
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TO_ALPHABET = bytes.maketrans(_B64, ALPHABET.encode())


def new_id(now_ms: int | None = None, random_bytes: bytes | None = None) -> str:
    """8 characters of the millisecond clock (48 bits, big-endian), then 14 random ones (84 bits).
    ``random_bytes`` (11 bytes) stands in for the OS's randomness: the emulator's seeded ids."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    noise = os.urandom(11) if random_bytes is None else random_bytes
    raw = base64.b64encode((ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big")) + base64.b64encode(noise)[:14]
    return raw.translate(_TO_ALPHABET).decode()


def new_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_client_id(length: int = 22) -> str:
    """Letters and digits only, like Zoom's client IDs (never starts with '-', safe on a command line)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))
