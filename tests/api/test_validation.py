"""Validation that helps: server addresses, user e-mails and platform suffixes, duplicates, bodies."""

from __future__ import annotations

import pytest

from tests.api.zoom import (
    CURRENT_SUFFIXES, LEGACY_SUFFIXES, assert_error, assert_validation, current_body, current_phones, legacy_body,
    legacy_phones,
)

GOOD_ADDRESSES = [
    "192.0.2.1", "192.0.2.1:5060", "192.0.2.1:1", "192.0.2.1:65535", "[2001:db8::1]", "[2001:db8::1]:5061",
    "[::1]", "sip.example.com", "sip.example.com:5080", "pbx", "PBX-1.Example.COM", "xn--bcher-kva.example",
    "sip.example.com.",
]
BAD_ADDRESSES = [
    "2001:db8::1",            # IPv6 without brackets
    "[2001:db8::1",           # unclosed bracket
    "[not-ipv6]:5060",
    "192.0.2.1:0", "192.0.2.1:65536", "192.0.2.1:abc", "192.0.2.1:", "192.0.2.1:-1", "sip.example.com:99999",
    "192.0.2.1 ", " 192.0.2.1", "sip example.com", "192.0.2.1\t",
    "http://x", "sip:192.0.2.1", "user@host", "x/y",
    "999.1.1.1", "1.2.3", "192.0.2.256",
    "-bad.example.com", "bad-.example.com", "a..b", "under_score.example.com",
    "a" * 64 + ".example.com",
    "é.example.com",
]


def test_server_addresses_accepted(api, subtests):
    for address in GOOD_ADDRESSES:
        with subtests.test(address=address):
            body = legacy_body(register_server=address, proxy_server2=address, register_server2=address)
            r = api.post("/v2/sip_phones", json=body)
            assert r.status_code == 201, r.text
            assert r.json()["register_server"] == address and r.json()["proxy_server2"] == address
            assert api.delete(f"/v2/sip_phones/{r.json()['id']}").status_code == 204


def test_server_addresses_rejected_naming_the_field(api, subtests):
    for address in BAD_ADDRESSES:
        with subtests.test(address=address):
            named = assert_validation(api.post("/v2/sip_phones", json=legacy_body(proxy_server=address)),
                                      "proxy_server")
            assert "address" in named["proxy_server"].lower()
            body = current_body()
            body["server_3"] = {"register_server": address}
            assert_validation(api.post("/v2/sip_phones/phones", json=body), "server_3.register_server")


def test_empty_first_register_server_is_rejected(api):
    assert_validation(api.post("/v2/sip_phones", json=legacy_body(register_server="")), "register_server")
    body = current_body()
    body["server"] = {"register_server": "", "proxy_server": "192.0.2.1"}
    assert_validation(api.post("/v2/sip_phones/phones", json=body), "server.register_server")


def test_empty_optional_servers_are_accepted_as_unused(api):
    r = api.post("/v2/sip_phones", json=legacy_body(register_server2="", proxy_server2="", proxy_server3=""))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("domain", ["sip.example.com", "CDC.WEB", "192.0.2.1", "pbx"])
def test_domain_accepts_names_and_addresses(api, domain):
    assert api.post("/v2/sip_phones", json=legacy_body(domain=domain)).status_code == 201


@pytest.mark.parametrize("domain", ["", "sip.example.com:5060", "http://x", "a b", "999.1.1.1", 5])
def test_domain_rejects_the_rest(api, domain):
    assert_validation(api.post("/v2/sip_phones", json=legacy_body(domain=domain)), "domain")


def test_user_email_must_belong_to_the_account(api):
    for path, body in (("/v2/sip_phones", legacy_body("nobody@example.com")),
                       ("/v2/sip_phones/phones", current_body("nobody@example.com"))):
        err = assert_error(api.post(path, json=body), 404, 1001)
        assert "nobody@example.com" in err["message"]
    err = assert_error(api.post("/v2/sip_phones", json=legacy_body("nobody@example.com.mac")), 404, 1001)
    assert "nobody@example.com.mac" in err["message"]
    assert legacy_phones(api) == {}


@pytest.mark.parametrize("email", ["alice", "alice@", "@example.com", "alice@example", "alice example@x.com",
                                   "alice@exa mple.com", 42, ["alice@example.com"]])
def test_malformed_user_email_is_a_validation_error(api, email):
    assert_validation(api.post("/v2/sip_phones", json=legacy_body(email)), "user_email")


