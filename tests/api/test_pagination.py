"""Pagination of both lists: keyset tokens that chain, search_key, page sizes, bad and expired tokens."""

from __future__ import annotations

import base64
import math
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.api.zoom import (
    CURRENT_SUFFIXES, LEGACY_SUFFIXES, assert_error, assert_validation, current_body, legacy_body, token_client, unique_email,
)
from tests.servers import Credentials

LEGACY, CURRENT = "/v2/sip_phones", "/v2/sip_phones/phones"
ID = {LEGACY: "id", CURRENT: "phone_id"}


@dataclass
class Populated:
    creds: Credentials
    ids: list[str]                  # in creation order
    by_email: dict[str, str]        # phone address -> id
    users: list[dict]               # {"email", "first_name", "last_name"}
    user_names: dict[str, str]      # phone id -> the phone's user_name


def populate(client: httpx.Client, count: int, users: int) -> tuple[list[str], dict[str, str], list[dict], dict]:
    people = []
    for i in range(users):
        info = {"email": unique_email("page"), "first_name": f"First{i}", "last_name": f"Last{i}"}
        r = client.post("/v2/users", json={"action": "create", "user_info": info})
        assert r.status_code == 201, r.text
        people.append(info)
    ids, by_email, names = [], {}, {}
    emails = [p["email"] + s for s in ("", *LEGACY_SUFFIXES) for p in people]  # spread over users
    for i, email in enumerate(emails[:count]):
        if i % 3 == 2 and email.endswith(("@example.com", *CURRENT_SUFFIXES)):  # both sets fill one store
            r = client.post(CURRENT, json=current_body(email))
        else:
            r = client.post(LEGACY, json=legacy_body(email))
        assert r.status_code == 201, r.text
        pid = r.json().get("id") or r.json()["phone_id"]
        ids.append(pid)
        by_email[email] = pid
        names[pid] = r.json()["user_name"]
    return ids, by_email, people, names


@pytest.fixture(scope="module")
def populated(admin, server) -> Populated:
    """One account with 75 phones (made through both sets) over 8 users, shared by read-only tests."""
    creds = admin.account(users=())
    with token_client(server, creds) as c:
        ids, by_email, people, names = populate(c, 75, users=8)
    return Populated(creds, ids, by_email, people, names)


@pytest.fixture
def reader(populated, clients) -> httpx.Client:
    return clients(populated.creds)


def walk(client: httpx.Client, path: str, page_size: int | None, **params) -> list[dict]:
    """Every page of a listing, in order, following next_page_token; checks each page's envelope."""
    pages, token = [], ""
    for _ in range(500):
        q = dict(params)
        if page_size is not None:
            q["page_size"] = page_size
        if token:
            q["next_page_token"] = token
        r = client.get(path, params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body)
        token = body["next_page_token"]
        assert isinstance(token, str)
        if not token:
            return pages
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("path", [LEGACY, CURRENT])
@pytest.mark.parametrize("page_size", [10, 30, None, 75, 74, 76, 300])
def test_walk_chains_without_duplicates_or_gaps(reader, populated, path, page_size):
    pages = walk(reader, path, page_size)
    size = page_size or 30
    total = len(populated.ids)
    assert len(pages) == max(1, math.ceil(total / size))
    seen = [p[ID[path]] for page in pages for p in page["phones"]]
    assert len(seen) == len(set(seen)), "duplicates across pages"
    assert set(seen) == set(populated.ids), "gaps or strangers"
    for i, page in enumerate(pages):
        last = i == len(pages) - 1
        assert len(page["phones"]) == (total - size * i if last else size)
        assert page["page_size"] == size
        assert (page["next_page_token"] == "") == last
        if path == LEGACY:
            assert page["total_records"] == total
            assert page["page_count"] == math.ceil(total / size)
            assert page["page_number"] == i + 1
        else:
            assert set(page) == {"next_page_token", "page_size", "phones"}
    # Two walks give the same order; both sets walk the same order.
    other = LEGACY if path == CURRENT else CURRENT
    assert seen == [p[ID[other]] for page in walk(reader, other, page_size) for p in page["phones"]]


def test_tokens_are_distinct_and_each_leads_onwards(reader):
    tokens = [page["next_page_token"] for page in walk(reader, LEGACY, 10)][:-1]
    assert len(tokens) == len(set(tokens)) == 7


def test_a_token_can_be_reused_and_page_size_may_change(reader, populated):
    first = reader.get(LEGACY, params={"page_size": 10}).json()
    token = first["next_page_token"]
    again = [reader.get(LEGACY, params={"page_size": 10, "next_page_token": token}).json() for _ in range(2)]
    assert again[0]["phones"] == again[1]["phones"] and again[0]["page_number"] == again[1]["page_number"] == 2
    bigger = reader.get(LEGACY, params={"page_size": 50, "next_page_token": token}).json()
    assert [p["id"] for p in bigger["phones"]][:10] == [p["id"] for p in again[0]["phones"]]
    assert len(bigger["phones"]) == 50
    # Decision: a token belongs to the account and the query, not to one endpoint set.
    current = reader.get(CURRENT, params={"page_size": 10, "next_page_token": token}).json()
    assert [p["phone_id"] for p in current["phones"]] == [p["id"] for p in again[0]["phones"]]


