"""Two server processes on one database share one limit through Redis (SIPPHONES_REDIS_URL)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sipphones.accounts.models import Account, Plan
from sipphones.errors import RateLimited
from sipphones.ratelimit.limiter import RateLimiter
from sipphones.ratelimit.policy import Label
from tests.ratelimit.helpers import (
    COUNTING_TIMEOUT, avoid_utc_midnight, burst_in_one_second, next_utc_midnight_iso, quiet_seconds_today,
)
from tests.servers import Admin, ServerProcess, get_token, start_server


@pytest.fixture(scope="module")
def redis_pair(tmp_path_factory, redis_url) -> tuple[ServerProcess, ServerProcess]:
    data_dir = tmp_path_factory.mktemp("shared")  # one data dir: the same database and signing keys
    url = f"sqlite:///{data_dir / 'sipphones.db'}"
    env = {"SIPPHONES_REDIS_URL": redis_url, "SIPPHONES_REDIS_TIMEOUT_MS": str(int(COUNTING_TIMEOUT * 1000))}
    first = start_server(url, data_dir, extra_env=env)
    try:
        second = start_server(url, data_dir, extra_env=env)
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()


@pytest.fixture
def free_account_on_both(redis_pair):
    a, b = redis_pair
    admin = Admin(a.database_url, a.data_dir)
    creds = admin.account(plan=Plan.FREE, unlimited=False, name="Shared free account")
    ca, cb = a.client(), b.client()
    token = get_token(ca, creds)  # a token from one process is valid on the other
    for c in (ca, cb):
        c.headers["Authorization"] = f"Bearer {token}"
    yield creds, ca, cb
    ca.close()
    cb.close()


def test_both_servers_use_redis(redis_pair):
    for srv in redis_pair:
        assert httpx.get(f"{srv.base_url}/healthz", timeout=5).json()["rate_limit_storage"] == "redis"


def test_the_per_second_limit_is_shared(free_account_on_both):
    _, ca, cb = free_account_on_both

    def alternate():
        return [ca.get("/v2/sip_phones"), cb.get("/v2/sip_phones"), ca.get("/v2/sip_phones"),
                cb.get("/v2/sip_phones"), ca.get("/v2/sip_phones"), cb.get("/v2/sip_phones")]

    (responses,) = burst_in_one_second(alternate, 1)
    assert [r.status_code for r in responses] == [200, 200, 429, 429, 429, 429]  # 2/s for both together
    # The daily counter is shared too: the second process saw the first one's request.
    assert [r.headers["x-ratelimit-remaining"] for r in responses[:2]] == ["1999", "1998"]
    assert responses[2].json() == {"code": 429, "message": RateLimited.PER_SECOND}


def test_the_daily_quota_is_shared_and_says_when_it_resets(free_account_on_both, redis_url):
    creds, ca, cb = free_account_on_both
    avoid_utc_midnight()
    account = Account(id=creds.account_id, name="x", plan=Plan.FREE)

    async def spend_all_but_one():
        # The limiter class itself fills today's Medium counter in the shared Redis: 1,999 requests
        # at 2/s over fake seconds of today, an hour away from the real clock's current second.
        limiter = RateLimiter(redis_url, timeout=COUNTING_TIMEOUT)
        seconds = quiet_seconds_today(1000)
        for i in range(1999):
            await limiter.hit(account, Label.MEDIUM, now=seconds[i // 2] + 0.5)

    asyncio.run(spend_all_but_one())

    last = ca.get("/v2/sip_phones/phones")
    assert last.status_code == 200
    assert last.headers["x-ratelimit-remaining"] == "0"
    refused = cb.get("/v2/sip_phones/phones")
    assert refused.status_code == 429
    assert refused.json() == {"code": 429, "message": RateLimited.DAILY}
    assert refused.headers["x-ratelimit-type"] == "Daily-limit"
    assert refused.headers["x-ratelimit-limit"] == "2000"
    assert refused.headers["retry-after"] == next_utc_midnight_iso()
    # Light keeps its own quota on both servers.
    light = cb.post("/v2/sip_phones", json={})
    assert light.status_code == 400
    assert light.headers["x-ratelimit-remaining"] == "5999"
