"""The random source of the SIP engine and the API: the operating system's CSPRNG, read 4 KiB at
a time.

Every registration draws a handful of random values: Call-ID, From tag, a Via branch per
request, the digest ``cnonce``, the refresh jitter; every created phone two (the random part of
its id, the AES-GCM nonce of its password). ``random.SystemRandom`` and ``os.urandom`` make one
``getrandom()`` system call for each (about 0.7 µs apiece here, 3 % of a registration's CPU).
:class:`BufferedSystemRandom` hands out the same kind of bytes from a buffer it refills with
``os.urandom(4096)``: one system call per few hundred values, the same source, the same
unpredictability. Two things a buffer could break are kept: a forked child empties the buffers
it inherited (it would repeat its parent's values otherwise: for AES-GCM nonces, under one key,
that would be fatal), and a lock keeps two threads from ever receiving the same bytes.
"""

from __future__ import annotations

import os
import random
import threading
import weakref

__all__ = ["BufferedSystemRandom", "random_bytes"]

_BUFFER = 4096
_RECIP_BPF = 2.0 ** -53
_instances: "weakref.WeakSet[BufferedSystemRandom]" = weakref.WeakSet()


class BufferedSystemRandom(random.SystemRandom):
    """``random.SystemRandom`` with its bytes read ahead (see the module's text)."""

    def __init__(self, buffer_size: int = _BUFFER):
        self._size = buffer_size
        self._buf = b""
        self._pos = 0
        self._lock = threading.Lock()
        super().__init__()
        _instances.add(self)

    def randbytes(self, n: int) -> bytes:
        if n > self._size:
            return os.urandom(n)
        with self._lock:
            pos = self._pos
            if pos + n > len(self._buf):
                self._buf = os.urandom(self._size)
                pos = 0
            self._pos = pos + n
            return self._buf[pos:pos + n]

    def random(self) -> float:
        return (int.from_bytes(self.randbytes(7), "big") >> 3) * _RECIP_BPF

    def getrandbits(self, k: int) -> int:
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        numbytes = (k + 7) // 8
        return int.from_bytes(self.randbytes(numbytes), "big") >> (numbytes * 8 - k)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0


def _after_fork_in_child() -> None:
    for rng in list(_instances):
        rng._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)


_shared = BufferedSystemRandom()


def random_bytes(n: int) -> bytes:
    """``n`` bytes of the OS CSPRNG (``os.urandom``'s source), from the process' shared buffer."""
    return _shared.randbytes(n)
