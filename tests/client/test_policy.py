"""The client's pure parts: Retry-After values, what may be retried, the token URL."""

from __future__ import annotations

import calendar

import pytest

from sipphones.client import RateLimitError, TransportError, ZoomAPIError
from sipphones.client._core import token_url_for
from sipphones.client._retry import RetryPolicy, parse_retry_after

NOW = calendar.timegm((2026, 11, 27, 23, 0, 0))  # 2026-11-27T23:00:00Z


@pytest.mark.parametrize("value, seconds", [
    ("1", 1.0), (" 30 ", 30.0), ("0", 0.0), ("-5", 0.0),
    ("2026-11-28T00:00:00Z", 3600.0),                 # Zoom's daily quota
    ("2026-11-28T00:00:00+00:00", 3600.0),
    ("2026-11-28T00:00:00", 3600.0),                  # no zone: UTC
    ("Sat, 28 Nov 2026 00:00:00 GMT", 3600.0),        # HTTP-date
    ("2026-11-27T22:00:00Z", 0.0),                    # in the past
    (None, None), ("", None), ("soon", None), ("nan", None), ("inf", None), ("9" * 100, None),
])
def test_retry_after_values(value, seconds):
    assert parse_retry_after(value, NOW) == seconds


def test_what_may_be_retried():
    policy = RetryPolicy(max_retry_after=60)
    per_second = RateLimitError(429, 429, "per-second", retry_after=1.0)
    daily = RateLimitError(429, 429, "daily", retry_after=3600.0)
    never_sent = TransportError("ConnectError", maybe_delivered=False)
    maybe_sent = TransportError("ReadTimeout", maybe_delivered=True)
    unavailable = ZoomAPIError(503, None, "Service Unavailable")
    for method in ("GET", "POST", "PATCH", "DELETE", "TOKEN"):
        assert policy.may_retry(per_second, method)
        assert not policy.may_retry(daily, method)   # hours: raised at once, retry_after set
        assert policy.may_retry(never_sent, method)
        assert not policy.may_retry(ZoomAPIError(400, 300, "Validation Failed."), method)
    assert not policy.may_retry(maybe_sent, "POST") and not policy.may_retry(unavailable, "POST")
    for method in ("GET", "PATCH", "DELETE", "TOKEN"):
        assert policy.may_retry(maybe_sent, method) and policy.may_retry(unavailable, method)


def test_waits_follow_retry_after_else_a_capped_backoff():
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=4)
    assert 1.0 <= policy.wait_for(RateLimitError(429, 429, "x", retry_after=1.0), 1) <= 1.1
    assert 0.25 <= policy.wait_for(TransportError("x", maybe_delivered=False), 1) <= 0.5
    assert 2.0 <= policy.wait_for(TransportError("x", maybe_delivered=False), 10) <= 4.0


def test_token_url_follows_the_base_url_host():
    assert token_url_for("http://127.0.0.1:8000/v2") == "http://127.0.0.1:8000/oauth/token"
    assert token_url_for("https://api.zoom.us/v2") == "https://zoom.us/oauth/token"
    assert token_url_for("https://psi.example.com:8443/v2") == "https://psi.example.com:8443/oauth/token"
