"""The current set, ``/v2/sip_phones/phones``: nested servers, partial PATCH, 404 code 2305."""

from __future__ import annotations

import pytest

from tests.api.zoom import (
    CURRENT_SCALARS, assert_error, assert_validation, current_body, current_phones,
)

FULL = {
    "user_email": "alice@example.com.pad", "user_name": "Jill Chill", "authorization_name": "jill",
    "password": "apassword1", "domain": "example.com", "registration_expire_time": 127, "voice_mail": "4000",
    "display_number": "5551110105",
    "server": {"register_server": "192.0.2.1", "proxy_server": "192.0.2.2", "transport_protocol": "UDP"},
    "server_2": {"register_server": "sip2.example.com:5061", "proxy_server": "sip2.example.com:5061",
                 "transport_protocol": "TLS"},
    "server_3": {"register_server": "[2001:db8::1]", "proxy_server": "", "transport_protocol": "AUTO"},
}


def test_create_returns_phone_id_and_nested_servers(api):
    r = api.post("/v2/sip_phones/phones", json=FULL)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"phone_id", *CURRENT_SCALARS, "server", "server_2", "server_3"}
    assert isinstance(body["phone_id"], str) and body["phone_id"]
    assert {k: v for k, v in body.items() if k != "phone_id"} == FULL
    assert current_phones(api) == {body["phone_id"]: body}


def test_create_minimal_fills_defaults_and_omits_unused_servers(api):
    body = current_body(server={"register_server": "192.0.2.1"})
    r = api.post("/v2/sip_phones/phones", json=body)
    assert r.status_code == 201, r.text
    phone = r.json()
    assert phone["registration_expire_time"] == 60
    assert phone["voice_mail"] == "" and phone["display_number"] == ""
    assert phone["server"] == {"register_server": "192.0.2.1", "proxy_server": "", "transport_protocol": "UDP"}
    assert "server_2" not in phone and "server_3" not in phone  # decision: unused sets are left out


@pytest.mark.parametrize("field", ["authorization_name", "domain", "password", "user_email", "user_name"])
def test_required_scalars(api, field):
    body = current_body()
    del body[field]
    assert_validation(api.post("/v2/sip_phones/phones", json=body), field)


def test_missing_server_is_named_as_the_object(api):
    body = current_body()
    del body["server"]
    assert_validation(api.post("/v2/sip_phones/phones", json=body), "server")
    assert_validation(api.post("/v2/sip_phones/phones", json=dict(body, server=None)), "server")
    assert_validation(api.post("/v2/sip_phones/phones", json=dict(body, server={})), "server.register_server")


def test_voice_mail_is_optional_on_the_current_set(api):
    body = current_body()
    assert "voice_mail" not in body
    assert api.post("/v2/sip_phones/phones", json=body).status_code == 201


def test_server_that_is_not_an_object_is_listed_with_every_other_failure(api):
    body = current_body(server="192.0.2.1", server_2=["x"], user_name="", registration_expire_time=0,
                        server_3={"register_server": "999.1.1.1", "transport_protocol": "udp"})
    assert_validation(api.post("/v2/sip_phones/phones", json=body),
                      "server", "server_2", "user_name", "registration_expire_time",
                      "server_3.register_server", "server_3.transport_protocol")


def test_nested_errors_name_the_nested_field(api, subtests):
    cases = [("register_server", "http://x"), ("proxy_server", "2001:db8::1"), ("transport_protocol", "SCTP"),
             ("register_server", 5060), ("proxy_server", "a b")]
    for slot in ("server", "server_2", "server_3"):
        for inner, value in cases:
            with subtests.test(slot=slot, inner=inner, value=value):
                body = current_body(server_2={"register_server": "192.0.2.60"},
                                    server_3={"register_server": "192.0.2.70"})
                body[slot] = dict(body[slot], **{inner: value})
                assert_validation(api.post("/v2/sip_phones/phones", json=body), f"{slot}.{inner}")


def test_display_number_round_trips_and_is_bounded(api):
    r = api.post("/v2/sip_phones/phones", json=current_body(display_number="+1 555 111 0105"))
    assert r.status_code == 201 and r.json()["display_number"] == "+1 555 111 0105"
    assert_validation(api.post("/v2/sip_phones/phones", json=current_body("alice@example.com.pc", display_number=7)),
                      "display_number")
    assert_validation(api.post("/v2/sip_phones/phones",
                               json=current_body("alice@example.com.pc", display_number="5" * 65)), "display_number")


