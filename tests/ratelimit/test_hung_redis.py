"""A Redis that stops answering (SIGSTOP: connections open, no replies) must cost milliseconds, not
seconds: requests pass without rate-limit headers behind a short timeout and an open circuit
breaker, one warning says so, and once Redis answers again the limits are back (one line says so).

Each test runs its own redis-server, which it freezes; the machine's shared Redis is never touched.
"""

from __future__ import annotations

import statistics
import time

import httpx
import pytest

from sipphones.accounts.models import Plan
from tests.ratelimit.helpers import FROZEN_TEST_TIMEOUT, burst_in_one_second
from tests.servers import Admin, get_token, start_sqlite_server

pytestmark = pytest.mark.redis

# The deadline each request gets from the client while Redis is frozen. Not a performance bound:
# the server's Redis timeout is FROZEN_TEST_TIMEOUT (0.2 s; 50 ms by default, which a busy CI
# machine could exceed with Redis well); before the fix a request waited ~3 s for a frozen Redis.
STALLED_DEADLINE = 1.0
COOLDOWN_MS = 300
OPENED = "requests are not limited"
CLOSED = "requests are limited again"


@pytest.fixture
def server_on_own_redis(own_redis, tmp_path):
    srv = start_sqlite_server(tmp_path / "data", extra_env={
        "SIPPHONES_REDIS_URL": own_redis.url, "SIPPHONES_REDIS_BREAKER_COOLDOWN_MS": str(COOLDOWN_MS),
        "SIPPHONES_REDIS_TIMEOUT_MS": str(int(FROZEN_TEST_TIMEOUT * 1000))})
    yield srv
    srv.stop()


def test_a_frozen_redis_costs_milliseconds_and_the_limits_come_back(own_redis, server_on_own_redis):
    srv = server_on_own_redis
    admin = Admin(srv.database_url, srv.data_dir)
    creds = admin.account(plan=Plan.FREE, unlimited=False, name="Free account on a frozen Redis")
    with srv.client() as c:
        c.headers["Authorization"] = f"Bearer {get_token(c, creds)}"
        first = c.get("/v2/sip_phones/phones")
        assert first.status_code == 200
        assert first.headers["x-ratelimit-remaining"] == "1999"  # counted in our Redis

        own_redis.stop()
        latencies = []
        for _ in range(20):
            start = time.perf_counter()
            r = c.get("/v2/sip_phones/phones", timeout=STALLED_DEADLINE)
            latencies.append(time.perf_counter() - start)
            assert r.status_code == 200  # 20 requests in a few seconds: far above Free's 2/s, all admitted
            assert "x-ratelimit-limit" not in r.headers
        print(f"frozen Redis: p50 {statistics.median(latencies) * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms over {len(latencies)} requests")
        assert srv.log().count(OPENED) == 1  # once when the breaker opens, not per request

        own_redis.resume()
        deadline = time.monotonic() + 10  # the breaker's next probe finds Redis answering
        while "x-ratelimit-limit" not in (r := c.get("/v2/sip_phones/phones")).headers:
            assert time.monotonic() < deadline, "the limits never came back after Redis answered again"
            time.sleep(COOLDOWN_MS / 1000 / 3)
        responses = burst_in_one_second(lambda: c.get("/v2/sip_phones/phones"), 3)
        assert [x.status_code for x in responses] == [200, 200, 429]  # Free's 2/s, counted in Redis again
    with own_redis.client() as redis_client:
        assert redis_client.keys(f"*sipphones:{creds.account_id}:*")  # the counters live in Redis again
    log = srv.log()
    assert log.count(OPENED) == 1 and log.count(CLOSED) == 1
