"""``sipphones phones status`` and the client's ``list_phone_statuses`` / ``iter_phone_statuses``
against a real ``sipphones serve``; status rows written through the repository as the monitor
writes them."""

from __future__ import annotations

import asyncio
import json

import pytest

from sipphones.client import AsyncSipPhonesClient, ConfigurationError, SipPhonesClient
from sipphones.monitor.status import save_statuses
from sipphones.repository import PhoneStatus
from tests.cli_phones.test_phones_cli import one_sentence, sipphones, zoom_env
from tests.client.fixtures import legacy_fields

ERROR = "set 1 127.0.0.1:5060/TCP: auth_rejected (SIP 401): credentials rejected"


def _status(phone_id: str, account_id: str, state: str, registered: bool, error: str = "") -> PhoneStatus:
    return PhoneStatus(phone_id=phone_id, account_id=account_id, registered=registered, state=state,
                       server_slot=1 if registered else None, server_address="127.0.0.1:5060" if registered else "",
                       transport="UDP" if registered else "", last_error=error,
                       last_status_code=200 if registered else 401, last_success_at=1_795_000_000.0 if registered
                       else None, last_attempt_at=1_795_000_000.0, granted_expires=120 if registered else None,
                       updated_at=1_795_000_001.0)


@pytest.fixture
def phones(account, api_admin, base_url):
    """alice registered, bob failed, carol never seen by a monitor."""
    api_admin.add_user(account.account_id, "carol@example.com")
    with SipPhonesClient(account.account_id, account.client_id, account.client_secret, base_url=base_url) as c:
        ids = {who: c.legacy_create_phone(legacy_fields(f"{who}@example.com"))["id"]
               for who in ("alice", "bob", "carol")}
    acc = account.account_id
    api_admin.run(lambda svc, repo: save_statuses(repo, [_status(ids["alice"], acc, "registered", True),
                                                        _status(ids["bob"], acc, "failed", False, ERROR)]))
    return ids


def test_phones_status_table_failed_and_json(account, base_url, phones):
    env = zoom_env(account, base_url)
    r = sipphones(env, "phones", "status")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    for who, state in (("alice", "registered"), ("bob", "failed"), ("carol", "unknown")):
        (line,) = [ln for ln in lines if phones[who] in ln]
        assert f"{who}@example.com" in line and state in line, r.out
    assert "set 1 127.0.0.1:5060/UDP" in r.out and "2026-11-18T11:06:40Z" in r.out

    r = sipphones(env, "phones", "status", "--failed")
    assert r.code == 0, r.err
    assert phones["bob"] in r.out and "auth_rejected (SIP 401)" in r.out
    assert phones["alice"] not in r.out and phones["carol"] not in r.out

    r = sipphones(env, "phones", "status", "--failed", "--json")
    assert r.code == 0, r.err
    (bob,) = json.loads(r.out)
    assert bob["phone_id"] == phones["bob"] and bob["user_email"] == "bob@example.com"
    assert bob["state"] == "failed" and bob["last_error"] == ERROR and bob["last_status_code"] == 401

    r = sipphones(env, "phones", "status", "--state", "unknown,registered", "--json")
    assert r.code == 0, r.err
    assert sorted(p["phone_id"] for p in json.loads(r.out)) == sorted([phones["alice"], phones["carol"]])

    r = sipphones(env, "phones", "status", "--state", "stopped")
    assert r.code == 0 and r.out.strip() == "no phones in these states", r

    r = sipphones(env, "phones", "status", "--state", "broken")
    assert r.code == 1 and one_sentence(r.err), r.err
    assert "cannot list the phone statuses: HTTP 400, code 300" in r.err and "state" in r.err

    r = sipphones(env, "phones", "status", "--failed", "--state", "registered")
    assert r.code == 1 and r.err == "error: use --failed or --state, not both\n"


def test_client_lists_pages_and_iterates(account, base_url, phones):
    with SipPhonesClient(account.account_id, account.client_id, account.client_secret, base_url=base_url) as c:
        page = c.list_phone_statuses(page_size=2)
        assert page["page_size"] == 2 and len(page["phones"]) == 2 and page["next_page_token"]
        rest = c.list_phone_statuses(page_size=2, next_page_token=page["next_page_token"])
        assert len(rest["phones"]) == 1 and rest["next_page_token"] == ""
        every = list(c.iter_phone_statuses(page_size=1))
        assert [p["phone_id"] for p in every] == sorted(phones.values())
        assert [p["phone_id"] for p in c.iter_phone_statuses(state=["failed", "invalid"])] == [phones["bob"]]

    async def go():
        async with AsyncSipPhonesClient(account.account_id, account.client_id, account.client_secret,
                                        base_url=base_url) as c:
            page = await c.list_phone_statuses(state="unknown")
            return page["phones"], [p async for p in c.iter_phone_statuses(page_size=1)]

    unknown, every = asyncio.run(go())
    assert [p["phone_id"] for p in unknown] == [phones["carol"]]
    assert len(every) == 3


def test_client_refuses_zoom_for_the_extension():
    with SipPhonesClient("acc", "id", "secret", base_url="https://api.zoom.us/v2") as c:
        with pytest.raises(ConfigurationError, match="extension of sipphones"):
            c.list_phone_statuses()
        with pytest.raises(ConfigurationError, match="extension of sipphones"):
            c.iter_phone_statuses()
