"""``GET /_sipphones/v1/sip_phones/status`` through the real server, on SQLite and PostgreSQL.

Phones are created through the API; their status rows are written through the repository the
way ``sipphones monitor`` writes them (``monitor.status.save_statuses``), then listed.
"""

from __future__ import annotations

import datetime as dt

import pytest

from sipphones.accounts.models import PERM_EDIT, PERM_USER_READ
from sipphones.monitor.status import save_statuses
from sipphones.repository import PhoneStatus
from tests.api.zoom import assert_error, assert_validation, create_users, current_body

PATH = "/_sipphones/v1/sip_phones/status"
T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
FIELDS = {"phone_id", "user_email", "state", "registered", "server_slot", "server_address", "transport",
          "last_error", "last_status_code", "last_success_at", "last_attempt_at", "granted_expires", "updated_at",
          "monitor", "monitor_alive"}


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(phone_id: str, account_id: str, state: str, *, registered: bool = False, error: str = "",
           code: int | None = None, slot: int | None = None, address: str = "", transport: str = "",
           success: float | None = None) -> PhoneStatus:
    return PhoneStatus(phone_id=phone_id, account_id=account_id, registered=registered, state=state,
                       server_slot=slot, server_address=address, transport=transport, last_error=error,
                       last_status_code=code, last_success_at=success, last_attempt_at=T0 + 5,
                       granted_expires=120 if registered else None, updated_at=T0 + 6)


def make_phones(api, count: int) -> list[tuple[str, str]]:
    """``count`` phones made through the API: (phone_id, user_email), in id order."""
    out = []
    for email in create_users(api, count, prefix="status"):
        r = api.post("/v2/sip_phones/phones", json=current_body(email))
        assert r.status_code == 201, r.text
        out.append((r.json()["phone_id"], email))
    return sorted(out)


def write(admin, statuses: list[PhoneStatus]) -> None:
    admin.run(lambda svc, repo: save_statuses(repo, statuses))


def list_pages(api, **params) -> tuple[list[dict], int]:
    """Every item of the listing, following next_page_token; and how many pages it took."""
    items, token, pages = [], "", 0
    for _ in range(100):
        q = dict(params)
        if token:
            q["next_page_token"] = token
        r = api.get(PATH, params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"next_page_token", "page_size", "phones"}
        items.extend(body["phones"])
        pages += 1
        token = body["next_page_token"]
        if not token:
            return items, pages
    raise AssertionError("pagination did not end")


@pytest.fixture
def fleet(api, admin, creds):
    """Five phones: registered, failed (wrong password), invalid, stopped, and one never seen."""
    phones = make_phones(api, 5)
    (reg, reg_mail), (bad, _), (inv, _), (stop, _), (unseen, _) = phones
    acc = creds.account_id
    write(admin, [
        status(reg, acc, "registered", registered=True, code=200, slot=1, address="127.0.0.1:5060",
               transport="UDP", success=T0),
        status(bad, acc, "failed", error="set 1 127.0.0.1:5060/TCP: auth_rejected (SIP 401): credentials rejected",
               code=401),
        status(inv, acc, "invalid", error="config_error: no register server"),
        status(stop, acc, "stopped", success=T0 - 60),
    ])
    return {"registered": reg, "failed": bad, "invalid": inv, "stopped": stop, "unknown": unseen,
            "emails": dict(phones)}


def test_every_phone_with_its_status_in_id_order_across_pages(api, fleet):
    items, pages = list_pages(api, page_size=2)
    assert pages == 3
    assert [i["phone_id"] for i in items] == sorted(fleet["emails"])
    for item in items:
        assert set(item) == FIELDS
        assert item["user_email"] == fleet["emails"][item["phone_id"]]
    by_id = {i["phone_id"]: i for i in items}
    assert {by_id[fleet[s]]["state"] for s in ("registered", "failed", "invalid", "stopped", "unknown")} == \
        {"registered", "failed", "invalid", "stopped", "unknown"}
    for s in ("registered", "failed", "invalid", "stopped", "unknown"):
        assert by_id[fleet[s]]["state"] == s

    reg = by_id[fleet["registered"]]
    assert reg == {"phone_id": fleet["registered"], "user_email": fleet["emails"][fleet["registered"]],
                   "state": "registered", "registered": True, "server_slot": 1, "server_address": "127.0.0.1:5060",
                   "transport": "UDP", "last_error": "", "last_status_code": 200, "last_success_at": iso(T0),
                   "last_attempt_at": iso(T0 + 5), "granted_expires": 120, "updated_at": iso(T0 + 6),
                   "monitor": "", "monitor_alive": False}
    bad = by_id[fleet["failed"]]
    assert bad["registered"] is False and bad["last_status_code"] == 401 and bad["last_success_at"] is None
    assert bad["last_error"] == "set 1 127.0.0.1:5060/TCP: auth_rejected (SIP 401): credentials rejected"
    assert bad["server_slot"] is None and bad["server_address"] == "" and bad["transport"] == ""
    # never seen by a monitor: unknown, every field present and empty
    assert by_id[fleet["unknown"]] == {
        "phone_id": fleet["unknown"], "user_email": fleet["emails"][fleet["unknown"]], "state": "unknown",
        "registered": False, "server_slot": None, "server_address": "", "transport": "", "last_error": "",
        "last_status_code": None, "last_success_at": None, "last_attempt_at": None, "granted_expires": None,
        "updated_at": None, "monitor": "", "monitor_alive": False}


