"""The Zoom-shaped ``/v2/users`` subset: enough for API-only clients to set up their users."""

from __future__ import annotations

import re

import pytest

from tests.api.zoom import assert_error, assert_validation, legacy_body, legacy_phones, unique_email

USER_KEYS = {"id", "first_name", "last_name", "display_name", "email", "type", "status", "user_created_at"}


def create(client, email, **info):
    return client.post("/v2/users", json={"action": "create", "user_info": {"email": email, **info}})


def test_list_envelope_and_user_shape(api):
    body = api.get("/v2/users").json()
    assert set(body) == {"next_page_token", "page_count", "page_number", "page_size", "total_records", "users"}
    assert (body["page_count"], body["page_number"], body["page_size"], body["total_records"]) == (1, 1, 30, 1)
    (alice,) = body["users"]
    assert set(alice) == USER_KEYS
    assert alice["email"] == "alice@example.com" and alice["status"] == "active" and alice["type"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", alice["user_created_at"])


def test_create_then_attach_a_phone(api):
    r = create(api, "Dave@Example.com", first_name="Dave", last_name="Doe", type=2)
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["email"] == "dave@example.com"  # decision: addresses are stored lower-case
    assert (user["first_name"], user["last_name"], user["type"]) == ("Dave", "Doe", 2)
    listed = {u["id"]: u for u in api.get("/v2/users").json()["users"]}
    assert listed[user["id"]]["display_name"] == "Dave Doe"
    assert api.post("/v2/sip_phones", json=legacy_body("dave@example.com.iphone")).status_code == 201


def test_duplicate_user_is_409_code_1005(api):
    assert_error(create(api, "ALICE@example.com"), 409, 1005)


@pytest.mark.parametrize("body,fields", [
    ({"user_info": {"email": "x@example.com"}}, {"action"}),
    ({"action": "delete", "user_info": {"email": "x@example.com"}}, {"action"}),
    ({"action": "create"}, {"user_info"}),
    ({"action": "create", "user_info": "x@example.com"}, {"user_info"}),
    ({"action": "create", "user_info": {}}, {"user_info.email"}),
    ({"action": "create", "user_info": {"email": "not-an-email"}}, {"user_info.email"}),
    ({"action": "create", "user_info": {"email": None}}, {"user_info.email"}),
    ({"action": "create", "user_info": {"email": "x" * 60 + "@example.com"}}, {"user_info.email"}),
    ({"action": "create", "user_info": {"email": "x@example.com", "type": "1"}}, {"user_info.type"}),
    ({"action": "create", "user_info": {"email": "x@example.com", "type": 7}}, {"user_info.type"}),
    ({"action": "create", "user_info": {"email": "x@example.com", "first_name": "f" * 65}}, {"user_info.first_name"}),
    ({"action": "create", "user_info": {"email": "x@example.com", "last_name": ["x"]}}, {"user_info.last_name"}),
    ({"action": 1, "user_info": {"email": 1, "type": True}}, {"action", "user_info.email", "user_info.type"}),
])
def test_create_validation(api, body, fields):
    assert_validation(api.post("/v2/users", json=body), *fields)
    assert api.get("/v2/users").json()["total_records"] == 1


def test_users_page_through_tokens(api):
    made = {unique_email("u") for _ in range(24)}
    for email in made:
        assert create(api, email).status_code == 201
    seen, token, pages = [], "", 0
    while True:
        params = {"page_size": 10, **({"next_page_token": token} if token else {})}
        body = api.get("/v2/users", params=params).json()
        pages += 1
        assert body["total_records"] == 25 and body["page_count"] == 3 and body["page_number"] == pages
        seen.extend(u["email"] for u in body["users"])
        token = body["next_page_token"]
        if not token:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 25
    assert set(seen) == made | {"alice@example.com"}
    assert_error(api.get("/v2/users", params={"next_page_token": "junk"}), 400, 300)


def test_phone_page_token_is_not_a_users_token(api):
    for e in ("alice@example.com", "alice@example.com.pc"):
        api.post("/v2/sip_phones", json=legacy_body(e))
    token = api.get("/v2/sip_phones", params={"page_size": 1}).json()["next_page_token"]
    assert_error(api.get("/v2/users", params={"next_page_token": token}), 400, 300)


def test_delete_user_by_id_or_email_removes_the_users_phones(api):
    dave = create(api, "dave@example.com").json()
    create(api, "erin@example.com")
    keep = api.post("/v2/sip_phones", json=legacy_body("alice@example.com")).json()
    for e in ("dave@example.com", "dave@example.com.mac"):
        assert api.post("/v2/sip_phones", json=legacy_body(e)).status_code == 201
    erin_phone = api.post("/v2/sip_phones", json=legacy_body("erin@example.com")).json()
    assert len(legacy_phones(api)) == 4

    r = api.delete(f"/v2/users/{dave['id']}")
    assert r.status_code == 204 and r.content == b""
    assert api.delete("/v2/users/erin@example.com").status_code == 204
    assert legacy_phones(api) == {keep["id"]: keep}
    assert api.get("/v2/sip_phones").json()["total_records"] == 1
    assert [u["email"] for u in api.get("/v2/users").json()["users"]] == ["alice@example.com"]
    assert_error(api.delete(f"/v2/users/{dave['id']}"), 404, 1001)
    assert_error(api.post("/v2/sip_phones", json=legacy_body("dave@example.com")), 404, 1001)
    assert_error(api.delete(f"/v2/sip_phones/{erin_phone['id']}"), 400, 300)


def test_users_endpoints_need_user_scopes(admin, creds, clients):
    sip_only = clients(admin.app(creds.account_id, scopes=("sip_phone:read:admin", "sip_phone:write:admin")))
    assert_error(sip_only.get("/v2/users"), 400, 4711)
    assert_error(create(sip_only, "x@example.com"), 400, 4711)
    assert_error(sip_only.delete("/v2/users/alice@example.com"), 400, 4711)
    reader = clients(admin.app(creds.account_id, scopes=("user:read:admin",)))
    assert reader.get("/v2/users").status_code == 200
    assert_error(create(reader, "x@example.com"), 400, 4711)
