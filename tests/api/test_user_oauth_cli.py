"""``sipphones apps create --type user-managed``: an app whose users sign in, created from the
command line, works over HTTP at once; bad input is one sentence."""

from __future__ import annotations

from tests.api.test_cli import cli
from tests.api.test_user_oauth import UserApp, exchange, get_code, pkce_pair, refresh, tokens_of
from tests.api.zoom import plain_client

CALLBACK = "http://127.0.0.1:8765/callback"


def test_user_managed_app_from_the_cli(server):
    acc = cli(server, "accounts", "create", "--name", "CLI OAuth", "--json").json()
    cli(server, "users", "create", "--account", acc["id"], "--email", "alice@example.com", "--json").json()
    made = cli(server, "apps", "create", "--account", acc["id"], "--type", "user-managed", "--redirect-uri", CALLBACK,
               "--redirect-uri", "com.example.app:/oauth", "--scopes", "user:read sip_phone:read:admin", "--json")
    assert made.code == 0, made.err
    app = made.json()
    assert app["type"] == "user_managed" and app["public_client"] is False and app["client_secret"]
    assert app["redirect_uris"] == [CALLBACK, "com.example.app:/oauth"]
    public = cli(server, "apps", "create", "--account", acc["id"], "--type", "user-managed", "--public",
                 "--redirect-uri", CALLBACK, "--json").json()
    assert public["public_client"] is True and "client_secret" not in public
    listed = {a["client_id"]: a for a in cli(server, "apps", "list", "--account", acc["id"], "--json").json()}
    assert listed[app["client_id"]]["type"] == "user_managed" and "client_secret" not in listed[app["client_id"]]

    with plain_client(server) as http:
        confidential = UserApp(acc["id"], app["client_id"], app["client_secret"], CALLBACK)
        body = tokens_of(exchange(http, confidential, get_code(http, confidential)))
        assert set(body["scope"].split()) == {"user:read", "sip_phone:read:admin"}
        tokens_of(refresh(http, confidential, body["refresh_token"]))
        pub = UserApp(acc["id"], public["client_id"], "", CALLBACK)
        verifier, challenge = pkce_pair()
        code = get_code(http, pub, code_challenge=challenge, code_challenge_method="S256")
        tokens_of(exchange(http, pub, code, code_verifier=verifier))


def test_user_managed_app_bad_input_is_one_sentence(server):
    acc = cli(server, "accounts", "create", "--name", "CLI OAuth bad", "--json").json()
    cases = [
        (("--type", "user-managed"), "redirect-uri"),
        (("--type", "user-managed", "--redirect-uri", "/relative"), "absolute"),
        (("--type", "user-managed", "--redirect-uri", "https://x.example/cb#frag"), "fragment"),
        (("--type", "user-managed", "--redirect-uri", "https:///nohost"), "host"),
        (("--redirect-uri", CALLBACK), "user-managed"),
        (("--public",), "user-managed"),
        (("--type", "desktop"), "desktop"),
    ]
    for extra, word in cases:
        r = cli(server, "apps", "create", "--account", acc["id"], *extra)
        assert r.code == 1, (extra, r.out, r.err)
        assert r.err.startswith("error: ") and r.err.count("\n") == 1 and word in r.err, (extra, r.err)
