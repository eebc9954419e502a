"""The journal and fault rules over HTTP, against a real ``sipphones serve --emulator``: the control
routes (/_sipphones/v1/journal, /_sipphones/v1/faults), what a plain httpx call then sees (exact
status, delay, dropped connection, malformed body), and the Python client retrying through a rule."""

from __future__ import annotations

import time
from typing import Iterator

import httpx
import orjson
import pytest

from sipphones.client import SipPhonesClient
from sipphones.client.errors import TransportError, ZoomAPIError
from tests.servers import ServerProcess, start_sqlite_server

OPERATOR = "operator-token-for-the-faults-tests"
CONTROL = "/_sipphones/v1"


def phone(email: str, password: str = "hunter2-secret") -> dict:
    return {"user_email": email, "user_name": "1001", "authorization_name": "alice", "password": password,
            "domain": "sip.example.com", "server": {"register_server": "10.0.0.1:5060", "proxy_server": "10.0.0.1",
                                                    "transport_protocol": "UDP"}}


@pytest.fixture(scope="module")
def emu(tmp_path_factory) -> Iterator[ServerProcess]:
    srv = start_sqlite_server(tmp_path_factory.mktemp("emulator"), extra_args=["--emulator"],
                              extra_env={"SIPPHONES_ADMIN_TOKEN": OPERATOR})
    yield srv
    srv.stop()


@pytest.fixture
def control(emu) -> Iterator[httpx.Client]:
    with emu.client(headers={"authorization": f"Bearer {OPERATOR}"}) as c:
        yield c
        c.delete(f"{CONTROL}/faults")


@pytest.fixture
def account(control) -> dict:
    r = control.post(f"{CONTROL}/accounts", json={"users": ["alice@example.com", "bob@example.com"],
                                                  "unlimited": True})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def api(emu, account) -> Iterator[httpx.Client]:
    with emu.client(headers={"authorization": f"Bearer {account['access_token']}"}) as c:
        yield c


def add_fault(control: httpx.Client, **rule) -> dict:
    r = control.post(f"{CONTROL}/faults", json=rule)
    assert r.status_code == 201, r.text
    return r.json()


def journal(control: httpx.Client, **params) -> dict:
    r = control.get(f"{CONTROL}/journal", params=params)
    assert r.status_code == 200, r.text
    return r.json()


# --- the journal ---------------------------------------------------------------------------------

def test_the_journal_records_requests_of_an_account_and_counts_them_by_body(control, api, account):
    for _ in range(3):
        api.post("/v2/sip_phones/phones", json=phone("alice@example.com"))
    api.post("/v2/sip_phones/phones", json=phone("bob@example.com"))
    api.get("/v2/sip_phones/phones")
    me = account["account_id"]

    posts = journal(control, method="POST", path="/v2/sip_phones/phones", account_id=me)
    assert posts["total"] == 4 and [e["response"]["status"] for e in posts["requests"]] == [201, 400, 400, 201]
    r = control.post(f"{CONTROL}/journal/count", json={
        "method": "POST", "path": "/v2/sip_phones/phones", "account_id": me, "body": {"user_email": "alice@example.com"}})
    assert r.json() == {"count": 3}
    assert control.post(f"{CONTROL}/journal/count", json={"account_id": me, "path": "/v2/sip_phones*"}).json() \
        == {"count": 5}
    first = posts["requests"][0]
    assert control.get(f"{CONTROL}/journal/{first['id']}").json() == first
    assert control.get(f"{CONTROL}/journal/999999999").status_code == 404


def test_secrets_never_reach_the_journal(emu, control, api, account):
    api.post("/v2/sip_phones/phones", json=phone("alice@example.com", password="hunter2-secret"))
    api.get("/v2/sip_phones/phones")
    with emu.client() as plain:
        token = plain.post("/oauth/token", params={"grant_type": "account_credentials",
                                                   "account_id": account["account_id"]},
                           auth=(account["client_id"], account["client_secret"]))
    assert token.status_code == 200
    everything = control.get(f"{CONTROL}/journal", params={"account_id": account["account_id"]}).content
    for secret in ("hunter2-secret", account["access_token"], account["client_secret"], token.json()["access_token"]):
        assert secret.encode() not in everything
    entries = orjson.loads(everything)["requests"]
    token_entry = next(e for e in entries if e["path"] == "/oauth/token")
    assert token_entry["request"]["headers"]["authorization"] == "Basic ****"
    assert token_entry["response"]["body"]["access_token"] == "****"
    assert entries[0]["request"]["body"]["password"] == "****"
    assert entries[0]["request"]["headers"]["authorization"] == "Bearer ****"


def test_the_journal_can_be_queried_by_time_and_cleared(control, api, account):
    api.get("/v2/sip_phones/phones")
    now = control.get(f"{CONTROL}/clock").json()["now"]
    api.get("/v2/users")
    later = journal(control, account_id=account["account_id"], since=now)
    assert [e["path"] for e in later["requests"]] == ["/v2/users"]
    newest = journal(control, account_id=account["account_id"], order="desc", limit=1)
    assert newest["total"] == 2 and newest["requests"][0]["path"] == "/v2/users"
    assert control.delete(f"{CONTROL}/journal").json()["cleared"] >= 2
    assert journal(control, account_id=account["account_id"])["total"] == 0


