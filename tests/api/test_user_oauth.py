"""User-managed OAuth apps over real HTTP, on both stores: the authorization code grant with PKCE,
codes good once and only for their client, redirect URI and verifier, expiry, rotating refresh
tokens, /oauth/revoke, scopes, user-level access (/v2/users/me) and account isolation."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sipphones.accounts.models import ALL_PERMISSIONS
from sipphones.auth.scopes import DEFAULT_USER_APP_SCOPES
from tests.api.zoom import assert_error, current_body, plain_client
from tests.servers import Admin, Credentials, ServerProcess, get_token, start_server

REDIRECT = "https://client.example/callback"


@dataclass
class UserApp:
    account_id: str
    client_id: str
    client_secret: str   # "" for a public client
    redirect_uri: str


def user_app(admin: Admin, account_id: str, *, scopes=DEFAULT_USER_APP_SCOPES, public: bool = False,
             redirect_uris=(REDIRECT,), permissions=ALL_PERMISSIONS) -> UserApp:
    async def go(svc, repo):
        made = await svc.create_user_app(account_id, "integration under test", redirect_uris=tuple(redirect_uris),
                                         scopes=tuple(scopes), permissions=tuple(permissions), public_client=public)
        return UserApp(account_id, made.app.client_id, made.client_secret, redirect_uris[0])
    return admin.run(go)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(http: httpx.Client, app: UserApp, user: str = "alice@example.com", **params) -> httpx.Response:
    query = {"response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uri,
             "state": "xyz-42", "login_hint": user}
    query.update(params)
    return http.get("/oauth/authorize", params={k: v for k, v in query.items() if v is not None})


def redirected(r: httpx.Response, app: UserApp) -> dict[str, str]:
    """The query parameters of the redirect back to the app (after checking it is one)."""
    assert r.status_code == 302, (r.status_code, r.text)
    location = r.headers["location"]
    assert location.startswith(app.redirect_uri + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(http: httpx.Client, app: UserApp, **params) -> str:
    got = redirected(authorize(http, app, **params), app)
    assert got["state"] == "xyz-42" and "error" not in got, got
    return got["code"]


def exchange(http: httpx.Client, app: UserApp, code: str, **fields) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri}
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    if app.client_secret:
        return http.post("/oauth/token", auth=(app.client_id, app.client_secret), data=data)
    return http.post("/oauth/token", data=dict(data, client_id=app.client_id))


def refresh(http: httpx.Client, app: UserApp, refresh_token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if app.client_secret:
        return http.post("/oauth/token", auth=(app.client_id, app.client_secret), data=data)
    return http.post("/oauth/token", data=dict(data, client_id=app.client_id))


def revoke(http: httpx.Client, app: UserApp, token: str) -> httpx.Response:
    return http.post("/oauth/revoke", auth=(app.client_id, app.client_secret), data={"token": token})


def tokens_of(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"] and body["refresh_token"] and body["api_url"].startswith("http")
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def grant_error(r: httpx.Response, status: int, code: int, error: str) -> dict:
    body = assert_error(r, status, code)
    assert body["error"] == error and body["reason"] == body["message"], body
    assert "access_token" not in body
    return body


@pytest.fixture
def app(admin: Admin, creds: Credentials) -> UserApp:
    return user_app(admin, creds.account_id)


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with plain_client(server) as c:
        yield c


# --- the full flow -------------------------------------------------------------------------------

def test_code_flow_with_pkce_s256_acts_as_the_user(http, app, admin, creds):
    admin.add_user(creds.account_id, "bob@example.com", "Bob", "Builder")
    verifier, challenge = pkce_pair()
    code = get_code(http, app, user="bob@example.com", code_challenge=challenge, code_challenge_method="S256")
    body = tokens_of(exchange(http, app, code, code_verifier=verifier))
    assert set(body["scope"].split()) == set(DEFAULT_USER_APP_SCOPES)
    me = http.get("/v2/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "bob@example.com" and me.json()["account_id"] == creds.account_id
    # The user's token reaches the account's SIP phones with the app's scopes (admin-level ones).
    created = http.post("/v2/sip_phones/phones", headers=bearer(body["access_token"]),
                        json=current_body("bob@example.com"))
    assert created.status_code == 201, created.text
    listed = http.get("/v2/sip_phones/phones", headers=bearer(body["access_token"]))
    assert listed.status_code == 200 and [p["user_email"] for p in listed.json()["phones"]] == ["bob@example.com"]


def test_plain_pkce_and_no_pkce_for_a_confidential_client(http, app):
    verifier = secrets.token_urlsafe(40)
    code = get_code(http, app, code_challenge=verifier)        # method defaults to plain
    tokens_of(exchange(http, app, code, code_verifier=verifier))
    code = get_code(http, app)                                  # no PKCE: the secret alone
    tokens_of(exchange(http, app, code))


def test_public_client_needs_pkce_and_no_secret(http, admin, creds):
    app = user_app(admin, creds.account_id, public=True)
    assert app.client_secret == ""
    got = redirected(authorize(http, app), app)
    assert got["error"] == "invalid_request" and "PKCE" in got["error_description"] and got["state"] == "xyz-42"
    verifier, challenge = pkce_pair()
    code = get_code(http, app, code_challenge=challenge, code_challenge_method="S256")
    body = tokens_of(exchange(http, app, code, code_verifier=verifier))
    assert tokens_of(refresh(http, app, body["refresh_token"]))["refresh_token"] != body["refresh_token"]
    # No secret: a public client cannot use Basic credentials; a confidential one must.
    r = http.post("/oauth/token", auth=(app.client_id, "guess"), data={"grant_type": "refresh_token",
                                                                      "refresh_token": body["refresh_token"]})
    grant_error(r, 401, 4704, "invalid_client")


def test_confidential_client_without_secret_is_refused(http, app):
    code = get_code(http, app)
    r = http.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": app.redirect_uri, "client_id": app.client_id})
    grant_error(r, 400, 4706, "invalid_request")
    tokens_of(exchange(http, app, code))   # the failed attempt did not use the code up


# --- what a code is bound to ---------------------------------------------------------------------

def test_wrong_verifier_is_refused(http, app):
    verifier, challenge = pkce_pair()
    code = get_code(http, app, code_challenge=challenge, code_challenge_method="S256")
    grant_error(exchange(http, app, code, code_verifier=pkce_pair()[0]), 400, 4734, "invalid_grant")
    grant_error(exchange(http, app, code, code_verifier="short"), 400, 4734, "invalid_grant")
    assert_error(exchange(http, app, code), 400, 4700)   # missing verifier
    tokens_of(exchange(http, app, code, code_verifier=verifier))


def test_code_is_good_once_and_a_replay_revokes_what_it_gave(http, app):
    code = get_code(http, app)
    body = tokens_of(exchange(http, app, code))
    assert http.get("/v2/users/me", headers=bearer(body["access_token"])).status_code == 200
    grant_error(exchange(http, app, code), 400, 4734, "invalid_grant")
    # RFC 6749 4.1.2: the tokens issued for the replayed code are revoked.
    assert_error(http.get("/v2/users/me", headers=bearer(body["access_token"])), 401, 124)
    grant_error(refresh(http, app, body["refresh_token"]), 400, 4741, "invalid_grant")


def test_wrong_redirect_uri(http, app, admin, creds):
    other = "https://client.example/other"
    two = user_app(admin, creds.account_id, redirect_uris=(REDIRECT, other))
    # At the authorization: an unregistered URI is never redirected to (RFC 6749 4.1.2.1).
    r = authorize(http, app, redirect_uri="https://evil.example/cb")
    assert "location" not in r.headers
    grant_error(r, 400, 4709, "invalid_request")
    grant_error(authorize(http, app, redirect_uri=REDIRECT + "/"), 400, 4709, "invalid_request")
    grant_error(authorize(http, app, redirect_uri=None), 400, 4709, "invalid_request")
    # At the exchange: the URI of the authorization, exactly, even if the app registered both.
    code = get_code(http, two)
    grant_error(exchange(http, two, code, redirect_uri=other), 400, 4709, "invalid_request")
    grant_error(exchange(http, two, code, redirect_uri=None), 400, 4709, "invalid_request")
    tokens_of(exchange(http, two, code))


def test_code_of_another_client_is_unknown_to_this_one(http, app, admin, creds):
    other = user_app(admin, creds.account_id)
    code = get_code(http, app)
    grant_error(exchange(http, other, code), 400, 4734, "invalid_grant")
    grant_error(exchange(http, app, "made-up-code"), 400, 4734, "invalid_grant")
    tokens_of(exchange(http, app, code))


def test_authorization_errors_go_back_to_the_client_with_state(http, app):
    got = redirected(authorize(http, app, response_type="token"), app)
    assert got == {"error": "unsupported_response_type", "error_description": got["error_description"],
                   "state": "xyz-42"}
    got = redirected(authorize(http, app, code_challenge="x" * 43, code_challenge_method="S512"), app)
    assert got["error"] == "invalid_request"
    got = redirected(authorize(http, app, scope="user:write:admin"), app)
    assert got["error"] == "invalid_scope"
    got = redirected(authorize(http, app, consent="deny"), app)
    assert got["error"] == "access_denied"
    unknown = authorize(http, UserApp(app.account_id, "nosuchclient", "", REDIRECT))
    assert "location" not in unknown.headers
    grant_error(unknown, 400, 4702, "invalid_client")


def test_sign_in_page_lists_the_accounts_users(http, app, admin, creds):
    admin.add_user(creds.account_id, "carol@example.com", "Carol", "<script>")
    r = authorize(http, app, user=None)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "alice@example.com" in r.text and "carol@example.com" in r.text
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text
    assert "login_hint=carol%40example.com" in r.text and "consent=deny" in r.text


# --- expiry (a server whose codes live 1 s and refresh tokens 2 s) --------------------------------

@pytest.fixture(scope="module")
def short_server(server: ServerProcess) -> Iterator[ServerProcess]:
    srv = start_server(server.database_url, server.data_dir,
                       extra_env={"SIPPHONES_OAUTH_CODE_TTL": "1", "SIPPHONES_REFRESH_TOKEN_TTL": "2",
                                  "SIPPHONES_OAUTH_EMULATED_SIGN_IN": "1"})
    yield srv
    srv.stop()


# --- password-less sign-in is the operator's choice --------------------------------------------------

def test_sign_in_is_off_unless_the_operator_turns_it_on(server, app):
    """A server started without --emulator or SIPPHONES_OAUTH_EMULATED_SIGN_IN signs nobody in:
    no code, no page listing the account's users."""
    srv = start_server(server.database_url, server.data_dir, extra_env={"SIPPHONES_OAUTH_EMULATED_SIGN_IN": "0"})
    try:
        with plain_client(srv) as http:
            for hint in ("alice@example.com", ""):
                r = http.get("/oauth/authorize", params={"response_type": "code", "client_id": app.client_id,
                                                         "redirect_uri": app.redirect_uri, "login_hint": hint})
                body = assert_error(r, 403, 4700)
                assert "SIPPHONES_OAUTH_EMULATED_SIGN_IN" in body["message"]
                assert "location" not in r.headers and "code=" not in r.text
    finally:
        srv.stop()


