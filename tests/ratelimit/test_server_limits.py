"""Rate limits through a real server process (counters in memory)."""

from __future__ import annotations

import time

import pytest

from sipphones.accounts.models import Plan
from sipphones.errors import RateLimited
from tests.ratelimit.helpers import burst_in_one_second, wait_for_next_second

RATE_HEADERS = ("x-ratelimit-category", "x-ratelimit-type", "x-ratelimit-limit", "x-ratelimit-remaining")

LEGACY_PHONE = {
    "user_email": "alice@example.com", "user_name": "1001", "authorization_name": "1001", "password": "s3cret",
    "domain": "sip.example.com", "register_server": "192.0.2.10", "proxy_server": "192.0.2.10",
    "transport_protocol": "UDP", "voice_mail": "4000",
}
CURRENT_PHONE = {
    "user_email": "alice@example.com.pc", "user_name": "1002", "authorization_name": "1002", "password": "s3cret",
    "domain": "sip.example.com", "server": {"register_server": "192.0.2.10", "transport_protocol": "TCP"},
}
NEW_USER = {"action": "create", "user_info": {"email": "bob@example.com", "type": 1}}


def rate_headers(response) -> tuple[str, ...]:
    return tuple(response.headers.get(h) for h in RATE_HEADERS)


# (plan, Light limit, Medium limit, type); Free reports the daily quota, the others the per-second limit.
PLANS = [
    (Plan.FREE, "6000", "2000", "Daily-limit"),
    (Plan.PRO, "30", "20", "QPS"),
    (Plan.BUSINESS, "80", "60", "QPS"),
]


@pytest.mark.parametrize("plan,light,medium,kind", PLANS)
def test_headers_on_every_endpoint_per_label_and_plan(tenant_factory, plan, light, medium, kind):
    c = tenant_factory(plan).client
    ids: dict[str, str] = {}
    legacy_update = {**LEGACY_PHONE, "proxy_server2": "192.0.2.11", "proxy_server3": "192.0.2.12",
                     "register_server2": "192.0.2.11", "register_server3": "192.0.2.12"}
    # Each group runs inside one clock second and stays within Free's 4 Light + 2 Medium a second.
    groups = [
        [("legacy create", "Light", 201, lambda: c.post("/v2/sip_phones", json=LEGACY_PHONE)),
         ("current create", "Light", 201, lambda: c.post("/v2/sip_phones/phones", json=CURRENT_PHONE)),
         ("legacy list", "Medium", 200, lambda: c.get("/v2/sip_phones")),
         ("current list", "Medium", 200, lambda: c.get("/v2/sip_phones/phones"))],
        [("current update", "Light", 204,
          lambda: c.patch(f"/v2/sip_phones/phones/{ids['current']}", json={"user_name": "1003"})),
         ("legacy update", "Light", 204, lambda: c.patch(f"/v2/sip_phones/{ids['legacy']}", json=legacy_update)),
         ("users list", "Medium", 200, lambda: c.get("/v2/users")),
         ("users create", "Light", 201, lambda: c.post("/v2/users", json=NEW_USER))],
        [("current delete", "Light", 204, lambda: c.delete(f"/v2/sip_phones/phones/{ids['current']}")),
         ("legacy delete", "Light", 204, lambda: c.delete(f"/v2/sip_phones/{ids['legacy']}")),
         ("users delete", "Light", 204, lambda: c.delete("/v2/users/bob@example.com")),
         ("an error answer", "Light", 404, lambda: c.delete(f"/v2/sip_phones/phones/{ids['current']}"))],  # code 2305
    ]
    if kind == "QPS":  # Pro/Business allow all of it in one second: one window, exact countdown
        groups = [[step for group in groups for step in group]]
    today = {"Light": 0, "Medium": 0}
    for group in groups:
        wait_for_next_second()
        second, this_second = int(time.time()), {"Light": 0, "Medium": 0}
        for name, category, status, send in group:
            response = send()
            in_window = int(time.time()) == second  # a group that straddles a second can't be exact
            assert response.status_code == status, (name, response.text)
            if name == "legacy create":
                ids["legacy"] = response.json()["id"]
            if name == "current create":
                ids["current"] = response.json()["phone_id"]
            today[category] += 1
            this_second[category] += 1
            limit = light if category == "Light" else medium
            headers = rate_headers(response)
            assert headers[:3] == (category, kind, limit), name
            if kind == "Daily-limit":
                assert headers[3] == str(int(limit) - today[category]), name
            elif in_window:
                assert headers[3] == str(int(limit) - this_second[category]), name


