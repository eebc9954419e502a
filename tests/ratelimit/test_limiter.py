"""The RateLimiter class against both real storages (memory, Redis), driven with explicit ``now``."""

from __future__ import annotations

import asyncio
import calendar
import logging
import uuid

import pytest

from sipphones.accounts.models import Account, Plan
from sipphones.errors import RateLimited
from sipphones.ratelimit.limiter import RateLimiter
from sipphones.ratelimit.policy import Label
from tests.ratelimit.helpers import COUNTING_TIMEOUT, FROZEN_TEST_TIMEOUT

# 2030-03-04 12:00:00 UTC: far from any day boundary.
NOON = float(calendar.timegm((2030, 3, 4, 12, 0, 0)))
LAST_SECOND_OF_DAY = float(calendar.timegm((2030, 3, 4, 23, 59, 59)))


def account(plan: Plan = Plan.FREE, unlimited: bool = False) -> Account:
    return Account(id=f"acc-{uuid.uuid4().hex}", name="t", plan=plan, unlimited=unlimited)


@pytest.fixture(params=["memory", "redis"])
def limiter(request) -> RateLimiter:
    if request.param == "memory":
        return RateLimiter()
    lim = RateLimiter(request.getfixturevalue("redis_url"), timeout=COUNTING_TIMEOUT)
    assert lim.backend == "redis"
    return lim


async def admitted(lim: RateLimiter, acc: Account, label: Label, now: float, n: int) -> list:
    """Hit n times; return each outcome's headers, or the RateLimited error."""
    out = []
    for _ in range(n):
        try:
            out.append((await lim.hit(acc, label, now=now)).headers)
        except RateLimited as e:
            out.append(e)
    return out