def test_control_plane_requests_are_not_journaled(control):
    control.delete(f"{CONTROL}/journal")
    control.get(f"{CONTROL}/faults")
    control.get("/healthz")
    assert journal(control)["total"] == 0


@pytest.mark.parametrize("params, field", [({"limit": "0"}, "limit"), ({"status": "abc"}, "status"),
                                           ({"order": "sideways"}, "order"), ({"colour": "red"}, "colour"),
                                           ({"since": "soon"}, "since")])
def test_a_bad_journal_query_is_a_zoom_validation_error(control, params, field):
    r = control.get(f"{CONTROL}/journal", params=params)
    assert r.status_code == 400 and r.json()["code"] == 300
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_journal_and_faults_need_the_operator_token(emu):
    with emu.client() as anonymous:
        for method, path in (("GET", "/journal"), ("POST", "/journal/count"), ("DELETE", "/journal"),
                             ("GET", "/faults"), ("POST", "/faults"), ("DELETE", "/faults")):
            r = anonymous.request(method, CONTROL + path, headers={"authorization": "Bearer wrong-token-xxxxxxxx"})
            assert r.status_code == 401 and r.json()["code"] == 124, (method, path)


def test_journal_and_fault_routes_do_not_exist_outside_emulator_mode(tmp_path):
    srv = start_sqlite_server(tmp_path, extra_env={"SIPPHONES_ADMIN_TOKEN": OPERATOR})
    try:
        with srv.client(headers={"authorization": f"Bearer {OPERATOR}"}) as c:
            for method, path in (("GET", "/journal"), ("POST", "/journal/count"), ("DELETE", "/journal"),
                                 ("GET", "/journal/1"), ("GET", "/faults"), ("POST", "/faults"),
                                 ("DELETE", "/faults"), ("DELETE", "/faults/fault_x")):
                r = c.request(method, CONTROL + path, json={"status": 500} if method == "POST" else None)
                assert (r.status_code, r.json()) == (404, {"code": 404, "message": "Not Found."}), (method, path)
            # and no rule is applied nor anything journaled: the Zoom paths answer as ever
            assert c.get("/v2/sip_phones/phones").json()["code"] == 124
    finally:
        srv.stop()


# --- fault rules: managing them ---------------------------------------------------------------------

def test_rules_are_listed_and_removed_one_by_one(control):
    a = add_fault(control, path="/v2/users*", status=500)
    b = add_fault(control, method="DELETE", path="/v2/sip_phones/phones/*", action="drop", times=2)
    listed = control.get(f"{CONTROL}/faults").json()
    assert [r["id"] for r in listed["faults"]] == [a["id"], b["id"]] and listed["total"] == 2
    assert b["times"] == 2 and b["action"] == "drop" and b["method"] == "DELETE" and b["applied"] == 0
    assert control.get(f"{CONTROL}/faults/{a['id']}").json() == a
    assert control.delete(f"{CONTROL}/faults/{a['id']}").status_code == 204
    assert control.delete(f"{CONTROL}/faults/{a['id']}").json() == {"code": 404, "message": f"No fault rule {a['id']}."}
    assert [r["id"] for r in control.get(f"{CONTROL}/faults").json()["faults"]] == [b["id"]]
    assert control.delete(f"{CONTROL}/faults").json() == {"removed": 1}


def test_a_bad_rule_is_a_zoom_validation_error_naming_each_field(control):
    r = control.post(f"{CONTROL}/faults", json={"status": 200, "probability": 2, "delay_ms": -5})
    assert r.status_code == 400 and r.json()["code"] == 300 and r.json()["message"] == "Validation Failed."
    assert sorted(e["field"] for e in r.json()["errors"]) == ["delay_ms", "probability", "status"]
    assert control.post(f"{CONTROL}/faults", content=b"[not json").status_code == 400
    assert control.get(f"{CONTROL}/faults").json()["total"] == 0


# --- fault rules: what a plain HTTP client sees -------------------------------------------------------

def test_a_status_rule_gives_exactly_that_status_and_zoom_body(control, api):
    add_fault(control, method="GET", path="/v2/sip_phones/phones", status=503, retry_after=7, times=1)
    r = api.get("/v2/sip_phones/phones")
    assert r.status_code == 503 and r.json() == {"code": 503, "message": "Service Unavailable."}
    assert r.headers["retry-after"] == "7" and r.headers["content-type"] == "application/json"
    assert api.get("/v2/sip_phones/phones").status_code == 200          # times: 1 - the rule is gone
    assert control.get(f"{CONTROL}/faults").json()["total"] == 0


def test_a_429_rule_is_zoom_s_rate_limit_answer(control, api):
    add_fault(control, path="/v2/*", status=429, retry_after=2, times=1)
    r = api.post("/v2/sip_phones/phones", json=phone("alice@example.com"))
    assert r.status_code == 429 and r.headers["retry-after"] == "2" and r.headers["x-ratelimit-type"] == "QPS"
    assert r.json() == {"code": 429, "message": "You have reached the maximum per-second rate limit for this API. "
                                                "Try again later."}


