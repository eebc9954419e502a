"""What is left of the buffered random source: nothing but the operating system's CSPRNG.

``BufferedSystemRandom`` read ``os.urandom`` 4 KiB ahead to save one ``getrandom()`` system call
per drawn value. Measured with and without it in the same run (``bench/ab_optimisations.py
entropy``; bench/README.md, "Optimisations and why they stay"), it saved nothing outside the
noise: a create draws two values, a registration seven, each about a microsecond either way,
against 120-280 µs per operation; the buffer's lock and slicing cost about what the system call
did. It went: phone ids and AES-GCM nonces call ``os.urandom``.

This name stays only because ``sipphones/sipio/client.py`` (being reworked elsewhere) still
imports it: it is ``random.SystemRandom`` itself. Once ``SipStack``'s ``rng`` defaults to
``random.SystemRandom`` there, delete this module.
"""

from __future__ import annotations

import random

__all__ = ["BufferedSystemRandom"]

BufferedSystemRandom = random.SystemRandom
