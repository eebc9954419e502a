"""The control plane: only in emulator mode, only with the operator token."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import start_sqlite_server

PATHS = [("GET", "/health"), ("POST", "/reset"), ("POST", "/accounts"), ("GET", "/snapshot"), ("PUT", "/snapshot"),
         ("GET", "/clock"), ("POST", "/clock/advance"), ("POST", "/clock/reset"), ("GET", "/journal"),
         ("POST", "/journal/count"), ("DELETE", "/journal"), ("POST", "/faults"), ("GET", "/faults"),
         ("DELETE", "/faults"), ("DELETE", "/faults/some-rule"), ("GET", "/nothing-here")]


@pytest.fixture(scope="module")
def normal_server(tmp_path_factory):
    server = start_sqlite_server(tmp_path_factory.mktemp("normal"))
    yield server
    server.stop()


def test_outside_emulator_mode_every_control_path_is_a_zoom_404(normal_server):
    with normal_server.client() as http:
        for method, path in PATHS:
            for headers in ({}, {"Authorization": "Bearer anything-at-all-1234"}):
                r = http.request(method, "/_sipphones/v1" + path, headers=headers, json={})
                assert r.status_code == 404, (method, path, r.text)
                assert r.json() == {"code": 404, "message": "Not Found"} or r.json()["code"] == 404
                assert r.headers["x-zm-trackingid"]
        # the status extension is not control plane: it answers (with its own OAuth check)
        assert http.get("/_sipphones/v1/sip_phones/status").status_code == 401


def test_the_control_plane_needs_the_operator_token(emu):
    for method, path in PATHS:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": f"Basic {emu.admin_token}"}, {"Authorization": "Bearer"}):
            r = httpx.request(method, emu.url + "/_sipphones/v1" + path, headers=headers, json={})
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["code"] == 124
    ok = httpx.get(emu.url + "/_sipphones/v1/health", headers={"Authorization": f"Bearer {emu.admin_token}"})
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    missing = httpx.get(emu.url + "/_sipphones/v1/nothing-here", headers={"Authorization": f"Bearer {emu.admin_token}"})
    assert missing.status_code == 404 and missing.json()["code"] == 404


def test_bad_control_requests_are_zoom_shaped_400s(emu, control):
    h = {"Authorization": f"Bearer {emu.admin_token}"}
    for path, body in (("/clock/advance", {}), ("/clock/advance", {"seconds": -5}), ("/clock/advance", {"seconds": "x"}),
                       ("/accounts", {"plan": "gold"}), ("/accounts", {"scopes": ["no:such:scope"]}),
                       ("/accounts", {"users": "not-a-list"}), ("/accounts", {"users": ["not-an-email"]}),
                       ("/accounts", {"users": ["a@example.com", "A@example.com"]}), ("/accounts", {"name": " "}),
                       ("/reset", {"account_id": 5})):
        r = httpx.post(emu.url + "/_sipphones/v1" + path, headers=h, json=body)
        assert r.status_code == 400 and r.json()["code"] == 300 and r.json()["message"], (path, body, r.text)
    r = httpx.post(emu.url + "/_sipphones/v1/reset", headers=h, content=b"{not json")
    assert r.status_code == 400
    r = httpx.put(emu.url + "/_sipphones/v1/snapshot", headers=h, json={"format": "other"})
    assert r.status_code == 400 and "snapshot" in r.json()["message"]
