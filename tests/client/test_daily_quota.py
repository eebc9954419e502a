"""A daily quota's 429 (``Retry-After`` an ISO-8601 timestamp, hours away) is raised at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from sipphones.accounts.models import Plan
from sipphones.client import RateLimitError, RetryEvent, SipPhonesClient
from sipphones.ratelimit.counters import counters_for
from sipphones.ratelimit.limiter import day_key
from sipphones.ratelimit.policy import Label, limit_for
from tests.conftest import REDIS_URL
from tests.servers import Admin, start_sqlite_server


@pytest.mark.redis
def test_a_spent_daily_quota_is_not_waited_for(tmp_path):
    server = start_sqlite_server(tmp_path, extra_env={"SIPPHONES_REDIS_URL": REDIS_URL})
    try:
        creds = Admin(server.database_url, server.data_dir).account(plan=Plan.FREE, unlimited=False)
        # The account has spent today's list quota (and tomorrow's, should the call cross
        # midnight), counted where the server counts it.
        async def spend():
            counters, now = counters_for(REDIS_URL), time.time()
            for day in (now, now + 86_400):
                await counters.incr(day_key(creds.account_id, Label.MEDIUM, day), 3 * 86_400,
                                    amount=limit_for(Label.MEDIUM, Plan.FREE).per_day)
        asyncio.run(spend())
        events: list[RetryEvent] = []
        with SipPhonesClient(creds.account_id, creds.client_id, creds.client_secret,
                             base_url=server.base_url + "/v2", on_retry=events.append) as zoom:
            with pytest.raises(RateLimitError) as e:
                zoom.list_phones()
        assert (e.value.status_code, e.value.code) == (429, 429) and "daily" in e.value.message
        assert e.value.retry_after is not None and 60 < e.value.retry_after <= 86_400  # until 00:00 UTC
        assert len(events) <= 1  # none, unless the call began in the day's last minute
    finally:
        server.stop()
