"""Redis stopped and started under two instances: while it is down requests pass (unlimited, no
X-RateLimit headers, in bounded time), and once it is back the limit is one shared limit again."""

from __future__ import annotations

import time

import pytest

from sipphones.accounts.models import Plan
from sipphones.ratelimit.policy import Label, limit_for
from tests.multi.conftest import admin_for, instance_env, new_secret_key, start_instances
from tests.multi.drive import assert_one_shared_limit, burst, clients

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

COOLDOWN_MS = 300
DOWN = "requests are not limited"
BACK = "requests are limited again"


def test_limits_pass_while_redis_is_down_and_come_back_shared(shared_postgres, restartable_redis, tmp_path):
    key = new_secret_key()
    instances = start_instances(shared_postgres, tmp_path, 2, instance_env(
        key, restartable_redis.url, SIPPHONES_REDIS_BREAKER_COOLDOWN_MS=str(COOLDOWN_MS)))
    try:
        creds = admin_for(shared_postgres, tmp_path / "admin", key).account(plan=Plan.PRO, unlimited=False)
        limit = limit_for(Label.MEDIUM, Plan.PRO).per_second
        with clients(instances, creds) as (a, b):
            assert_one_shared_limit(burst([a, b], limit), limit)

            restartable_redis.stop()  # the process exits: connections are refused
            answers = burst([a, b], limit)  # twice the limit, all admitted: limits pass while Redis is down
            assert [r.status_code for r in answers] == [200] * len(answers)
            assert all("x-ratelimit-limit" not in r.headers for r in answers)

            restartable_redis.start()  # empty, on the same port
            deadline = time.monotonic() + 10
            while not all("x-ratelimit-limit" in c.get("/v2/sip_phones/phones").headers for c in (a, b)):
                assert time.monotonic() < deadline, "the limits did not come back after Redis did"
                time.sleep(COOLDOWN_MS / 1000 / 3)
            # One limit for both again: counted in the restarted Redis (memory counters would
            # admit the limit on each instance).
            assert_one_shared_limit(burst([a, b], limit), limit)
        for srv in instances:
            log = srv.log()
            assert log.count(DOWN) == 1 and log.count(BACK) == 1, log[-2000:]
    finally:
        for srv in instances:
            srv.stop()