def test_expired_code_and_refresh_token(short_server, app):
    with plain_client(short_server) as http:
        code = get_code(http, app)
        time.sleep(1.2)
        grant_error(exchange(http, app, code), 400, 4733, "invalid_grant")
        body = tokens_of(exchange(http, app, get_code(http, app)))
        body = tokens_of(refresh(http, app, body["refresh_token"]))   # within 2 s: rotated, restarted
        time.sleep(2.2)
        grant_error(refresh(http, app, body["refresh_token"]), 400, 4711, "invalid_grant")


# --- refresh tokens ------------------------------------------------------------------------------

def test_refresh_rotates_and_the_old_refresh_token_dies(http, app):
    first = tokens_of(exchange(http, app, get_code(http, app)))
    second = tokens_of(refresh(http, app, first["refresh_token"]))
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    body = grant_error(refresh(http, app, first["refresh_token"]), 400, 4711, "invalid_grant")
    assert body["reason"] == "Invalid Token!"
    third = tokens_of(refresh(http, app, second["refresh_token"]))
    for token in (first["access_token"], second["access_token"], third["access_token"]):
        assert http.get("/v2/users/me", headers=bearer(token)).status_code == 200   # live until they expire
    grant_error(refresh(http, app, "garbage"), 400, 4711, "invalid_grant")
    grant_error(refresh(http, app, third["refresh_token"] + "x"), 400, 4711, "invalid_grant")