async def test_per_second_window_on_pro(limiter):
    acc = account(Plan.PRO)
    results = await admitted(limiter, acc, Label.MEDIUM, NOON + 0.1, 21)
    assert [r["X-RateLimit-Remaining"] for r in results[:20]] == [str(n) for n in range(19, -1, -1)]
    assert {(r["X-RateLimit-Category"], r["X-RateLimit-Type"], r["X-RateLimit-Limit"]) for r in results[:20]} == {
        ("Medium", "QPS", "20")}
    refused = results[20]
    assert isinstance(refused, RateLimited)
    assert refused.status == 429 and refused.body() == {"code": 429, "message": RateLimited.PER_SECOND}
    assert refused.headers() == {"X-RateLimit-Category": "Medium", "X-RateLimit-Type": "QPS",
                                 "X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "Retry-After": "1"}
    # Same clock second, later in it: still refused. The next clock second: a fresh window.
    assert isinstance((await admitted(limiter, acc, Label.MEDIUM, NOON + 0.999, 1))[0], RateLimited)
    assert (await limiter.hit(acc, Label.MEDIUM, now=NOON + 1.0)).headers["X-RateLimit-Remaining"] == "19"


@pytest.mark.parametrize("plan,label,per_second", [
    (Plan.PRO, Label.LIGHT, 30), (Plan.BUSINESS, Label.LIGHT, 80), (Plan.BUSINESS, Label.MEDIUM, 60),
    (Plan.FREE, Label.LIGHT, 4), (Plan.FREE, Label.MEDIUM, 2),
])
async def test_each_plan_admits_its_per_second_limit(limiter, plan, label, per_second):
    results = await admitted(limiter, account(plan), label, NOON, per_second + 2)
    assert [isinstance(r, RateLimited) for r in results] == [False] * per_second + [True, True]


async def test_free_plan_reports_the_daily_quota(limiter):
    acc = account(Plan.FREE)
    light = await limiter.hit(acc, Label.LIGHT, now=NOON)
    medium = await limiter.hit(acc, Label.MEDIUM, now=NOON)
    assert light.headers == {"X-RateLimit-Category": "Light", "X-RateLimit-Type": "Daily-limit",
                             "X-RateLimit-Limit": "6000", "X-RateLimit-Remaining": "5999"}
    assert medium.headers == {"X-RateLimit-Category": "Medium", "X-RateLimit-Type": "Daily-limit",
                              "X-RateLimit-Limit": "2000", "X-RateLimit-Remaining": "1999"}


async def test_daily_quota_runs_out_and_resets_at_midnight_utc(limiter):
    acc = account(Plan.FREE)
    # 2,000 Medium requests at 2/s: 1,000 seconds ending with the day's last second.
    start = LAST_SECOND_OF_DAY - 999
    remaining = []
    for i in range(1000):
        for _ in range(2):
            remaining.append(int((await limiter.hit(acc, Label.MEDIUM, now=start + i + 0.5)).headers[
                "X-RateLimit-Remaining"]))
    assert remaining == list(range(1999, -1, -1))

    with pytest.raises(RateLimited) as refused:  # a fresh second, but the day is spent
        await limiter.hit(acc, Label.MEDIUM, now=LAST_SECOND_OF_DAY + 0.9)
    # Same second as the last two admitted requests: the per-second window answers first.
    assert refused.value.headers()["X-RateLimit-Type"] == "QPS"

    with pytest.raises(RateLimited) as refused:
        await limiter.hit(acc, Label.MEDIUM, now=LAST_SECOND_OF_DAY - 1000.5)  # earlier today, fresh second
    assert refused.value.body() == {"code": 429, "message": RateLimited.DAILY}
    assert refused.value.headers() == {
        "X-RateLimit-Category": "Medium", "X-RateLimit-Type": "Daily-limit", "X-RateLimit-Limit": "2000",
        "X-RateLimit-Remaining": "0", "Retry-After": "2030-03-05T00:00:00Z"}

    # Light has its own quota; the next UTC day starts afresh.
    assert (await limiter.hit(acc, Label.LIGHT, now=LAST_SECOND_OF_DAY - 2000)).headers[
        "X-RateLimit-Remaining"] == "5999"
    nxt = await limiter.hit(acc, Label.MEDIUM, now=LAST_SECOND_OF_DAY + 1.0)
    assert nxt.headers["X-RateLimit-Remaining"] == "1999"


async def test_requests_refused_per_second_do_not_spend_the_day(limiter):
    acc = account(Plan.FREE)
    results = await admitted(limiter, acc, Label.LIGHT, NOON, 10)
    assert sum(isinstance(r, RateLimited) for r in results) == 6
    after = await limiter.hit(acc, Label.LIGHT, now=NOON + 1)
    assert after.headers["X-RateLimit-Remaining"] == str(6000 - 5)


async def test_accounts_and_labels_are_counted_apart(limiter):
    a, b = account(Plan.FREE), account(Plan.FREE)
    assert sum(isinstance(r, RateLimited) for r in await admitted(limiter, a, Label.MEDIUM, NOON, 5)) == 3
    assert not isinstance((await admitted(limiter, b, Label.MEDIUM, NOON, 1))[0], RateLimited)
    assert not isinstance((await admitted(limiter, a, Label.LIGHT, NOON, 1))[0], RateLimited)


async def test_unlimited_accounts_are_not_counted(limiter):
    acc = account(Plan.FREE, unlimited=True)
    results = await admitted(limiter, acc, Label.MEDIUM, NOON, 50)
    assert results == [{}] * 50
    limited = Account(id=acc.id, name="t", plan=Plan.FREE, unlimited=False)  # counting starts from zero
    assert (await limiter.hit(limited, Label.MEDIUM, now=NOON)).headers["X-RateLimit-Remaining"] == "1999"


async def test_concurrent_hits_never_admit_more_than_the_limit(limiter, request):
    """Many concurrent requests (and, on Redis, two limiters = two processes' pools) race for 20."""
    acc = account(Plan.PRO)
    others = [limiter]
    if limiter.backend == "redis":
        others.append(RateLimiter(request.getfixturevalue("redis_url"), timeout=COUNTING_TIMEOUT))
    results = await asyncio.gather(*(
        admitted(others[i % len(others)], acc, Label.MEDIUM, NOON, 1) for i in range(60)))
    admitted_count = sum(not isinstance(r[0], RateLimited) for r in results)
    assert admitted_count == 20
    remaining = sorted(int(r[0]["X-RateLimit-Remaining"]) for r in results if not isinstance(r[0], RateLimited))
    assert remaining == list(range(20))  # every slot handed out exactly once


async def test_unreachable_redis_lets_requests_through_and_logs(caplog):
    lim = RateLimiter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="sipphones.ratelimit"):
        outcome = await lim.hit(account(Plan.FREE), Label.MEDIUM, now=NOON)
        await lim.hit(account(Plan.FREE), Label.MEDIUM, now=NOON)
    assert outcome.headers == {}
    warnings = [r for r in caplog.records if "not limited" in r.getMessage()]
    assert len(warnings) == 1  # once, not per request
    assert not await lim.healthy()


