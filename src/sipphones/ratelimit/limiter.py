"""Counting requests against Zoom's limits, in memory or in Redis (shared by server processes).

Counting uses the ``limits`` library's fixed windows: one per second and, where the plan has a
daily quota, one per UTC day. The outcome carries the values for Zoom's ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from limits import RateLimitItemPerDay, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.storage import storage_from_string
from limits.aio.strategies import FixedWindowRateLimiter

from sipphones.accounts.models import Account
from sipphones.errors import RateLimited
from sipphones.ratelimit.policy import Label, limit_for


@dataclass(frozen=True)
class Outcome:
    headers: dict[str, str]


class RateLimiter:
    def __init__(self, redis_url: str = ""):
        if redis_url:
            url = redis_url
            if url.startswith("redis://") or url.startswith("rediss://"):
                url = "async+" + url
            self.storage = storage_from_string(url)
        else:
            self.storage = MemoryStorage()
        self.strategy = FixedWindowRateLimiter(self.storage)
        self.backend = "redis" if redis_url else "memory"

    async def hit(self, account: Account, label: Label, now: float | None = None) -> Outcome:
        """Count one request; raise RateLimited (with headers) when a window is exhausted."""
        if account.unlimited:
            return Outcome({})
        limit = limit_for(label, account.plan)
        key = f"{account.id}:{label.value}"
        second = RateLimitItemPerSecond(limit.per_second)
        day = RateLimitItemPerDay(limit.per_day) if limit.per_day else None

        # The daily window is keyed by the UTC date, so it resets at 00:00 UTC as Zoom's does.
        day_key = f"{key}:{_utc_date(now)}"
        if day is not None:
            # Check the daily quota first without spending it, so a request refused per second
            # does not eat into the day.
            if not await self.strategy.test(day, "d", day_key):
                headers = self._headers(label, "Daily-limit", day.amount, 0)
                headers["Retry-After"] = _next_utc_midnight(now)
                raise RateLimited(daily=True, headers=headers)
        if not await self.strategy.hit(second, "s", key):
            headers = self._headers(label, "QPS", second.amount, 0)
            headers["Retry-After"] = "1"
            raise RateLimited(daily=False, headers=headers)
        if day is not None:
            await self.strategy.hit(day, "d", day_key)
            stats = await self.strategy.get_window_stats(day, "d", day_key)
            return Outcome(self._headers(label, "Daily-limit", day.amount, stats.remaining))
        stats = await self.strategy.get_window_stats(second, "s", key)
        return Outcome(self._headers(label, "QPS", second.amount, stats.remaining))

    @staticmethod
    def _headers(label: Label, kind: str, limit: int, remaining: int) -> dict[str, str]:
        return {
            "X-RateLimit-Category": label.value,
            "X-RateLimit-Type": kind,
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
        }

    async def reset(self) -> None:
        await self.storage.reset()


def _utc_date(now: float | None) -> str:
    return dt.datetime.fromtimestamp(time.time() if now is None else now, dt.timezone.utc).strftime("%Y%m%d")


def _next_utc_midnight(now: float | None) -> str:
    current = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.timezone.utc)
    nxt = (current + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return nxt.strftime("%Y-%m-%dT%H:%M:%SZ")