def test_a_rule_for_one_account_leaves_the_others_alone(emu, control, api, account):
    other = control.post(f"{CONTROL}/accounts", json={}).json()
    add_fault(control, account_id=other["account_id"], status=500)
    assert api.get("/v2/sip_phones/phones").status_code == 200
    with emu.client(headers={"authorization": f"Bearer {other['access_token']}"}) as theirs:
        r = theirs.get("/v2/sip_phones/phones")
    assert r.status_code == 500 and r.json() == {"code": 500, "message": "Internal server error."}


def test_a_delay_rule_delays_by_the_configured_time(control, api):
    add_fault(control, action="delay", delay_ms=400, times=1)
    started = time.monotonic()
    r = api.get("/v2/sip_phones/phones")
    assert r.status_code == 200 and time.monotonic() - started >= 0.4
    assert control.get(f"{CONTROL}/faults").json()["total"] == 0       # times: 1 - the next request is not delayed


def test_a_random_delay_stays_within_its_bounds(control, api):
    add_fault(control, status=500, delay_ms=150, delay_max_ms=350, times=3)
    for _ in range(3):
        started = time.monotonic()
        assert api.get("/v2/users").status_code == 500
        assert time.monotonic() - started >= 0.15


def test_a_drop_rule_closes_the_connection_without_an_answer(control, api, account):
    rule = add_fault(control, method="DELETE", path="/v2/sip_phones/phones/*", action="drop", times=1)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        api.delete("/v2/sip_phones/phones/abc")
    assert api.delete("/v2/sip_phones/phones/abc").status_code == 404
    entries = journal(control, method="DELETE", account_id=account["account_id"])["requests"]
    assert entries[0]["dropped"] is True and entries[0]["fault_id"] == rule["id"] and entries[0]["response"] is None
    assert entries[1]["response"]["status"] == 404


def test_a_malformed_rule_sends_a_body_that_is_not_json(control, api):
    add_fault(control, path="/v2/sip_phones/phones", action="malformed", times=1)
    r = api.get("/v2/sip_phones/phones")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        r.json()


def test_a_rule_on_the_token_endpoint(emu, control, account):
    add_fault(control, path="/oauth/token", account_id=account["account_id"], status=503, times=1)
    with emu.client() as plain:
        params = {"grant_type": "account_credentials", "account_id": account["account_id"]}
        auth = (account["client_id"], account["client_secret"])
        assert plain.post("/oauth/token", params=params, auth=auth).status_code == 503
        assert plain.post("/oauth/token", params=params, auth=auth).status_code == 200


# --- the Python client through fault rules ---------------------------------------------------------

def test_the_python_client_retries_through_two_429s(emu, control, account):
    add_fault(control, method="POST", path="/v2/sip_phones/phones", status=429, retry_after=1, times=2)
    events = []
    with SipPhonesClient(account["account_id"], account["client_id"], account["client_secret"],
                         base_url=f"{emu.base_url}/v2", on_retry=events.append) as client:
        created = client.create_phone(phone("alice@example.com"))
    assert created["user_email"] == "alice@example.com"
    assert [(e.reason, e.attempt) for e in events] == [("429", 1), ("429", 2)]
    assert all(1.0 <= e.wait <= 1.1 for e in events)          # the rule's Retry-After
    posts = journal(control, method="POST", path="/v2/sip_phones/phones", account_id=account["account_id"])
    assert [e["response"]["status"] for e in posts["requests"]] == [429, 429, 201]


def test_the_python_client_retries_a_get_through_a_dropped_connection_and_a_503(emu, control, account):
    add_fault(control, method="GET", path="/v2/sip_phones/phones", action="drop", times=1)
    add_fault(control, method="GET", path="/v2/sip_phones/phones", status=503, retry_after=0, times=1)
    events = []
    with SipPhonesClient(account["account_id"], account["client_id"], account["client_secret"],
                         base_url=f"{emu.base_url}/v2", on_retry=events.append) as client:
        page = client.list_phones()
    assert page["phones"] == [] and [e.reason for e in events] == ["transport", "503"]


def test_the_python_client_does_not_repeat_a_post_whose_connection_dropped(emu, control, account):
    add_fault(control, method="POST", path="/v2/sip_phones/phones", action="drop", times=1)
    with SipPhonesClient(account["account_id"], account["client_id"], account["client_secret"],
                         base_url=f"{emu.base_url}/v2") as client:
        with pytest.raises(TransportError) as e:
            client.create_phone(phone("alice@example.com"))
    assert e.value.maybe_delivered is True


def test_the_python_client_reports_a_malformed_answer(emu, control, account):
    add_fault(control, method="GET", action="malformed", status=200, times=1)
    with SipPhonesClient(account["account_id"], account["client_id"], account["client_secret"],
                         base_url=f"{emu.base_url}/v2", max_retries=0) as client:
        with pytest.raises(ZoomAPIError, match="the answer is not JSON") as e:
            client.list_phones()
    assert e.value.status_code == 200
