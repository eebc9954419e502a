"""The legacy set, ``/v2/sip_phones``, exactly as the seed document describes it."""

from __future__ import annotations

import pytest

from tests.api.zoom import (
    LEGACY_CREATE_REQUIRED, LEGACY_FIELDS, LEGACY_UPDATE_REQUIRED, assert_error, assert_validation,
    legacy_body, legacy_phones, legacy_update_body,
)

FULL = {
    "user_email": "alice@example.com", "user_name": "Jill Chill", "authorization_name": "jill",
    "password": "apassword1", "domain": "CDC.WEB",
    "register_server": "192.0.2.1", "register_server2": "192.0.2.3:5070", "register_server3": "[2001:db8::5]:5080",
    "proxy_server": "192.0.2.2", "proxy_server2": "proxy2.example.com", "proxy_server3": "[2001:db8::6]",
    "transport_protocol": "TLS", "transport_protocol2": "TCP", "transport_protocol3": "AUTO",
    "registration_expire_time": 90, "voice_mail": "4000",
}


def test_create_returns_id_and_every_field_as_stored(api):
    r = api.post("/v2/sip_phones", json=FULL)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", *LEGACY_FIELDS}
    assert isinstance(body["id"], str) and body["id"]
    assert {k: body[k] for k in LEGACY_FIELDS} == FULL
    listed = legacy_phones(api)
    assert listed == {body["id"]: body}


def test_create_with_required_fields_only_fills_defaults(api):
    r = api.post("/v2/sip_phones", json=legacy_body())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["registration_expire_time"] == 60
    assert body["transport_protocol"] == "UDP"
    assert body["register_server2"] == body["proxy_server2"] == body["register_server3"] == body["proxy_server3"] == ""
    # Decision: an unused slot shows UDP (Zoom's enum has no empty value).
    assert body["transport_protocol2"] == body["transport_protocol3"] == "UDP"
    assert legacy_phones(api)[body["id"]] == body


@pytest.mark.parametrize("field", LEGACY_CREATE_REQUIRED)
def test_each_required_field_is_named_when_missing_or_null(api, field):
    body = legacy_body()
    del body[field]
    assert_validation(api.post("/v2/sip_phones", json=body), field)
    body[field] = None
    assert_validation(api.post("/v2/sip_phones", json=body), field)
    assert legacy_phones(api) == {}


def test_every_missing_required_field_is_listed_at_once(api):
    named = assert_validation(api.post("/v2/sip_phones", json={}), *LEGACY_CREATE_REQUIRED)
    assert all("required" in m.lower() for m in named.values()), named


def test_registration_expire_time_accepts_1_to_127(api, subtests):
    for value in (1, 60, 127):
        with subtests.test(value=value):
            r = api.post("/v2/sip_phones", json=legacy_body(registration_expire_time=value))
            assert r.status_code == 201, r.text
            assert r.json()["registration_expire_time"] == value
            assert legacy_phones(api)[r.json()["id"]]["registration_expire_time"] == value
            assert api.delete(f"/v2/sip_phones/{r.json()['id']}").status_code == 204


def test_registration_expire_time_rejects_everything_else(api, subtests):
    for value in (0, 128, -1, 10**12, "60", 1.5, 60.0, True, False, [60], {"v": 60}, ""):
        with subtests.test(value=value):
            assert_validation(api.post("/v2/sip_phones", json=legacy_body(registration_expire_time=value)),
                              "registration_expire_time")


def test_transport_protocols_accept_the_enum(api, subtests):
    for field in ("transport_protocol", "transport_protocol2", "transport_protocol3"):
        for value in ("UDP", "TCP", "TLS", "AUTO"):
            with subtests.test(field=field, value=value):
                body = legacy_body(register_server2="192.0.2.30", register_server3="192.0.2.40", **{field: value})
                r = api.post("/v2/sip_phones", json=body)
                assert r.status_code == 201, r.text
                assert r.json()[field] == value
                assert api.delete(f"/v2/sip_phones/{r.json()['id']}").status_code == 204


def test_transport_protocols_reject_anything_outside_the_enum(api, subtests):
    for field in ("transport_protocol", "transport_protocol2", "transport_protocol3"):
        for value in ("udp", "Tls", "SCTP", "WS", "UDP ", 1, True, ["UDP"]):
            with subtests.test(field=field, value=value):
                assert_validation(api.post("/v2/sip_phones", json=legacy_body(**{field: value})), field)


@pytest.mark.parametrize("field,limit", [
    ("domain", 64), ("authorization_name", 64), ("user_name", 64), ("user_email", 64), ("voice_mail", 255),
])
def test_max_lengths(api, admin, creds, field, limit):
    def value(length: int) -> str:
        if field == "domain":  # a valid DNS name of exactly that length
            return ("a" * 40 + "." + "b" * 63)[:length - 4] + ".com"
        if field == "user_email":
            email = "u" * (length - len("@example.com")) + "@example.com"
            return email
        return "x" * length

    at_limit, over = value(limit), value(limit + 1)
    assert len(at_limit) == limit and len(over) == limit + 1
    if field == "user_email":
        admin.add_user(creds.account_id, at_limit)
    r = api.post("/v2/sip_phones", json=legacy_body(**{field: at_limit}))
    assert r.status_code == 201, r.text
    assert r.json()[field] == at_limit
    named = assert_validation(api.post("/v2/sip_phones", json=legacy_body(**{field: over})), field)
    assert str(limit) in named[field]


