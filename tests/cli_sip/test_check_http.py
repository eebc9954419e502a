"""The check over HTTP (``POST /_sipphones/v1/sip_phones/{id}/check``) through a real server process,
with a real app token, against the shared kamailio."""

from __future__ import annotations

import pytest

from tests.monitor.store import PhoneStore, Server
from tests.servers import Admin, get_token, start_server

PATH = "/_sipphones/v1/sip_phones/{}/check"


@pytest.fixture(scope="module")
def env(tmp_path_factory, sip_pki):
    store = PhoneStore(tmp_path_factory.mktemp("check-http"))
    server = start_server(store.database_url, store.data_dir,
                          extra_env={"SIPPHONES_SIP_CA_FILE": str(sip_pki.ca_file)})
    try:
        yield store, server, Admin(store.database_url, store.data_dir)
    finally:
        server.stop()


def test_check_over_http(env, kamailio):
    store, server, admin = env
    creds = admin.account()
    other = admin.account(users=("mallory@example.com",))
    good = store.phone(creds.account_id, "alice", "alicepw", [Server(kamailio.server("UDP")),
                                                                Server(kamailio.server("TLS"), "TLS")])
    bad = store.phone(creds.account_id, "bob", "wrong", [Server(kamailio.server("TCP"), "TCP")])
    foreign = store.phone(other.account_id, "carol", "carolpw", [Server(kamailio.server("UDP"))],
                          authorization_name="carol-auth")
    with server.client() as c:
        c.headers["Authorization"] = f"Bearer {get_token(c, creds)}"
        r = c.post(PATH.format(good.id))
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["phone_id"] == good.id and report["ok"] is True
        assert report["user_email"] == good.user_email
        s1, s2 = report["servers"]
        assert (s1["result"], s1["address"], s1["transport"], s1["sip_status"]) == \
            ("registered", kamailio.server("UDP"), "UDP", 200)
        assert (s2["result"], s2["address"], s2["transport"]) == ("registered", kamailio.server("TLS"), "TLS")
        assert s1["granted_expires"] == 60 and s1["unregistered"] is True
        assert kamailio.contacts("alice") == []

        r = c.post(PATH.format(bad.id), params={"timeout": "2"})
        assert r.status_code == 200
        assert r.json()["ok"] is False and r.json()["servers"][0]["result"] == "auth_rejected"

        # unknown, and another account's phone: the same Zoom-shaped 404
        for pid in ("NoSuchPhone0000000000", foreign.id):
            r = c.post(PATH.format(pid))
            assert r.status_code == 404
            assert r.json() == {"code": 2305, "message": f"SIP phone does not exist: {pid}."}

        r = c.post(PATH.format(good.id), params={"timeout": "nope"})
        assert r.status_code == 400 and r.json()["code"] == 300
        assert r.json()["errors"][0]["field"] == "timeout"

        # not in Zoom's namespace
        assert c.post(f"/v2/sip_phones/{good.id}/check").status_code in (404, 405)

    with server.client() as c:
        r = c.post(PATH.format(good.id))
        assert r.status_code == 401 and r.json()["code"] == 124

    # The check acts with the phone's credentials: a read-only token may not start it; the write
    # (or granular update) scope with SipPhone:Edit may.
    read_only = admin.app(creds.account_id, scopes=("sip_phone:read:admin",))
    with server.client() as c:
        c.headers["Authorization"] = f"Bearer {get_token(c, read_only)}"
        r = c.post(PATH.format(good.id))
        assert r.status_code == 400 and r.json()["code"] == 4711
    write_only = admin.app(creds.account_id, scopes=("sip_phone:write:admin",))
    with server.client() as c:
        c.headers["Authorization"] = f"Bearer {get_token(c, write_only)}"
        r = c.post(PATH.format(good.id))
        assert r.status_code == 200 and r.json()["ok"] is True
