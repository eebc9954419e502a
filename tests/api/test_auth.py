"""Server-to-Server OAuth, access tokens, scopes, role permissions, account isolation, the switch."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest

from tests.api.zoom import (
    assert_error, current_body, legacy_body, legacy_phones, legacy_update_body,
)
from tests.servers import Credentials, get_token

ALL_SIP_SCOPES = {
    "sip_phone:read:admin", "sip_phone:write:admin", "sip_phone:read:list_sip_phones:admin",
    "sip_phone:write:sip_phone:admin", "sip_phone:update:sip_phone:admin", "sip_phone:delete:sip_phone:admin",
}
GRANT = {"grant_type": "account_credentials"}


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


# --- the token endpoint ------------------------------------------------------------------------

def check_token_response(r: httpx.Response, creds: Credentials, ttl: int = 3600) -> str:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == ttl
    assert isinstance(body["scope"], str) and set(body["scope"].split(" ")) >= ALL_SIP_SCOPES
    assert "," not in body["scope"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aid"] == creds.account_id and claims["cid"] == creds.client_id
    assert claims["exp"] - claims["iat"] == ttl
    assert abs(claims["iat"] - time.time()) < 60
    assert set(claims["scp"].split()) == set(body["scope"].split())
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    return body["access_token"]


def test_token_with_credentials_in_the_form_body(http, creds):
    r = http.post("/oauth/token", auth=(creds.client_id, creds.client_secret),
                  data=dict(GRANT, account_id=creds.account_id))
    token = check_token_response(r, creds)
    assert http.get("/v2/sip_phones", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_token_with_parameters_in_the_query_string(http, creds):
    r = http.post("/oauth/token", auth=(creds.client_id, creds.client_secret),
                  params=dict(GRANT, account_id=creds.account_id))
    token = check_token_response(r, creds)
    assert http.get("/v2/sip_phones/phones", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_several_tokens_are_valid_at_once(http, creds):
    tokens = [get_token(http, creds) for _ in range(3)]
    assert len(set(tokens)) == 3
    for t in tokens:
        assert http.get("/v2/sip_phones", headers={"Authorization": f"Bearer {t}"}).status_code == 200


def oauth_error(r: httpx.Response, status: int, code: int) -> dict:
    body = assert_error(r, status, code)
    assert "access_token" not in body
    return body


def test_wrong_secret(http, creds):
    r = http.post("/oauth/token", auth=(creds.client_id, creds.client_secret + "x"),
                  data=dict(GRANT, account_id=creds.account_id))
    oauth_error(r, 401, 4704)


def test_unknown_client(http, creds):
    r = http.post("/oauth/token", auth=("NoSuchClient", creds.client_secret), data=dict(GRANT, account_id=creds.account_id))
    oauth_error(r, 401, 4702)


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "Basic", "Basic " + base64.b64encode(b"only-id").decode(),
                                    "Basic " + base64.b64encode(b":secret").decode()])
def test_missing_client_credentials(http, creds, header):
    headers = {} if header is None else {"Authorization": header}
    r = http.post("/oauth/token", headers=headers, data=dict(GRANT, account_id=creds.account_id))
    oauth_error(r, 400, 4706)


@pytest.mark.parametrize("header", ["Basic !!!notbase64", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()])
def test_unreadable_basic_credentials(http, creds, header):
    r = http.post("/oauth/token", headers={"Authorization": header}, data=dict(GRANT, account_id=creds.account_id))
    oauth_error(r, 401, 4702)


def test_missing_grant_type(http, creds):
    r = http.post("/oauth/token", auth=(creds.client_id, creds.client_secret), data={"account_id": creds.account_id})
    body = oauth_error(r, 400, 4706)
    assert "grant" in body["message"].lower()


@pytest.mark.parametrize("grant", ["client_credentials", "authorization_code", "password", "ACCOUNT_CREDENTIALS"])
def test_unsupported_grant_type(http, creds, grant):
    r = http.post("/oauth/token", auth=(creds.client_id, creds.client_secret),
                  data={"grant_type": grant, "account_id": creds.account_id})
    oauth_error(r, 400, 4705)


def test_wrong_or_missing_account_id(http, creds, other):
    other_creds, _ = other
    for data in (dict(GRANT, account_id=other_creds.account_id), dict(GRANT, account_id="NoSuchAccount"), GRANT):
        r = http.post("/oauth/token", auth=(creds.client_id, creds.client_secret), data=data)
        oauth_error(r, 400, 4700)


def test_token_endpoint_accepts_only_post(http):
    assert_error(http.get("/oauth/token"), 405, 405)


# --- access tokens -----------------------------------------------------------------------------

def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_tampered_tokens_are_401_code_124(http, creds, other):
    token = get_token(http, creds)
    header_b64, payload_b64, sig = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    other_creds, _ = other
    forged = [
        f"{header_b64}.{_b64(dict(claims, aid=other_creds.account_id))}.{sig}",   # another account
        f"{header_b64}.{_b64(dict(claims, exp=claims['exp'] + 10**6))}.{sig}",    # a longer life
        f"{header_b64}.{payload_b64}.{sig[:-3]}{'AAA' if sig[-3:] != 'AAA' else 'BBB'}",
        f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload_b64}.",                   # unsigned
        jwt.encode(claims, "a-guessed-key-of-32-bytes-length!", algorithm="HS256"),  # wrong key
        token[:-1], token + "x", "x.y.z", "garbage", "é" * 10,
    ]
    for bad in forged:
        r = http.get("/v2/sip_phones", headers={"Authorization": f"Bearer {bad}".encode()})
        assert_error(r, 401, 124)
    # The genuine token still works.
    assert http.get("/v2/sip_phones", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "bearer", "Token abc", "Bearer \tx"])
def test_missing_or_malformed_authorization_is_401_code_124(http, header):
    headers = {} if header is None else {"Authorization": header}
    for method, path in (("GET", "/v2/sip_phones"), ("POST", "/v2/sip_phones/phones"),
                         ("PATCH", "/v2/sip_phones/x"), ("DELETE", "/v2/sip_phones/phones/x"), ("GET", "/v2/users")):
        assert_error(http.request(method, path, headers=headers, json={}), 401, 124, "Invalid access token.")


def test_bearer_scheme_is_case_insensitive(http, creds):
    token = get_token(http, creds)
    assert http.get("/v2/sip_phones", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_expired_token_is_401_code_124(short_ttl_server, creds):
    with short_ttl_server.client() as c:
        r = c.post("/oauth/token", auth=(creds.client_id, creds.client_secret),
                   data=dict(GRANT, account_id=creds.account_id))
        token = check_token_response(r, creds, ttl=3)
        exp = jwt.decode(token, options={"verify_signature": False})["exp"]
        headers = {"Authorization": f"Bearer {token}"}
        assert c.get("/v2/sip_phones", headers=headers).status_code == 200
        time.sleep(max(0.0, exp - time.time()) + 0.05)
        assert_error(c.get("/v2/sip_phones", headers=headers), 401, 124)
        assert_error(c.post("/v2/sip_phones", headers=headers, json=legacy_body()), 401, 124)


def test_deleting_the_app_kills_its_tokens_at_once(server, admin, creds, clients):
    spare = admin.app(creds.account_id)
    api = clients(creds)
    spare_api = clients(spare)
    assert api.get("/v2/sip_phones").status_code == 200
    admin.run(lambda svc, repo: svc.delete_app(creds.client_id))
    assert_error(api.get("/v2/sip_phones"), 401, 124)
    assert_error(api.post("/v2/sip_phones", json=legacy_body()), 401, 124)
    with server.client() as c:
        r = c.post("/oauth/token", auth=(creds.client_id, creds.client_secret), data=dict(GRANT, account_id=creds.account_id))
        oauth_error(r, 401, 4702)
    assert spare_api.get("/v2/sip_phones").status_code == 200  # the account's other app is untouched


def test_deleting_the_account_kills_its_tokens(admin, creds, api):
    assert api.get("/v2/sip_phones").status_code == 200
    admin.run(lambda svc, repo: svc.delete_account(creds.account_id))
    assert_error(api.get("/v2/sip_phones"), 401, 124)


# --- scopes and role permissions -------------------------------------------------------------

OPERATIONS = ("list", "create", "update", "delete")


def run_operation(client: httpx.Client, op: str, legacy: bool, phone_id: str) -> httpx.Response:
    base = "/v2/sip_phones" if legacy else "/v2/sip_phones/phones"
    if op == "list":
        return client.get(base)
    if op == "create":
        email = "alice@example.com.linux" if legacy else "alice@example.com.mobile"
        return client.post(base, json=legacy_body(email) if legacy else current_body(email))
    if op == "update":
        return client.patch(f"{base}/{phone_id}", json=legacy_update_body() if legacy else {"password": "x"})
    return client.delete(f"{base}/{phone_id}")


SUCCESS = {"list": 200, "create": 201, "update": 204, "delete": 204}
ACCEPTED = {
    "list": ["sip_phone:read:admin", "sip_phone:read:list_sip_phones:admin"],
    "create": ["sip_phone:write:admin", "sip_phone:write:sip_phone:admin"],
    "update": ["sip_phone:write:admin", "sip_phone:update:sip_phone:admin"],
    "delete": ["sip_phone:write:admin", "sip_phone:delete:sip_phone:admin"],
}


@pytest.mark.parametrize("scopes,allowed", [
    (("sip_phone:read:list_sip_phones:admin",), {"list"}),
    (("sip_phone:read:admin",), {"list"}),
    (("sip_phone:write:admin",), {"create", "update", "delete"}),
    (("sip_phone:write:sip_phone:admin",), {"create"}),
    (("sip_phone:update:sip_phone:admin",), {"update"}),
    (("sip_phone:delete:sip_phone:admin",), {"delete"}),
    (("sip_phone:read:admin", "sip_phone:write:admin"), set(OPERATIONS)),
    (("user:read:admin",), set()),
])
@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "current"])
def test_scopes_per_operation(admin, creds, api, clients, scopes, allowed, legacy):
    limited = clients(admin.app(creds.account_id, scopes=scopes))
    for op, suffix in zip(OPERATIONS, (".win", ".mac", ".ipad", ".iphone")):
        phone_id = api.post("/v2/sip_phones", json=legacy_body(f"alice@example.com{suffix}")).json()["id"]
        r = run_operation(limited, op, legacy, phone_id)
        if op in allowed:
            assert r.status_code == SUCCESS[op], (op, r.text)
        else:
            body = assert_error(r, 400, 4711)
            assert body["message"] == f"Invalid access token, does not contain scopes:[{', '.join(ACCEPTED[op])}]."


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "current"])
def test_app_without_edit_permission_gets_403(admin, creds, api, clients, legacy):
    read_only = clients(admin.app(creds.account_id, permissions=("SipPhone:Read",)))
    phone_id = api.post("/v2/sip_phones", json=legacy_body()).json()["id"]
    assert run_operation(read_only, "list", legacy, phone_id).status_code == 200
    assert_error(run_operation(read_only, "create", legacy, phone_id), 403, 3306, "No permission.")
    assert_error(run_operation(read_only, "update", legacy, phone_id), 403, 3336, "No permission.")
    assert_error(run_operation(read_only, "delete", legacy, phone_id), 403, 3336, "No permission.")
    assert list(legacy_phones(api)) == [phone_id]


def test_app_without_read_permission_cannot_list(admin, creds, clients):
    edit_only = clients(admin.app(creds.account_id, permissions=("SipPhone:Edit",)))
    for path in ("/v2/sip_phones", "/v2/sip_phones/phones"):
        assert_error(edit_only.get(path), 403, 3306, "No permission.")
    assert edit_only.post("/v2/sip_phones", json=legacy_body()).status_code == 201


def test_users_endpoints_check_the_apps_role_permissions(admin, creds, api, clients):
    """Like the phone endpoints: the scope is not enough, the app's role needs User:Read to list
    users and User:Edit to create or delete them (403, code 3306, checked after the scope)."""
    api.post("/v2/users", json={"action": "create", "user_info": {"email": "victim@example.com"}})
    new_user = {"action": "create", "user_info": {"email": "intruder@example.com"}}
    phones_read_only = clients(admin.app(creds.account_id, permissions=("SipPhone:Read",)))  # every scope
    assert_error(phones_read_only.get("/v2/users"), 403, 3306, "No permission.")
    assert_error(phones_read_only.post("/v2/users", json=new_user), 403, 3306, "No permission.")
    assert_error(phones_read_only.delete("/v2/users/victim@example.com"), 403, 3306, "No permission.")

    users_read = clients(admin.app(creds.account_id, permissions=("SipPhone:Read", "User:Read")))
    assert users_read.get("/v2/users").status_code == 200
    assert_error(users_read.post("/v2/users", json=new_user), 403, 3306, "No permission.")
    assert_error(users_read.delete("/v2/users/victim@example.com"), 403, 3306, "No permission.")
    emails = {u["email"] for u in api.get("/v2/users").json()["users"]}
    assert "victim@example.com" in emails and "intruder@example.com" not in emails

    users_edit = clients(admin.app(creds.account_id, permissions=("User:Edit",)))
    assert_error(users_edit.get("/v2/users"), 403, 3306, "No permission.")
    assert users_edit.post("/v2/users", json=new_user).status_code == 201
    assert users_edit.delete("/v2/users/victim@example.com").status_code == 204
    assert_error(users_edit.get("/v2/sip_phones/phones"), 403, 3306, "No permission.")  # no SipPhone role

    no_scope = clients(admin.app(creds.account_id, scopes=("user:read:admin",), permissions=()))
    assert_error(no_scope.post("/v2/users", json=new_user), 400, 4711)  # the scope is checked first


CHECK_PATH = "/_sipphones/v1/sip_phones/{}/check"
CHECK_SCOPES = "sip_phone:write:admin, sip_phone:update:sip_phone:admin"


def test_the_sip_check_needs_the_write_scope_and_edit_permission(admin, creds, api, clients):
    """The check REGISTERs with the phone's credentials: a read token may not start it (4711), nor
    an app whose role only reads phones (403, 3336). Refused before any SIP is sent."""
    phone_id = api.post("/v2/sip_phones", json=legacy_body()).json()["id"]
    read_only = clients(admin.app(creds.account_id, scopes=("sip_phone:read:admin",
                                                            "sip_phone:read:list_sip_phones:admin")))
    body = assert_error(read_only.post(CHECK_PATH.format(phone_id)), 400, 4711)
    assert body["message"] == f"Invalid access token, does not contain scopes:[{CHECK_SCOPES}]."
    for scope in ("sip_phone:write:sip_phone:admin", "sip_phone:delete:sip_phone:admin"):  # create, delete
        assert_error(clients(admin.app(creds.account_id, scopes=(scope,))).post(CHECK_PATH.format(phone_id)),
                     400, 4711)
    no_edit = clients(admin.app(creds.account_id, permissions=("SipPhone:Read",)))
    assert_error(no_edit.post(CHECK_PATH.format(phone_id)), 403, 3336, "No permission.")
    # With the update scope and SipPhone:Edit the check runs (the unknown phone: its 404 shows that).
    update_only = clients(admin.app(creds.account_id, scopes=("sip_phone:update:sip_phone:admin",)))
    assert_error(update_only.post(CHECK_PATH.format("NoSuchPhone0000000000")), 404, 2305)


# --- account isolation -------------------------------------------------------------------------

def test_another_account_never_sees_edits_or_deletes_the_phones(api, other):
    _, b = other
    phone = api.post("/v2/sip_phones", json=legacy_body()).json()
    pid = phone["id"]
    assert b.get("/v2/sip_phones").json()["phones"] == []
    assert b.get("/v2/sip_phones").json()["total_records"] == 0
    assert b.get("/v2/sip_phones/phones").json()["phones"] == []
    assert b.get("/v2/sip_phones", params={"search_key": "alice@example.com"}).json()["phones"] == []
    assert b.get("/v2/sip_phones", params={"search_key": phone["user_name"]}).json()["phones"] == []
    assert_error(b.patch(f"/v2/sip_phones/{pid}", json=legacy_update_body()), 400, 300)
    assert_error(b.delete(f"/v2/sip_phones/{pid}"), 400, 300)
    assert_error(b.patch(f"/v2/sip_phones/phones/{pid}", json={"password": "stolen"}), 404, 2305,
                 f"SIP phone does not exist: {pid}.")
    assert_error(b.delete(f"/v2/sip_phones/phones/{pid}"), 404, 2305)
    assert legacy_phones(api) == {pid: phone}  # untouched


def test_another_accounts_users_are_invisible(api, other):
    b_creds, b = other
    # alice belongs to A only: B cannot attach a phone to her, see her, or delete her.
    assert_error(b.post("/v2/sip_phones", json=legacy_body("alice@example.com")), 404, 1001)
    assert_error(b.post("/v2/sip_phones/phones", json=current_body("alice@example.com")), 404, 1001)
    assert [u["email"] for u in b.get("/v2/users").json()["users"]] == ["bob@example.com"]
    alice = api.get("/v2/users").json()["users"][0]
    assert alice["email"] == "alice@example.com"
    assert_error(b.delete(f"/v2/users/{alice['id']}"), 404, 1001)
    assert_error(b.delete("/v2/users/alice@example.com"), 404, 1001)
    assert [u["email"] for u in api.get("/v2/users").json()["users"]] == ["alice@example.com"]
    # The same address may exist in both accounts, each with its own phone.
    assert b.post("/v2/users", json={"action": "create", "user_info": {"email": "alice@example.com"}}).status_code == 201
    assert b.post("/v2/sip_phones", json=legacy_body("alice@example.com")).status_code == 201
    assert api.post("/v2/sip_phones", json=legacy_body("alice@example.com")).status_code == 201


def test_page_token_of_another_account_is_refused(api, other):
    _, b = other
    for email in ("alice@example.com", "alice@example.com.pc"):
        api.post("/v2/sip_phones", json=legacy_body(email))
    token = api.get("/v2/sip_phones", params={"page_size": 1}).json()["next_page_token"]
    assert token
    assert_error(b.get("/v2/sip_phones", params={"page_size": 1, "next_page_token": token}), 400, 300)
    assert_error(b.get("/v2/sip_phones/phones", params={"page_size": 1, "next_page_token": token}), 400, 300)


# --- the SIP phone integration switch ----------------------------------------------------------

LEGACY_OFF = "Permission missing: Enable SIP Phone Integration by contacting a Zoom Admin first."
CURRENT_OFF = "Permission missing. Enable SIP phone integration by contacting a Zoom admin first."


def test_integration_switched_off_while_running_answers_code_200_everywhere(admin, creds, api):
    phone_id = api.post("/v2/sip_phones", json=legacy_body()).json()["id"]
    admin.update_account(creds.account_id, sip_phone_integration=False)
    for legacy, message in ((True, LEGACY_OFF), (False, CURRENT_OFF)):
        for op in OPERATIONS:
            assert_error(run_operation(api, op, legacy, phone_id), 400, 200, message)
        base = "/v2/sip_phones" if legacy else "/v2/sip_phones/phones"
        # Even a request that is wrong in other ways answers the switch first.
        assert_error(api.post(base, content=b"not json"), 400, 200, message)
        assert_error(api.patch(f"{base}/NoSuchPhone", json={}), 400, 200, message)
        assert_error(api.delete(f"{base}/NoSuchPhone"), 400, 200, message)
        assert_error(api.get(base, params={"page_size": "abc", "next_page_token": "junk"}), 400, 200, message)
    # Users stay manageable with the integration off (decision).
    assert api.get("/v2/users").status_code == 200
    admin.update_account(creds.account_id, sip_phone_integration=True)
    assert list(legacy_phones(api)) == [phone_id]


def test_account_created_without_integration(admin, clients):
    creds = admin.account(integration=False)
    c = clients(creds)
    assert_error(c.get("/v2/sip_phones"), 400, 200, LEGACY_OFF)
    assert_error(c.post("/v2/sip_phones/phones", json=current_body()), 400, 200, CURRENT_OFF)


def test_checks_come_in_zoom_order(admin, creds, clients, http):
    """No token beats everything; then scopes; then the role permission; then the switch."""
    admin.update_account(creds.account_id, sip_phone_integration=False)
    assert_error(http.post("/v2/sip_phones", json={}), 401, 124)
    no_scope = clients(admin.app(creds.account_id, scopes=("sip_phone:read:admin",), permissions=("SipPhone:Read",)))
    assert_error(no_scope.post("/v2/sip_phones", json={}), 400, 4711)
    no_perm = clients(admin.app(creds.account_id, permissions=("SipPhone:Read",)))
    assert_error(no_perm.post("/v2/sip_phones", json={}), 403, 3306)
    full = clients(admin.app(creds.account_id))
    assert_error(full.post("/v2/sip_phones", json={}), 400, 200)


def test_a_token_is_bound_to_its_server_key(tmp_path, database_url, creds, http):
    """A server with another master key refuses this server's tokens (the signature is checked)."""
    from tests.servers import start_server

    token = get_token(http, creds)
    foreign = start_server(database_url, tmp_path / "other-key")
    try:
        with foreign.client() as c:
            assert_error(c.get("/v2/sip_phones", headers={"Authorization": f"Bearer {token}"}), 401, 124)
    finally:
        foreign.stop()
