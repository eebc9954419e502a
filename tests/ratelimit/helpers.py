"""Timing helpers: the per-second window is the server's clock second (same host as the tests)."""

from __future__ import annotations

import calendar
import time
from typing import Callable, TypeVar

T = TypeVar("T")

BURST_ATTEMPTS = 3

# Redis timeouts in the tests. Where a test is about counting, not about a failing Redis, it keeps
# the 1 s it always had (the default is 50 ms): on a loaded 2-core CI machine a process can wait
# longer than 50 ms for the CPU, and a timeout would let a request pass uncounted. Tests of a
# frozen Redis use FROZEN_TEST_TIMEOUT: short against their client deadlines, safe on a busy machine.
COUNTING_TIMEOUT = 1.0
FROZEN_TEST_TIMEOUT = 0.2


def wait_for_next_second(margin: float = 0.01) -> None:
    """Sleep until just after the next clock second starts (at most ~1 s)."""
    now = time.time()
    time.sleep(int(now) + 1 + margin - now)


def burst_in_one_second(send: Callable[[], T], count: int) -> list[T]:
    """Send ``count`` requests inside one clock second, retrying (bounded) if the burst straddled one."""
    for _ in range(BURST_ATTEMPTS):
        wait_for_next_second()
        start = time.time()
        results = [send() for _ in range(count)]
        if int(time.time()) == int(start):
            return results
    raise AssertionError(f"could not fit {count} requests into one second in {BURST_ATTEMPTS} attempts")


def utc_midnight(now: float) -> float:
    return float(calendar.timegm(time.gmtime(now)[:3] + (0, 0, 0)))


def quiet_seconds_today(count: int, now: float | None = None) -> list[float]:
    """``count`` whole seconds of today's UTC date, at least an hour away from ``now``.

    Spending a daily quota through the limiter with these fake times fills today's daily counter
    without touching the per-second window of the current real second.
    """
    now = time.time() if now is None else now
    midnight = utc_midnight(now)
    assert count < 3600
    start = midnight if now - midnight > 2 * 3600 else midnight + 86400 - 3600
    return [start + i for i in range(count)]


def avoid_utc_midnight(guard: float = 15.0) -> None:
    """Daily-quota tests span a few seconds; do not let them cross 00:00 UTC."""
    now = time.time()
    left = utc_midnight(now) + 86400 - now
    if left < guard:
        time.sleep(left + 0.5)


def next_utc_midnight_iso(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(utc_midnight(now) + 86400))