def test_page_number_of_the_legacy_set(reader, populated):
    walked = walk(reader, LEGACY, 10)
    for n in (1, 2, 8):
        page = reader.get(LEGACY, params={"page_size": 10, "page_number": n}).json()
        assert page["phones"] == walked[n - 1]["phones"]
        assert page["page_number"] == n and page["total_records"] == 75 and page["page_count"] == 8
        assert (page["next_page_token"] == "") == (n == 8)
    beyond = reader.get(LEGACY, params={"page_size": 10, "page_number": 9}).json()
    assert beyond["phones"] == [] and beyond["next_page_token"] == "" and beyond["page_number"] == 9
    # A token continues from where page_number left off.
    page2 = reader.get(LEGACY, params={"page_size": 10, "page_number": 2}).json()
    page3 = reader.get(LEGACY, params={"page_size": 10, "next_page_token": page2["next_page_token"]}).json()
    assert page3["phones"] == walked[2]["phones"] and page3["page_number"] == 3


@pytest.mark.parametrize("value", ["0", "-3", "x", str(2**31), "1" * 50])
def test_bad_page_number_is_a_validation_error(reader, value):
    assert_validation(reader.get(LEGACY, params={"page_number": value}), "page_number")


def _tamper(token: str) -> list[str]:
    body, sig = token.split(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[len(raw) // 2] ^= 0x01
    flipped = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    other_char = "A" if sig[0] != "A" else "B"
    return [
        f"{flipped}.{sig}", f"{body}.{other_char}{sig[1:]}", f"{body}.", body, token[: len(token) // 2],
        token + "A", "garbage", "a.b.c", "é.é", "%00", token.replace(".", "\x00"), "." * 40, "A" * 5000,
    ]


@pytest.mark.parametrize("path", [LEGACY, CURRENT])
def test_tampered_token_is_a_clean_400(reader, path):
    token = reader.get(path, params={"page_size": 10}).json()["next_page_token"]
    for bad in _tamper(token):
        body = assert_error(reader.get(path, params={"page_size": 10, "next_page_token": bad}), 400, 300)
        assert "token" in body["message"].lower()


def test_token_of_another_search_key_is_refused(reader, populated):
    email = populated.users[0]["email"]
    token = reader.get(LEGACY, params={"page_size": 2, "search_key": email}).json()["next_page_token"]
    assert token
    for params in ({}, {"search_key": populated.users[1]["email"]}):
        body = assert_error(reader.get(LEGACY, params=dict(params, page_size=2, next_page_token=token)), 400, 300)
        assert "query" in body["message"]
    # The same search_key in another spelling (case, spaces) is the same query.
    ok = reader.get(LEGACY, params={"page_size": 2, "search_key": f"  {email.upper()} ", "next_page_token": token})
    assert ok.status_code == 200, ok.text


def test_token_of_another_account_is_refused(reader, admin, clients):
    stranger = clients(admin.account())
    token = reader.get(CURRENT, params={"page_size": 10}).json()["next_page_token"]
    assert_error(stranger.get(CURRENT, params={"page_size": 10, "next_page_token": token}), 400, 300)


def test_expired_token_is_a_clean_400(short_ttl_server, populated, reader):
    # The access token comes from the main server (it lives an hour; one key signs both servers').
    with short_ttl_server.client(headers={"Authorization": reader.headers["Authorization"]}) as c:
        issued = time.time()
        token = c.get(CURRENT, params={"page_size": 10}).json()["next_page_token"]
        assert c.get(CURRENT, params={"page_size": 10, "next_page_token": token}).status_code == 200
        time.sleep(max(0.0, issued + 2 - time.time()) + 0.2)
        for path in (CURRENT, LEGACY):
            body = assert_error(c.get(path, params={"page_size": 10, "next_page_token": token}), 400, 300)
            assert "expired" in body["message"]


# --- search_key ----------------------------------------------------------------------------------

def test_search_by_user_email_finds_the_users_suffixed_phones_too(reader, populated):
    user = populated.users[0]["email"]
    mine = {pid for email, pid in populated.by_email.items() if email.startswith(user)}
    assert len(mine) > 1  # the plain address and at least one suffixed one
    for key in (user, user.upper(), f" {user} "):
        for path in (LEGACY, CURRENT):
            pages = walk(reader, path, 2, search_key=key)
            found = [p[ID[path]] for page in pages for p in page["phones"]]
            assert sorted(found) == sorted(mine), key
            assert all(p["user_email"].lower().startswith(user) for page in pages for p in page["phones"])
    legacy = reader.get(LEGACY, params={"search_key": user}).json()
    assert legacy["total_records"] == len(mine)


def test_search_by_exact_suffixed_address_finds_only_that_phone(reader, populated):
    address, pid = next((e, p) for e, p in populated.by_email.items() if e.endswith(".mac"))
    for path in (LEGACY, CURRENT):
        body = reader.get(path, params={"search_key": address}).json()
        assert [p[ID[path]] for p in body["phones"]] == [pid]


def test_search_by_user_name(reader, populated):
    pid = populated.ids[5]
    name = populated.user_names[pid]
    body = reader.get(LEGACY, params={"search_key": name}).json()
    assert [p["id"] for p in body["phones"]] == [pid] and body["total_records"] == 1
    # The Zoom user's name ("First Last") finds all that user's phones.
    person = populated.users[1]
    mine = {pid for email, pid in populated.by_email.items() if email.startswith(person["email"])}
    full = f"{person['first_name']} {person['last_name']}"
    for key in (full, full.lower()):
        found = {p["phone_id"] for p in reader.get(CURRENT, params={"search_key": key, "page_size": 300}).json()["phones"]}
        assert found == mine


@pytest.mark.parametrize("key", ["nobody@example.com", "First", "page", "%", "_", "*", "a\x00b", "é" * 300])
def test_search_matches_whole_values_only(reader, key):
    """Decision: search_key matches a whole e-mail, address or name (case-insensitive), never a part."""
    legacy = reader.get(LEGACY, params={"search_key": key})
    assert legacy.status_code == 200, legacy.text
    assert legacy.json()["phones"] == [] and legacy.json()["total_records"] == 0
    current = reader.get(CURRENT, params={"search_key": key})
    assert current.status_code == 200 and current.json()["phones"] == []


def test_blank_search_key_lists_everything(reader, populated):
    body = reader.get(LEGACY, params={"search_key": "   ", "page_size": 300}).json()
    assert body["total_records"] == 75 and len(body["phones"]) == 75


# --- pages while the data changes, and the 300 cap ---------------------------------------------

def test_walk_survives_deletes_and_inserts(api):
    ids = [api.post(LEGACY, json=legacy_body(e)).json()["id"]
           for e in ["alice@example.com", *(f"alice@example.com{s}" for s in LEGACY_SUFFIXES[:5])]]
    first = api.get(LEGACY, params={"page_size": 2}).json()
    cursor_phone = first["phones"][-1]["id"]
    assert api.delete(f"{LEGACY}/{cursor_phone}").status_code == 204  # the phone the token points after
    late = api.post(LEGACY, json=legacy_body("alice@example.com.pad")).json()["id"]
    rest, token = [], first["next_page_token"]
    while token:
        page = api.get(LEGACY, params={"page_size": 2, "next_page_token": token}).json()
        rest.extend(p["id"] for p in page["phones"])
        token = page["next_page_token"]
    seen = [p["id"] for p in first["phones"]] + rest
    assert len(seen) == len(set(seen))
    assert set(rest) == (set(ids) - {p["id"] for p in first["phones"]}) | {late}


def test_page_size_is_capped_at_300(admin, server):
    creds = admin.account(users=())
    with token_client(server, creds) as c:
        ids, *_ = populate(c, 301, users=31)
        for path in (LEGACY, CURRENT):
            page = c.get(path, params={"page_size": 1000}).json()
            assert page["page_size"] == 300 and len(page["phones"]) == 300 and page["next_page_token"]
            last = c.get(path, params={"page_size": 1000, "next_page_token": page["next_page_token"]}).json()
            assert len(last["phones"]) == 1 and last["next_page_token"] == ""
            got = {p[ID[path]] for p in page["phones"] + last["phones"]}
            assert got == set(ids)
        legacy = c.get(LEGACY, params={"page_size": 1000}).json()
        assert legacy["total_records"] == 301 and legacy["page_count"] == 2


def test_page_token_payload_is_the_json_of_its_fields():
    # PageTokens.issue writes its payload without json.dumps' general encoder; the bytes must be
    # what json.dumps writes (tokens of earlier versions and of other workers read the same).
    import hashlib
    import hmac
    import json

    from sipphones.phones.pagination import PageTokens

    key = b"k" * 32
    tokens = PageTokens(key, ttl=900)
    cases = [("0Q8U6B~lSBKutO~JsDE2kj", 2, 1795802230.291), ('q"uo\\te/ü\u2028\x00', 10**12, 0.0),
             ("", 1, 1e300), ("x", 3, 1700000000), ("y", 4, 1700000000.0005)]
    for search in (None, "", " Alice@Example.com "):
        for after_id, number, now in cases:
            token = tokens.issue(account_id="acc", search=search, after_id=after_id, page_number=number, now=now)
            body, sig = token.split(".")
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            fp = hashlib.sha256(f"acc\x00{(search or '').strip().lower()}".encode()).hexdigest()[:16]
            assert payload == json.dumps({"a": after_id, "n": number, "q": fp, "e": round(now + 900, 3)},
                                         separators=(",", ":")).encode()
            assert sig == base64.urlsafe_b64encode(hmac.new(key, payload, hashlib.sha256).digest()[:18]).decode()
            cursor = tokens.read(token, account_id="acc", search=search, now=min(now, 1e12))
            assert (cursor.after_id, cursor.page_number) == (after_id, number)