async def test_a_frozen_redis_opens_the_breaker_and_one_probe_closes_it(own_redis, caplog):
    """Redis frozen (SIGSTOP): one request waits the timeout, then the breaker skips Redis for the
    cool-down; after it, one request probes: a failure reopens it, an answer closes it. One log
    line when it opens, one when it closes. The breaker's clock is driven by the test."""
    clock = [100.0]
    lim = RateLimiter(own_redis.url, timeout=FROZEN_TEST_TIMEOUT, cooldown=5.0, clock=lambda: clock[0])
    acc = account(Plan.PRO)
    opened = "requests are not limited"
    closed = "requests are limited again"

    def logged(text: str) -> int:
        return sum(text in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="sipphones.ratelimit"):
        assert (await lim.hit(acc, Label.MEDIUM, now=NOON)).headers["X-RateLimit-Remaining"] == "19"
        own_redis.stop()
        assert (await lim.hit(acc, Label.MEDIUM, now=NOON)).headers == {}  # timed out: passes unlimited
        assert lim.breaker.open and logged(opened) == 1

        own_redis.resume()
        # Within the cool-down nobody asks Redis, though it answers again: no headers, no count.
        assert [(await lim.hit(acc, Label.MEDIUM, now=NOON)).headers for _ in range(30)] == [{}] * 30
        assert lim.breaker.open

        own_redis.stop()
        clock[0] += 5.0  # the cool-down is over: the next request probes, and fails
        assert (await lim.hit(acc, Label.MEDIUM, now=NOON)).headers == {}
        assert lim.breaker.open and logged(opened) == 1  # still the one warning
        clock[0] += 4.9
        own_redis.resume()
        assert (await lim.hit(acc, Label.MEDIUM, now=NOON)).headers == {}  # not yet due: not asked
        clock[0] += 0.1
        probe = await lim.hit(acc, Label.MEDIUM, now=NOON + 1)  # due: asks Redis, which answers
        assert probe.headers["X-RateLimit-Remaining"] == "19"
        assert not lim.breaker.open and logged(closed) == 1
        for _ in range(19):
            await lim.hit(acc, Label.MEDIUM, now=NOON + 1)
        with pytest.raises(RateLimited):  # counted in Redis again
            await lim.hit(acc, Label.MEDIUM, now=NOON + 1)
    assert logged(opened) == 1 and logged(closed) == 1


async def test_memory_counters_forget_expired_windows():
    from sipphones.ratelimit.counters import SWEEP_INTERVAL, MemoryCounters

    clock = [1000.0]
    counters = MemoryCounters(clock=lambda: clock[0])
    assert [await counters.incr("s:1", 2) for _ in range(3)] == [1, 2, 3]
    await counters.incr("d:1", 90000)
    clock[0] += 2.5  # the 2-second key has expired: counting restarts, the daily key stays
    assert await counters.incr("s:1", 2) == 1
    assert await counters.incr("d:1", 90000) == 2
    await counters.incr("s:2", 2)
    clock[0] += SWEEP_INTERVAL + 3  # the next increment sweeps the expired keys away
    await counters.incr("d:1", 90000)
    assert len(counters) == 1