def test_email_lookup_ignores_case(api):
    r = api.post("/v2/sip_phones", json=legacy_body("ALICE@Example.COM"))
    assert r.status_code == 201, r.text
    assert r.json()["user_email"] == "ALICE@Example.COM"  # kept as given
    assert_error(api.post("/v2/sip_phones", json=legacy_body("alice@example.com")), 400, 300,
                 "SIP Phone with the same email already exists.")


def test_each_legacy_suffix_is_its_own_phone(api):
    ids = set()
    for address in ["alice@example.com", *(f"alice@example.com{s}" for s in LEGACY_SUFFIXES)]:
        r = api.post("/v2/sip_phones", json=legacy_body(address))
        assert r.status_code == 201, (address, r.text)
        assert r.json()["user_email"] == address
        ids.add(r.json()["id"])
    assert len(ids) == 1 + len(LEGACY_SUFFIXES)
    assert {p["user_email"] for p in legacy_phones(api).values()} == {
        "alice@example.com", *(f"alice@example.com{s}" for s in LEGACY_SUFFIXES)}


def test_current_set_accepts_only_its_three_suffixes(api):
    for s in CURRENT_SUFFIXES:
        r = api.post("/v2/sip_phones/phones", json=current_body(f"alice@example.com{s}"))
        assert r.status_code == 201, r.text
    for s in set(LEGACY_SUFFIXES) - set(CURRENT_SUFFIXES):
        named = assert_validation(api.post("/v2/sip_phones/phones", json=current_body(f"alice@example.com{s}")),
                                  "user_email")
        assert s in named["user_email"]
    assert len(current_phones(api)) == len(CURRENT_SUFFIXES)


def test_same_address_twice_legacy_wording(api):
    assert api.post("/v2/sip_phones", json=legacy_body("alice@example.com.mac")).status_code == 201
    assert_error(api.post("/v2/sip_phones", json=legacy_body("alice@example.com.mac")), 400, 300,
                 "SIP Phone with the same email already exists.")
    assert_error(api.post("/v2/sip_phones", json=legacy_body("alice@example.com.MAC")), 400, 300,
                 "SIP Phone with the same email already exists.")


def test_same_address_twice_current_wording(api):
    assert api.post("/v2/sip_phones/phones", json=current_body()).status_code == 201
    assert_error(api.post("/v2/sip_phones/phones", json=current_body()), 400, 300,
                 "SIP phone with the same email already exists.")
    # The same address taken through the other set is a duplicate too: one store.
    assert_error(api.post("/v2/sip_phones", json=legacy_body()), 400, 300,
                 "SIP Phone with the same email already exists.")


def test_every_failing_field_is_listed(api):
    body = {
        "user_email": "not-an-email", "user_name": "", "authorization_name": "a" * 65, "password": 123,
        "domain": "http://x", "register_server": "2001:db8::1", "proxy_server": "192.0.2.1:0",
        "register_server2": "192.0.2.1 ", "transport_protocol": "udp", "transport_protocol3": "X",
        "registration_expire_time": 0, "voice_mail": "9" * 256,
    }
    named = assert_validation(api.post("/v2/sip_phones", json=body), *[k for k in body])
    assert all(len(m) > 5 for m in named.values())


@pytest.mark.parametrize("field", ["user_name", "authorization_name", "password", "voice_mail"])
def test_control_characters_are_refused(api, field):
    assert_validation(api.post("/v2/sip_phones", json=legacy_body(**{field: "a\x00b"})), field)
    assert_validation(api.post("/v2/sip_phones", json=legacy_body(**{field: "a\nb"})), field)


RAW_BODIES = [b"", b"   ", b"{", b"{\"a\":}", b"null", b"[]", b"[{}]", b"\"text\"", b"42", b"true", b"\xff\xfe{}",
              b"{\"a\": NaN}", b"[" * 5000]


@pytest.mark.parametrize("method,path", [
    ("POST", "/v2/sip_phones"), ("POST", "/v2/sip_phones/phones"),
    ("PATCH", "/v2/sip_phones/SomePhone"), ("PATCH", "/v2/sip_phones/phones/SomePhone"),
])
def test_body_that_is_not_a_json_object_is_a_zoom_400(api, subtests, method, path):
    for raw in RAW_BODIES:
        with subtests.test(body=raw[:20]):
            r = api.request(method, path, content=raw, headers={"Content-Type": "application/json"})
            body = assert_error(r, 400, 300)
            assert "JSON" in body["message"]
