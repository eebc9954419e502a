"""One store behind both sets: a phone made through one is listed and edited through the other."""

from __future__ import annotations

from tests.api.zoom import (
    assert_error, current_body, current_phones, legacy_body, legacy_phones, legacy_update_body,
)


def as_current(legacy: dict, display_number: str = "") -> dict:
    """The current-set view of a legacy record (what the service must answer)."""
    out = {"phone_id": legacy["id"], "display_number": display_number}
    for k in ("user_email", "user_name", "authorization_name", "password", "domain", "registration_expire_time",
              "voice_mail"):
        out[k] = legacy[k]
    for n, key in ((1, "server"), (2, "server_2"), (3, "server_3")):
        suffix = "" if n == 1 else str(n)
        if legacy[f"register_server{suffix}"]:
            out[key] = {"register_server": legacy[f"register_server{suffix}"],
                        "proxy_server": legacy[f"proxy_server{suffix}"],
                        "transport_protocol": legacy[f"transport_protocol{suffix}"]}
    return out


def test_legacy_phone_is_listed_and_edited_through_the_current_set(api):
    phone = api.post("/v2/sip_phones", json=legacy_body(register_server2="192.0.2.30", proxy_server2="192.0.2.31",
                                                        transport_protocol2="TLS", registration_expire_time=45)).json()
    assert current_phones(api) == {phone["id"]: as_current(phone)}

    r = api.patch(f"/v2/sip_phones/phones/{phone['id']}",
                  json={"display_number": "5550100", "server_2": {"transport_protocol": "TCP"}})
    assert r.status_code == 204
    after = legacy_phones(api)[phone["id"]]
    assert after == dict(phone, transport_protocol2="TCP")
    assert current_phones(api)[phone["id"]] == as_current(after, display_number="5550100")

    assert api.delete(f"/v2/sip_phones/phones/{phone['id']}").status_code == 204
    assert legacy_phones(api) == {}


def test_current_phone_is_listed_and_edited_through_the_legacy_set(api):
    phone = api.post("/v2/sip_phones/phones", json=current_body(display_number="123")).json()
    legacy = legacy_phones(api)
    assert list(legacy) == [phone["phone_id"]]
    assert as_current(legacy[phone["phone_id"]], display_number="123") == phone

    body = legacy_update_body()
    assert api.patch(f"/v2/sip_phones/{phone['phone_id']}", json=body).status_code == 204
    after = current_phones(api)[phone["phone_id"]]
    assert after["password"] == body["password"] and after["domain"] == body["domain"]
    assert after["display_number"] == "123"  # a field the legacy set does not know is kept
    assert after["server_2"]["register_server"] == body["register_server2"]

    assert api.delete(f"/v2/sip_phones/{phone['phone_id']}").status_code == 204
    assert current_phones(api) == {}
    assert_error(api.delete(f"/v2/sip_phones/phones/{phone['phone_id']}"), 404, 2305)


def test_both_sets_list_the_same_phones_in_the_same_order(api):
    made = []
    for i, email in enumerate(["alice@example.com", "alice@example.com.pc", "alice@example.com.mac",
                               "alice@example.com.pad"]):
        if i % 2:
            made.append(api.post("/v2/sip_phones/phones", json=current_body(email)).json()["phone_id"])
        else:
            made.append(api.post("/v2/sip_phones", json=legacy_body(email)).json()["id"])
    # Both sets walk one keyset order (by id, which starts with the creation time in ms).
    assert set(legacy_phones(api)) == set(made)
    assert list(legacy_phones(api)) == list(current_phones(api)) == list(legacy_phones(api, page_size=1))