def test_partial_patch_changes_only_what_is_sent(api):
    phone = api.post("/v2/sip_phones/phones", json=FULL).json()
    steps = [
        ({"password": "changed"}, {"password": "changed"}),
        ({"server": {"transport_protocol": "TCP"}},
         {"server": dict(FULL["server"], transport_protocol="TCP")}),
        ({"server_2": {"proxy_server": "192.0.2.99"}},
         {"server_2": dict(FULL["server_2"], proxy_server="192.0.2.99")}),
        ({"display_number": "", "voice_mail": "", "registration_expire_time": 1},
         {"display_number": "", "voice_mail": "", "registration_expire_time": 1}),
        ({}, {}),
    ]
    expected = dict(phone)
    for patch, change in steps:
        r = api.patch(f"/v2/sip_phones/phones/{phone['phone_id']}", json=patch)
        assert r.status_code == 204 and r.content == b"", r.text
        expected.update(change)
        assert current_phones(api)[phone["phone_id"]] == expected, patch


def test_patch_can_add_and_remove_a_server_set(api):
    phone = api.post("/v2/sip_phones/phones", json=current_body()).json()
    assert "server_2" not in phone
    pid = phone["phone_id"]
    assert api.patch(f"/v2/sip_phones/phones/{pid}", json={"server_2": {"register_server": "192.0.2.80"}}).status_code == 204
    assert current_phones(api)[pid]["server_2"] == {"register_server": "192.0.2.80", "proxy_server": "",
                                                    "transport_protocol": "UDP"}
    r = api.patch(f"/v2/sip_phones/phones/{pid}", json={"server_2": {"register_server": "", "proxy_server": ""}})
    assert r.status_code == 204
    assert "server_2" not in current_phones(api)[pid]
    assert current_phones(api)[pid] == phone


def test_patch_cannot_empty_the_first_server(api):
    phone = api.post("/v2/sip_phones/phones", json=current_body()).json()
    r = api.patch(f"/v2/sip_phones/phones/{phone['phone_id']}", json={"server": {"register_server": ""}})
    assert_validation(r, "server.register_server")
    assert current_phones(api)[phone["phone_id"]] == phone


def test_patch_validates_like_create(api):
    phone = api.post("/v2/sip_phones/phones", json=current_body()).json()
    r = api.patch(f"/v2/sip_phones/phones/{phone['phone_id']}",
                  json={"domain": "", "password": 5, "server": "x", "registration_expire_time": 128})
    assert_validation(r, "domain", "password", "server", "registration_expire_time")
    assert current_phones(api)[phone["phone_id"]] == phone


def test_patch_ignores_user_email(api, admin, creds):
    admin.add_user(creds.account_id, "carol@example.com")
    phone = api.post("/v2/sip_phones/phones", json=current_body()).json()
    r = api.patch(f"/v2/sip_phones/phones/{phone['phone_id']}", json={"user_email": "carol@example.com"})
    assert r.status_code == 204
    assert current_phones(api)[phone["phone_id"]]["user_email"] == "alice@example.com"


def test_delete_answers_204(api):
    phone = api.post("/v2/sip_phones/phones", json=current_body()).json()
    r = api.delete(f"/v2/sip_phones/phones/{phone['phone_id']}")
    assert r.status_code == 204 and r.content == b""
    assert current_phones(api) == {}


@pytest.mark.parametrize("phone_id", ["NoSuchPhone", "0Q8TbBvfou30T6jU7rsH3D", "x" * 300, "ünï"])
def test_unknown_phone_is_404_code_2305(api, phone_id):
    message = f"SIP phone does not exist: {phone_id}."
    assert_error(api.patch(f"/v2/sip_phones/phones/{phone_id}", json={"password": "x"}), 404, 2305, message)
    assert_error(api.delete(f"/v2/sip_phones/phones/{phone_id}"), 404, 2305, message)


def test_list_envelope_and_page_size_default(api):
    r = api.get("/v2/sip_phones/phones")
    assert r.status_code == 200
    assert r.json() == {"next_page_token": "", "page_size": 30, "phones": []}


def test_page_size_above_300_is_served_as_300(api, subtests):
    """Decision: a larger page_size is clamped to the maximum (not refused)."""
    for asked, served in ((1, 1), (300, 300), (301, 300), (10**6, 300), (10**40, 300)):
        for path in ("/v2/sip_phones/phones", "/v2/sip_phones"):
            with subtests.test(path=path, asked=asked):
                r = api.get(path, params={"page_size": asked})
                assert r.status_code == 200, r.text
                assert r.json()["page_size"] == served


def test_bad_page_size_is_a_validation_error(api, subtests):
    for value in ("0", "-1", "abc", "1.5", "1e3", "0x10", "٣"):
        for path in ("/v2/sip_phones/phones", "/v2/sip_phones"):
            with subtests.test(path=path, value=value):
                assert_validation(api.get(path, params={"page_size": value}), "page_size")