def test_refresh_token_of_another_client(http, app, admin, creds):
    other = user_app(admin, creds.account_id)
    body = tokens_of(exchange(http, app, get_code(http, app)))
    grant_error(refresh(http, other, body["refresh_token"]), 400, 4711, "invalid_grant")
    tokens_of(refresh(http, app, body["refresh_token"]))


def test_a_new_authorization_revokes_the_users_earlier_one(http, app):
    old = tokens_of(exchange(http, app, get_code(http, app)))
    new = tokens_of(exchange(http, app, get_code(http, app)))
    grant_error(refresh(http, app, old["refresh_token"]), 400, 4741, "invalid_grant")
    assert_error(http.get("/v2/users/me", headers=bearer(old["access_token"])), 401, 124)
    assert http.get("/v2/users/me", headers=bearer(new["access_token"])).status_code == 200


# --- revoke --------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revoke_ends_every_token_of_the_grant(http, app, which):
    body = tokens_of(exchange(http, app, get_code(http, app)))
    r = revoke(http, app, body[which])
    assert r.status_code == 200 and r.json() == {"status": "success"}
    assert_error(http.get("/v2/users/me", headers=bearer(body["access_token"])), 401, 124)
    grant_error(refresh(http, app, body["refresh_token"]), 400, 4741, "invalid_grant")
    assert revoke(http, app, body[which]).json() == {"status": "success"}   # again: nothing left, no error


