"""The emulator's clock drives every expiry: access tokens, page tokens, daily quota windows."""

from __future__ import annotations

import time

import httpx
import pytest

from sipphones.emulator.clock import Clock
from tests.emulator_mode.conftest import PHONE


def test_advancing_the_clock_expires_access_tokens(emu, control):
    account = control.fresh_account()
    before = control.clock.now()
    assert httpx.get(f"{emu.url}/v2/sip_phones", headers=account.headers).status_code == 200
    control.clock.advance(3590)  # tokens carry whole seconds: ten seconds short of the hour
    assert httpx.get(f"{emu.url}/v2/sip_phones", headers=account.headers).status_code == 200
    now = control.clock.advance(10)
    assert now - before >= 3600 and control.clock.offset() == 3600
    r = httpx.get(f"{emu.url}/v2/sip_phones", headers=account.headers)
    assert r.status_code == 401 and r.json() == {"code": 124, "message": "Access token is expired."}
    # A token issued now lives from the emulator's now
    r = httpx.post(f"{emu.url}/oauth/token", params={"grant_type": "account_credentials",
                                                     "account_id": account.account_id},
                   auth=(account.client_id, account.client_secret))
    fresh = {"Authorization": "Bearer " + r.json()["access_token"]}
    assert httpx.get(f"{emu.url}/v2/sip_phones", headers=fresh).status_code == 200
    control.clock.reset()
    assert control.clock.offset() == 0


def test_advancing_the_clock_expires_page_tokens(emu, control):
    account = control.fresh_account(users=["a@example.com", "b@example.com"], unlimited=True)
    for email in ("a@example.com", "b@example.com"):
        r = httpx.post(f"{emu.url}/v2/sip_phones", headers=account.headers, json={"user_email": email, **PHONE})
        assert r.status_code == 201
    first = httpx.get(f"{emu.url}/v2/sip_phones/phones", params={"page_size": 1}, headers=account.headers).json()
    token = first["next_page_token"]
    assert token
    control.clock.advance(899)
    r = httpx.get(f"{emu.url}/v2/sip_phones/phones", params={"page_size": 1, "next_page_token": token},
                  headers=account.headers)
    assert r.status_code == 200
    control.clock.advance(2)
    r = httpx.get(f"{emu.url}/v2/sip_phones/phones", params={"page_size": 1, "next_page_token": token},
                  headers=account.headers)
    assert r.status_code == 400 and "expired" in r.json()["message"]


def test_advancing_the_clock_a_day_opens_a_new_daily_quota(emu, control):
    if time.gmtime(control.clock.now()).tm_hour == 23 and time.gmtime(control.clock.now()).tm_min == 59:
        control.clock.advance(120)  # not across midnight UTC while counting
    account = control.fresh_account(plan="free")
    remaining = []
    for _ in range(3):
        control.clock.advance(1)  # a new per-second window (Free: 2 Medium requests a second), the same day
        r = httpx.get(f"{emu.url}/v2/sip_phones", headers=account.headers)
        assert r.status_code == 200 and r.headers["X-RateLimit-Type"] == "Daily-limit"
        remaining.append(int(r.headers["X-RateLimit-Remaining"]))
    assert remaining == [remaining[0], remaining[0] - 1, remaining[0] - 2]
    control.clock.advance(86400)
    r = httpx.post(f"{emu.url}/oauth/token", params={"grant_type": "account_credentials",
                                                     "account_id": account.account_id},
                   auth=(account.client_id, account.client_secret))
    headers = {"Authorization": "Bearer " + r.json()["access_token"]}
    r = httpx.get(f"{emu.url}/v2/sip_phones", headers=headers)
    assert int(r.headers["X-RateLimit-Remaining"]) == remaining[0]


def test_a_full_reset_turns_the_clock_back(emu, control):
    control.clock.advance(500)
    control.reset()
    assert control.clock.offset() == 0


def test_the_clock_only_moves_forward():
    clock = Clock(lambda: 1000.0)
    assert clock.advance(10) == 1010.0
    for bad in (-1, float("nan"), True, "5", 11 * 366 * 86400):
        with pytest.raises(ValueError):
            clock.advance(bad)
    clock.reset()
    assert clock.now() == 1000.0 and clock.describe() == {"now": 1000.0, "offset_seconds": 0.0}