def test_list_envelope(api):
    created = [api.post("/v2/sip_phones", json=legacy_body(email)).json()
               for email in ("alice@example.com", "alice@example.com.mac")]
    r = api.get("/v2/sip_phones")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"page_count", "page_number", "page_size", "total_records", "next_page_token", "phones"}
    assert (body["page_count"], body["page_number"], body["page_size"], body["total_records"]) == (1, 1, 30, 2)
    assert body["next_page_token"] == ""
    assert sorted(body["phones"], key=lambda p: p["id"]) == sorted(created, key=lambda p: p["id"])


def test_empty_list(api):
    body = api.get("/v2/sip_phones").json()
    assert body == {"page_count": 0, "page_number": 1, "page_size": 30, "total_records": 0,
                    "next_page_token": "", "phones": []}


@pytest.mark.parametrize("field", LEGACY_UPDATE_REQUIRED)
def test_patch_requires_what_the_extract_marks_required(api, field):
    phone = api.post("/v2/sip_phones", json=legacy_body()).json()
    body = legacy_update_body()
    del body[field]
    assert_validation(api.patch(f"/v2/sip_phones/{phone['id']}", json=body), field)
    assert legacy_phones(api)[phone["id"]] == phone  # nothing changed


def test_patch_replaces_the_record_and_answers_204(api):
    phone = api.post("/v2/sip_phones", json=legacy_body(registration_expire_time=30, transport_protocol="TCP")).json()
    body = legacy_update_body(transport_protocol2="TLS")
    r = api.patch(f"/v2/sip_phones/{phone['id']}", json=body)
    assert r.status_code == 204 and r.content == b""
    after = legacy_phones(api)[phone["id"]]
    expected = dict(phone, **body)
    # Optional fields that were not sent keep their values (decision); the owner never changes.
    expected.update(registration_expire_time=30, transport_protocol="TCP", transport_protocol3="UDP")
    assert after == expected


def test_patch_with_empty_second_server_clears_it(api):
    phone = api.post("/v2/sip_phones", json=legacy_body(register_server2="192.0.2.50", proxy_server2="192.0.2.51",
                                                        transport_protocol2="TLS")).json()
    r = api.patch(f"/v2/sip_phones/{phone['id']}", json=legacy_update_body(register_server2="", proxy_server2=""))
    assert r.status_code == 204, r.text
    after = legacy_phones(api)[phone["id"]]
    assert (after["register_server2"], after["proxy_server2"], after["transport_protocol2"]) == ("", "", "UDP")


def test_patch_proxy_without_register_server_in_the_same_slot_is_refused(api):
    phone = api.post("/v2/sip_phones", json=legacy_body()).json()
    r = api.patch(f"/v2/sip_phones/{phone['id']}", json=legacy_update_body(register_server3="", proxy_server3="192.0.2.9"))
    named = assert_validation(r, "register_server3")
    assert "proxy_server3" in named["register_server3"]


def test_patch_ignores_user_email_the_owner_never_changes(api, admin, creds):
    """Decision: a client that sends the listed record back (id, user_email included) is not refused."""
    admin.add_user(creds.account_id, "carol@example.com")
    phone = api.post("/v2/sip_phones", json=legacy_body()).json()
    body = dict(phone, **legacy_update_body(), user_email="carol@example.com")
    assert api.patch(f"/v2/sip_phones/{phone['id']}", json=body).status_code == 204
    assert legacy_phones(api)[phone["id"]]["user_email"] == "alice@example.com"


def test_delete_answers_204_and_the_phone_is_gone(api):
    keep = api.post("/v2/sip_phones", json=legacy_body()).json()
    gone = api.post("/v2/sip_phones", json=legacy_body("alice@example.com.pc")).json()
    r = api.delete(f"/v2/sip_phones/{gone['id']}")
    assert r.status_code == 204 and r.content == b""
    assert legacy_phones(api) == {keep["id"]: keep}
    assert api.get("/v2/sip_phones").json()["total_records"] == 1
    # The address is free again.
    assert api.post("/v2/sip_phones", json=legacy_body("alice@example.com.pc")).status_code == 201


def test_unknown_phone_is_400_code_300_naming_it(api):
    body = assert_error(api.patch("/v2/sip_phones/NoSuchPhone", json=legacy_update_body()), 400, 300)
    assert "NoSuchPhone" in body["message"] and "errors" not in body
    body = assert_error(api.delete("/v2/sip_phones/NoSuchPhone"), 400, 300)
    assert "NoSuchPhone" in body["message"]


def test_deleted_phone_is_unknown_afterwards(api):
    phone = api.post("/v2/sip_phones", json=legacy_body()).json()
    assert api.delete(f"/v2/sip_phones/{phone['id']}").status_code == 204
    assert_error(api.delete(f"/v2/sip_phones/{phone['id']}"), 400, 300)
    assert_error(api.patch(f"/v2/sip_phones/{phone['id']}", json=legacy_update_body()), 400, 300)


def test_unknown_fields_are_ignored(api):
    r = api.post("/v2/sip_phones", json=legacy_body(id="mine", display_number="555", colour="blue"))
    assert r.status_code == 201, r.text
    assert r.json()["id"] != "mine" and "colour" not in r.json() and "display_number" not in r.json()


def test_required_voice_mail_may_be_empty(api):
    """Decision: "required" means present; an empty voice_mail (no voicemail number) is accepted."""
    r = api.post("/v2/sip_phones", json=legacy_body(voice_mail=""))
    assert r.status_code == 201, r.text
    assert r.json()["voice_mail"] == ""