def test_revoke_errors(http, app, admin, creds):
    body = tokens_of(exchange(http, app, get_code(http, app)))
    other = user_app(admin, creds.account_id)
    grant_error(revoke(http, other, body["access_token"]), 400, 4702, "invalid_client")
    grant_error(revoke(http, other, body["refresh_token"]), 400, 4702, "invalid_client")
    grant_error(revoke(http, app, ""), 400, 4700, "invalid_request")
    grant_error(http.post("/oauth/revoke", data={"token": body["access_token"]}), 400, 4706, "invalid_request")
    grant_error(http.post("/oauth/revoke", auth=(app.client_id, "wrong"), data={"token": "x"}),
                401, 4704, "invalid_client")
    assert revoke(http, app, "unknown.token").json() == {"status": "success"}   # RFC 7009 2.2
    assert http.get("/v2/users/me", headers=bearer(body["access_token"])).status_code == 200
    s2s = get_token(http, creds)
    grant_error(http.post("/oauth/revoke", auth=(creds.client_id, creds.client_secret), data={"token": s2s}),
                400, 4705, "unauthorized_client")


# --- app types ---------------------------------------------------------------------------------

def test_app_types_keep_to_their_grants(http, app, creds):
    r = http.post("/oauth/token", auth=(app.client_id, app.client_secret),
                  data={"grant_type": "account_credentials", "account_id": creds.account_id})
    grant_error(r, 400, 4705, "unauthorized_client")
    r = http.post("/oauth/token", auth=(creds.client_id, creds.client_secret),
                  data={"grant_type": "refresh_token", "refresh_token": "a.b"})
    grant_error(r, 400, 4705, "unauthorized_client")
    s2s_app = UserApp(creds.account_id, creds.client_id, creds.client_secret, REDIRECT)
    grant_error(authorize(http, s2s_app), 400, 4702, "invalid_client")


# --- scopes and user-level access ----------------------------------------------------------------

