"""Where the rate-limit counters live: this process's memory, or Redis (shared by processes).

Both offer the one operation the limiter needs, ``incr(key, expiry) -> new count``, which is
atomic: Redis' ``INCRBY`` through the ``limits`` library's async Redis storage (its redis-py
implementation, ``redis.asyncio``), and a plain dict update with no ``await`` in between in memory
(one event loop per process).

Redis gets ``timeout`` seconds (``SIPPHONES_REDIS_TIMEOUT_MS``, 50 ms) to answer each command
(redis-py's ``socket_timeout``, passed through ``limits``' storage options), and no retries: a
Redis that stops answering costs a request that timeout once, after which the limiter's circuit
breaker (limiter.py) stops asking it for a while. (``limits``' default client, coredis, retried a
timed-out command: with its 1 s timeouts a frozen Redis held every request ~3 s.) Connecting gets
at least ``REDIS_CONNECT_TIMEOUT`` (``socket_connect_timeout``): a worker that meets a burst opens
a connection per concurrent request at once, and on a busy 2-core machine 60 of them took more
than 50 ms, which would switch the limits off for a cool-down with Redis well. A frozen Redis
still accepts connections (its kernel does), so the command timeout is what catches it; only an
unreachable host waits the connect timeout, and the breaker lets one request per cool-down pay it.

Why not ``limits``' own ``MemoryStorage``: it starts an asyncio task on every increment that walks
every key it holds, so a hit costs O(keys) — measured 55 µs with 400 live keys and 480 µs with
2,000 (a day's worth of free accounts' daily counters), against a request budget of ~300 µs.
``MemoryCounters`` is O(1) per hit and drops expired keys in one sweep every few seconds.

Memory counters are per process: with several workers and no Redis, each worker counts alone.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

SWEEP_INTERVAL = 5.0  # seconds between sweeps of expired memory counters
REDIS_TIMEOUT = 0.05  # seconds to answer a command; beyond that the limiter lets requests through
REDIS_CONNECT_TIMEOUT = 1.0  # seconds to connect, at least (see above)


class Counters(Protocol):
    async def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...

    async def check(self) -> bool: ...

    async def reset(self) -> int | None: ...


class MemoryCounters:
    """Fixed-window counters in this process; ``expiry`` (seconds) only bounds how long a key lives."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: dict[str, list[float]] = {}  # key -> [count, expires_at (clock time)]
        self._next_sweep = clock() + SWEEP_INTERVAL

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        entry = self._counts.get(key)
        if entry is None or entry[1] <= now:
            entry = self._counts[key] = [0, now + expiry]
        entry[0] += amount
        return int(entry[0])

    def _sweep(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        self._next_sweep = now + SWEEP_INTERVAL

    def __len__(self) -> int:
        return len(self._counts)

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        n = len(self._counts)
        self._counts.clear()
        return n


def counters_for(redis_url: str, timeout: float = REDIS_TIMEOUT) -> Counters:
    """Redis (``redis://``, ``rediss://``, ``redis+unix://``, ``redis+sentinel://``) or memory."""
    if not redis_url:
        return MemoryCounters()
    # Imported only for Redis: ``limits`` costs ~25 ms of every worker's start, and memory
    # counters never use it.
    from limits.storage import storage_from_string
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    url = redis_url if redis_url.startswith("async+") else "async+" + redis_url
    return storage_from_string(url, implementation="redispy", socket_timeout=timeout,
                               socket_connect_timeout=max(timeout, REDIS_CONNECT_TIMEOUT),
                               retry=Retry(NoBackoff(), 0))