def test_the_state_filter(api, fleet):
    def ids(state: str, page_size: int = 30) -> list[str]:
        return [i["phone_id"] for i in list_pages(api, state=state, page_size=page_size)[0]]

    assert ids("failed") == [fleet["failed"]]
    assert ids("registered") == [fleet["registered"]]
    assert ids("unknown") == [fleet["unknown"]]
    assert ids("failed,invalid", page_size=1) == sorted([fleet["failed"], fleet["invalid"]])
    assert ids(" Failed , invalid,failed ") == sorted([fleet["failed"], fleet["invalid"]])
    assert ids("unknown,stopped") == sorted([fleet["unknown"], fleet["stopped"]])
    assert ids("registering") == []
    assert len(ids("")) == 5  # blank: every state

    named = assert_validation(api.get(PATH, params={"state": "failed,broken"}), "state")
    assert "'broken'" in named["state"] and "registered" in named["state"]
    assert_validation(api.get(PATH, params={"state": "failed," * 40}), "state")  # longer than 200 characters
    assert_validation(api.get(PATH, params={"page_size": "0"}), "page_size")
    assert_validation(api.get(PATH, params={"page_size": "x"}), "page_size")
    assert api.get(PATH, params={"page_size": "100000"}).json()["page_size"] == 300  # clamped, as the lists

    # a page token belongs to its filter
    r = api.get(PATH, params={"state": "failed,invalid", "page_size": 1})
    token = r.json()["next_page_token"]
    assert token
    assert_error(api.get(PATH, params={"state": "failed", "next_page_token": token}), 400, 300)
    assert_error(api.get(PATH, params={"next_page_token": "garbage"}), 400, 300)
    r = api.get(PATH, params={"state": "invalid,failed", "next_page_token": token, "page_size": 1})
    assert r.status_code == 200 and [i["phone_id"] for i in r.json()["phones"]] == [max(fleet["failed"],
                                                                                       fleet["invalid"])]
    # nor does a phone list's token open the status listing (and the other way round)
    r = api.get("/v2/sip_phones/phones", params={"page_size": 1})
    assert_error(api.get(PATH, params={"next_page_token": r.json()["next_page_token"]}), 400, 300)
    r = api.get(PATH, params={"page_size": 1})
    assert_error(api.get("/v2/sip_phones/phones", params={"next_page_token": r.json()["next_page_token"]}), 400, 300)


def test_another_accounts_phones_are_never_listed(api, admin, creds, other, fleet):
    other_creds, other_api = other
    (theirs, _), = make_phones(other_api, 1)
    write(admin, [status(theirs, other_creds.account_id, "failed", error="theirs")])
    # a status row naming the wrong account does not leak either: the phone's own account decides
    write(admin, [status(fleet["unknown"], other_creds.account_id, "failed", error="mislabelled")])

    mine = {i["phone_id"] for i in list_pages(api)[0]}
    assert theirs not in mine and mine == set(fleet["emails"])
    assert [i["phone_id"] for i in list_pages(other_api)[0]] == [theirs]
    assert [i["phone_id"] for i in list_pages(other_api, state="failed")[0]] == [theirs]


def test_scopes_and_permissions(server, admin, creds, clients, fleet):
    # read scopes (classic or granular) with SipPhone:Read are enough
    for scope in ("sip_phone:read:admin", "sip_phone:read:list_sip_phones:admin"):
        c = clients(admin.app(creds.account_id, scopes=(scope,)))
        r = c.get(PATH, params={"state": "failed"})
        assert r.status_code == 200, r.text
        assert [i["phone_id"] for i in r.json()["phones"]] == [fleet["failed"]]
    # no scope of listing phones: 4711
    c = clients(admin.app(creds.account_id, scopes=("sip_phone:write:admin", "user:read:admin")))
    assert_error(c.get(PATH), 400, 4711)
    # the scope without SipPhone:Read: 403, 3306
    c = clients(admin.app(creds.account_id, scopes=("sip_phone:read:admin",), permissions=(PERM_EDIT, PERM_USER_READ)))
    assert_error(c.get(PATH), 403, 3306)
    # no token: 401, 124
    with server.client() as c:
        assert_error(c.get(PATH), 401, 124)
    # the account's integration switched off: code 200, as the phone endpoints
    admin.update_account(creds.account_id, sip_phone_integration=False)
    c = clients(admin.app(creds.account_id))
    assert_error(c.get(PATH), 400, 200)


def test_rate_limit_label_is_medium(admin, clients):
    from sipphones.accounts.models import Plan

    limited = admin.account(plan=Plan.PRO, unlimited=False)
    r = clients(limited).get(PATH)
    assert r.status_code == 200, r.text
    assert r.headers["x-ratelimit-category"] == "Medium"
    assert r.headers["x-ratelimit-limit"] == "20"