def test_scopes_are_enforced(http, admin, creds):
    app = user_app(admin, creds.account_id, scopes=("user:read",))
    body = tokens_of(exchange(http, app, get_code(http, app)))
    assert body["scope"] == "user:read"
    token = bearer(body["access_token"])
    assert http.get("/v2/users/me", headers=token).json()["email"] == "alice@example.com"
    assert_error(http.get("/v2/sip_phones/phones", headers=token), 400, 4711)
    assert_error(http.get("/v2/users", headers=token), 400, 4711)
    admin.add_user(creds.account_id, "dave@example.com")
    assert_error(http.get("/v2/users/dave@example.com", headers=token), 400, 4711)   # not one's own
    # A code asking for fewer scopes than the app has gets only those.
    full = user_app(admin, creds.account_id)
    narrowed = tokens_of(exchange(http, full, get_code(http, full, scope="sip_phone:read:admin user:read")))
    assert set(narrowed["scope"].split()) == {"sip_phone:read:admin", "user:read"}
    assert_error(http.post("/v2/sip_phones/phones", headers=bearer(narrowed["access_token"]), json={}), 400, 4711)


def test_users_me_with_an_account_token_and_get_user_by_admin(api, creds):
    assert_error(api.get("/v2/users/me"), 404, 1001)
    r = api.get("/v2/users/alice@example.com")
    assert r.status_code == 200 and r.json()["email"] == "alice@example.com"
    assert_error(api.get("/v2/users/nobody@example.com"), 404, 1001)


# --- isolation -----------------------------------------------------------------------------------

def test_cross_account_isolation(http, app, admin, creds):
    other = admin.account(users=("bob@example.com",), name="Other account")
    # A user of another account cannot sign in to this account's app.
    assert_error(authorize(http, app, user="bob@example.com"), 400, 4700)
    theirs = user_app(admin, other.account_id)
    mine = tokens_of(exchange(http, app, get_code(http, app)))
    their = tokens_of(exchange(http, theirs, get_code(http, theirs, user="bob@example.com")))
    assert http.get("/v2/users/me", headers=bearer(their["access_token"])).json()["account_id"] == other.account_id
    # Neither sees the other's users; their codes, refresh tokens and revocations do not cross.
    assert_error(http.get("/v2/users/bob@example.com", headers=bearer(mine["access_token"])), 400, 4711)
    grant_error(refresh(http, theirs, mine["refresh_token"]), 400, 4711, "invalid_grant")
    grant_error(revoke(http, theirs, mine["access_token"]), 400, 4702, "invalid_client")
    assert http.get("/v2/users/me", headers=bearer(mine["access_token"])).json()["account_id"] == creds.account_id


def test_deleting_the_user_or_the_app_ends_its_tokens(http, app, admin, creds):
    admin.add_user(creds.account_id, "erin@example.com")
    body = tokens_of(exchange(http, app, get_code(http, app, user="erin@example.com")))
    admin.run(lambda svc, repo: svc.delete_user(creds.account_id, "erin@example.com"))
    assert_error(http.get("/v2/users/me", headers=bearer(body["access_token"])), 401, 124)
    grant_error(refresh(http, app, body["refresh_token"]), 400, 4711, "invalid_grant")
    body = tokens_of(exchange(http, app, get_code(http, app)))
    admin.run(lambda svc, repo: svc.delete_app(app.client_id))
    assert_error(http.get("/v2/users/me", headers=bearer(body["access_token"])), 401, 124)


# --- bounds --------------------------------------------------------------------------------------

def test_codes_kept_per_app_are_bounded(admin, app, creds):
    from sipphones.auth.grants import AuthorizationCode

    async def go(svc, repo):
        user = await repo.get_user_by_email(creds.account_id, "alice@example.com")
        now = time.time()

        def code(n: int, at: float) -> AuthorizationCode:
            return AuthorizationCode(code_hash=f"{n:064x}", client_id=app.client_id, account_id=creds.account_id,
                                     user_id=user.id, redirect_uri=REDIRECT, scopes=("user:read",), challenge="",
                                     challenge_method="", created_at=at, expires_at=at + 300)

        kept = [await repo.add_authorization_code(code(n, now), 3) for n in range(4)]
        # Codes expired over an hour ago are purged by the next new code, which then fits again.
        old = [await repo.add_authorization_code(code(n, now - 7200), 10) for n in range(10, 12)]
        return kept, old, await repo.add_authorization_code(code(20, now), 5)

    kept, old, after_purge = admin.run(go)
    assert kept == [True, True, True, False]
    assert old == [True, True] and after_purge is True