def test_a_burst_on_the_free_plan_gets_zooms_429_and_recovers_next_second(tenant_factory):
    c = tenant_factory(Plan.FREE).client
    responses = burst_in_one_second(lambda: c.get("/v2/sip_phones/phones"), 5)  # Medium: 2/s
    assert [r.status_code for r in responses] == [200, 200, 429, 429, 429]
    refused = responses[2]
    assert refused.json() == {"code": 429, "message": RateLimited.PER_SECOND}
    assert refused.headers["retry-after"] == "1"
    assert rate_headers(refused) == ("Medium", "QPS", "2", "0")
    assert refused.headers["content-type"].startswith("application/json")

    wait_for_next_second()
    again = c.get("/v2/sip_phones/phones")
    assert again.status_code == 200
    assert rate_headers(again) == ("Medium", "Daily-limit", "2000", "1997")  # 2 + 1 admitted today


def test_light_operations_allow_four_per_second_on_free(tenant_factory):
    c = tenant_factory(Plan.FREE).client
    # Invalid bodies still count: the limit is checked before the body is read (Zoom's order).
    responses = burst_in_one_second(lambda: c.post("/v2/sip_phones/phones", json={}), 6)
    assert [r.status_code for r in responses] == [400, 400, 400, 400, 429, 429]
    assert rate_headers(responses[0]) == ("Light", "Daily-limit", "6000", "5999")
    assert rate_headers(responses[4]) == ("Light", "QPS", "4", "0")


def test_one_account_exhausted_does_not_limit_another(tenant_factory):
    a = tenant_factory(Plan.FREE).client
    b = tenant_factory(Plan.FREE).client

    def both():
        return a.get("/v2/sip_phones"), b.get("/v2/sip_phones")

    pairs = burst_in_one_second(both, 3)
    assert [x.status_code for x, _ in pairs] == [200, 200, 429]
    assert [y.status_code for _, y in pairs] == [200, 200, 429]

    def a_then_b():
        return [a.get("/v2/sip_phones") for _ in range(4)] + [b.get("/v2/sip_phones")]

    (statuses,) = burst_in_one_second(a_then_b, 1)
    assert [r.status_code for r in statuses] == [200, 200, 429, 429, 200]


def test_unlimited_accounts_are_never_limited(tenant_factory):
    c = tenant_factory(Plan.FREE, unlimited=True).client
    responses = burst_in_one_second(lambda: c.get("/v2/sip_phones/phones"), 12)
    assert {r.status_code for r in responses} == {200}
    assert all(rate_headers(r) == (None,) * 4 for r in responses)


def test_plan_and_unlimited_changes_apply_at_once(tenant_factory, rl_admin):
    t = tenant_factory(Plan.FREE)
    before = t.client.get("/v2/sip_phones")
    assert rate_headers(before)[1:3] == ("Daily-limit", "2000")
    rl_admin.update_account(t.creds.account_id, plan=Plan.BUSINESS)
    after = t.client.get("/v2/sip_phones")
    assert rate_headers(after)[1:3] == ("QPS", "60")
    rl_admin.update_account(t.creds.account_id, unlimited=True)
    assert rate_headers(t.client.get("/v2/sip_phones")) == (None,) * 4


def test_auth_failures_carry_no_rate_limit_headers(rl_server):
    """A bad token is refused (401) before the limit is consulted (there is no account to count)."""
    with rl_server.client() as anonymous:
        r = anonymous.get("/v2/sip_phones", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["code"] == 124
    assert rate_headers(r) == (None,) * 4
