"""Counting requests against Zoom's limits, in memory or in Redis (shared by server processes).

Windows. Both windows are fixed and keyed by the clock, not by the first request: the per-second
window is the current epoch second (``...:s:<int(now)>``) and the daily window is the current UTC
date (``...:d:<YYYYMMDD>``), so the day resets at 00:00 UTC as Zoom's does, every process that
shares a Redis agrees on the window boundaries, and a test can drive the windows with ``now``.
Storage expiry only collects old keys; it never decides a window.

Counting. Each window is one counter with an atomic increment (see counters.py: Redis ``INCRBY``
through the ``limits`` library, so concurrent processes never both take the last slot; or this
process's memory). Per request that is one storage round trip on Pro/Business (the second) and
two on Free (the second, then the day); the first request of a window adds Redis' ``EXPIRE``.
The second is counted first, so a request refused per second does not spend the daily quota. A
counter may pass its limit (refused requests still count in their own window); that only keeps
the window closed, which it is anyway.

Headers (on every response of a rate-limited endpoint, success or error):
  ``X-RateLimit-Category``  the endpoint's label: ``Light``, ``Medium`` (or ``Heavy``).
  ``X-RateLimit-Type``      ``Daily-limit`` on plans with a daily quota (Free), else ``QPS``;
                            on a 429 it names the window that refused the request.
  ``X-RateLimit-Limit``     that window's limit: the daily quota on Free (6000 Light, 2000
                            Medium, 1000 Heavy; Zoom's own responses show 6000), the per-second
                            limit on Pro and Business (30/80 Light, 20/60 Medium, 10/40 Heavy),
                            and the per-second limit on a per-second 429 (4/2/1 on Free).
  ``X-RateLimit-Remaining`` requests left in that window after this one (0 on a 429).
  ``Retry-After``           on a 429 only. Per second: delay-seconds, always ``1`` (the window
                            is the current clock second). Daily: an ISO-8601 UTC timestamp of the
                            next 00:00 UTC, e.g. ``2026-11-28T00:00:00Z``, as Zoom documents it
                            (not an HTTP-date: Zoom clients parse Zoom's format).
Unlimited accounts are not counted and get no ``X-RateLimit-*`` headers.

Failure. If Redis does not answer within its timeout (``SIPPHONES_REDIS_TIMEOUT_MS``, 50 ms; see
counters.py), the request is let through without headers, and a circuit breaker opens: for the
cool-down (``SIPPHONES_REDIS_BREAKER_COOLDOWN_MS``, 2 s) every request passes without asking Redis
(it costs nothing), then one request probes Redis (half-open; the others still pass unasked) and
closes the breaker if Redis answers, or opens it for another cool-down. A frozen Redis thus costs
one request the timeout per cool-down, not every request. One warning is logged when the breaker
opens and one when it closes, never per request: the API stays up and the operator sees why, and
for how long, limits were off.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Callable

from sipphones.accounts.models import Account
from sipphones.errors import RateLimited
from sipphones.ratelimit.counters import REDIS_TIMEOUT, Counters, MemoryCounters, counters_for
from sipphones.ratelimit.policy import Label, limit_for

log = logging.getLogger("sipphones.ratelimit")

SECOND_KEY_TTL = 2          # seconds a per-second counter is kept (its window is 1 s)
DAY_KEY_TTL = 25 * 3600     # seconds a daily counter is kept (its window ends at 00:00 UTC)
BREAKER_COOLDOWN = 2.0      # seconds the storage is left alone after a failure, before one probe


@dataclass(frozen=True)
class Outcome:
    """An admitted request: the headers to put on its response."""

    headers: dict[str, str]


def second_key(account_id: str, label: Label, now: float) -> str:
    return f"sipphones:{account_id}:{label.value}:s:{int(now)}"


def day_key(account_id: str, label: Label, now: float) -> str:
    return f"sipphones:{account_id}:{label.value}:d:{utc_date(now)}"


def utc_date(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y%m%d")


def next_utc_midnight(now: float) -> str:
    """The moment the daily quota resets, as Zoom writes it in ``Retry-After``."""
    day = dt.datetime.fromtimestamp(now, dt.timezone.utc).date() + dt.timedelta(days=1)
    return f"{day.isoformat()}T00:00:00Z"


class Breaker:
    """A circuit breaker around the counter storage, one per process (one event loop).

    Closed: every request asks the storage. A failure opens it: no request asks the storage until
    ``cooldown`` seconds have passed; then one request is let through as the probe (half-open),
    and the next one only a cool-down later, whatever became of this one (a probe that never
    reports back, e.g. cancelled, cannot keep the breaker open). An answer closes the breaker, a
    failure opens it for another cool-down. ``failed``/``succeeded`` say whether the call
    changed the state between closed and open, so that each change is logged once.
    """

    def __init__(self, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self._clock = clock
        self.open = False
        self._probe_at = 0.0       # while open: the clock time from which one request may probe

    def allow(self) -> bool:
        """May this request ask the storage? (Closed: yes. Open: only as the probe, when one is due.)"""
        if not self.open:
            return True
        now = self._clock()
        if now < self._probe_at:
            return False
        self._probe_at = now + self.cooldown
        return True

    def failed(self) -> bool:
        """A storage call failed. True when this opened a closed breaker."""
        opened = not self.open
        self.open = True
        self._probe_at = self._clock() + self.cooldown
        return opened

    def succeeded(self) -> bool:
        """A storage call answered. True when this closed an open breaker."""
        if not self.open:
            return False
        self.open = False
        return True


class RateLimiter:
    """Zoom's per-account, per-label, per-plan limits; one instance per server process."""

    def __init__(self, redis_url: str = "", *, storage: Counters | None = None, timeout: float = REDIS_TIMEOUT,
                 cooldown: float = BREAKER_COOLDOWN, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time):
        """``clock`` times the breaker's cool-down; ``wall_clock`` (the service's clock: ``time.time``,
        or the emulator's ``Clock.now``) decides the per-second and daily windows."""
        self.wall_clock = wall_clock
        self.storage = storage if storage is not None else counters_for(redis_url, timeout)
        self.backend = "memory" if isinstance(self.storage, MemoryCounters) else "redis"
        self.breaker = Breaker(cooldown, clock)

    async def hit(self, account: Account, label: Label, now: float | None = None) -> Outcome:
        """Count one request of ``account`` on an endpoint labelled ``label``.

        Returns the headers for the response; raises ``RateLimited`` (carrying the 429's
        headers) when the per-second window or the daily quota is exhausted.
        """
        if account.unlimited:
            return Outcome({})
        breaker = self.breaker
        if not breaker.allow():
            return Outcome({})  # the storage failed recently: pass without asking it (see Failure)
        now = self.wall_clock() if now is None else now
        limit = limit_for(label, account.plan)
        try:
            used = await self.storage.incr(second_key(account.id, label, now), SECOND_KEY_TTL)
            if limit.per_day is not None and used <= limit.per_second:
                used_today = await self.storage.incr(day_key(account.id, label, now), DAY_KEY_TTL)
        except Exception as e:  # noqa: BLE001 - storage down: let traffic through, say so in the log
            if breaker.failed():
                log.warning("rate-limit storage (%s) failed, requests are not limited; asking it again every "
                            "%g s: %s: %s", self.backend, breaker.cooldown, type(e).__name__, e)
            return Outcome({})
        if breaker.succeeded():
            log.warning("rate-limit storage (%s) answers again, requests are limited again", self.backend)
        if used > limit.per_second:
            raise RateLimited(daily=False, headers={
                **_headers(label, "QPS", limit.per_second, 0), "Retry-After": "1"})
        if limit.per_day is None:
            return Outcome(_headers(label, "QPS", limit.per_second, limit.per_second - used))
        if used_today > limit.per_day:
            raise RateLimited(daily=True, headers={
                **_headers(label, "Daily-limit", limit.per_day, 0), "Retry-After": next_utc_midnight(now)})
        return Outcome(_headers(label, "Daily-limit", limit.per_day, limit.per_day - used_today))

    async def healthy(self) -> bool:
        try:
            return bool(await self.storage.check())
        except Exception:  # noqa: BLE001
            return False

    async def reset(self) -> None:
        await self.storage.reset()


def _headers(label: Label, kind: str, limit: int, remaining: int) -> dict[str, str]:
    return {
        "X-RateLimit-Category": label.value,
        "X-RateLimit-Type": kind,
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, remaining)),
    }
