"""The emulator's clock: wall time plus an offset that a test moves forward.

Every expiry of the service reads one clock (``now()``): access tokens (``auth.tokens``), page
tokens (``phones.pagination``) and the daily rate-limit windows (``ratelimit.limiter``). Outside
emulator mode that clock is ``time.time`` itself; in emulator mode it is ``Clock.now``, so that
``advance(3600)`` expires every access token issued before it, at once, without waiting.

The offset only moves forward (``advance`` refuses negative steps): the service's rules assume
time never goes back (a token issued "in the future" would live longer than its TTL). ``reset``
returns to the real time.
"""

from __future__ import annotations

import time
from typing import Callable

MAX_ADVANCE_SECONDS = 10 * 366 * 86400  # one step: up to ten years
MAX_OFFSET_SECONDS = 100 * 366 * 86400  # in total: up to a hundred years


class Clock:
    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self.offset = 0.0

    def now(self) -> float:
        """Unix seconds, as the service sees them."""
        return self._source() + self.offset

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward (0 to ten years); returns the new ``now()``."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds != seconds:
            raise ValueError("seconds must be a number")
        if not 0 <= seconds <= MAX_ADVANCE_SECONDS:
            raise ValueError(f"seconds must be from 0 to {MAX_ADVANCE_SECONDS:,} (the clock only moves forward)")
        if self.offset + seconds > MAX_OFFSET_SECONDS:
            raise ValueError(f"the clock may be at most {MAX_OFFSET_SECONDS:,} seconds ahead; reset it first")
        self.offset += float(seconds)
        return self.now()

    def reset(self) -> None:
        """Back to the real time."""
        self.offset = 0.0

    def describe(self) -> dict:
        return {"now": self.now(), "offset_seconds": self.offset}
