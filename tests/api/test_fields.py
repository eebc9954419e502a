"""The one table of a SIP phone's fields (``phones.fields``) drives everything that names them:
both Zoom shapes and their list-item renderers, request flattening and validation labels, the
required lists, the SQL column lists, PhoneRecord, the OpenAPI document and the CSV columns; and
one default transport is what the store keeps, the API shows and the SIP engine uses."""

from __future__ import annotations

import dataclasses
import random
import time

import orjson
import pytest

from sipphones.api import openapi, shapes
from sipphones.phones import fields, rules
from sipphones.phones.fields import FIELDS, Kind
from sipphones.phones.models import SERVER_FIELDS, ServerSet, SipPhone, Transport
from sipphones.repository import PhoneRecord
from sipphones.registration_config import registration_config
from sipphones.storage import schema
from sipphones.storage.alchemy import repository as alchemy
from sipphones.storage.raw import statements
from tests.api.zoom import (
    CURRENT_SCALARS, LEGACY_CREATE_REQUIRED, LEGACY_FIELDS, LEGACY_UPDATE_REQUIRED, current_phones, legacy_phones,
)

SERVER_KEYS = ("server", "server_2", "server_3")

# --- the table, read the slow and obvious way (what every generated renderer must equal) ---------


def _value(phone: SipPhone, f: fields.PhoneField):
    return getattr(phone, f.name) if f.slot is None else getattr(phone.servers[f.slot - 1], f.base)


def _shown(phone: SipPhone, f: fields.PhoneField):
    value = _value(phone, f)
    return (value or fields.DEFAULT_TRANSPORT.value) if f.kind is Kind.TRANSPORT else value


def _legacy_by_table(phone: SipPhone) -> dict:
    return {f.name: _shown(phone, f) for f in fields.LEGACY_SHAPE}


def _current_by_table(phone: SipPhone) -> dict:
    out = {f.current_path[0]: _shown(phone, f) for f in FIELDS if f.current and f.slot is None}
    for f in FIELDS:
        if f.slot is not None and phone.servers[f.slot - 1].register_server:
            out.setdefault(f.current_path[0], {})[f.current_path[1]] = _shown(phone, f)
    return out


def _record_by_table(phone: SipPhone) -> PhoneRecord:
    """What the store lists for ``phone``: flat, unused and missing values as ""."""
    return PhoneRecord(*(_value(phone, f) or ("" if f.kind is not Kind.MINUTES else 0) for f in FIELDS))


def _random_phone(rnd: random.Random) -> SipPhone:
    def text(n: int) -> str:
        return "".join(rnd.choice("abcdefghij0123456789é\"\\") for _ in range(rnd.randint(0, n)))

    def server_set() -> ServerSet:
        if rnd.random() < 0.3:
            return ServerSet()
        return ServerSet(f"r{rnd.randint(1, 99)}.example", rnd.choice(["", f"p{rnd.randint(1, 9)}.example"]),
                         rnd.choice([None, *Transport]))

    return SipPhone(id=text(22) or "x", account_id="acc", user_email=f"{text(8)}@example.com", user_name=text(10),
                    authorization_name=text(10), password=text(20), domain="sip.example.com",
                    servers=(server_set(), server_set(), server_set()),
                    registration_expire_time=rnd.randint(1, 127), voice_mail=text(6), display_number=text(6))


def test_both_shapes_and_their_list_items_are_the_table_for_random_phones():
    rnd = random.Random(20261208)
    for _ in range(300):
        phone = _random_phone(rnd)
        record = _record_by_table(phone)
        legacy, current = _legacy_by_table(phone), _current_by_table(phone)
        # Equal, and byte for byte the same JSON (key order included).
        for made, expected in ((shapes.legacy_phone(phone), legacy), (shapes.legacy_record(record), legacy),
                               (shapes.current_phone(phone), current), (shapes.current_record(record), current)):
            assert orjson.dumps(made) == orjson.dumps(expected)


def test_the_shapes_key_orders_are_zooms():
    assert fields.LEGACY_KEYS == ("id", *LEGACY_FIELDS)
    assert fields.LEGACY_BODY_KEYS == LEGACY_FIELDS == shapes.LEGACY_FIELDS
    assert tuple(f.current_path[0] for f in fields.CURRENT_SHAPE_SCALARS) == ("phone_id", *CURRENT_SCALARS)
    assert tuple(key for key, _ in fields.CURRENT_SERVER_SETS) == SERVER_KEYS
    for _, set_fields in fields.CURRENT_SERVER_SETS:
        assert tuple(f.base for f in set_fields) == SERVER_FIELDS
    assert "display_number" not in fields.LEGACY_KEYS


def test_the_required_fields_are_todays():
    assert fields.LEGACY_CREATE_REQUIRED == LEGACY_CREATE_REQUIRED
    assert fields.LEGACY_UPDATE_REQUIRED == LEGACY_UPDATE_REQUIRED
    assert fields.CURRENT_CREATE_REQUIRED == (
        "authorization_name", "domain", "password", "register_server", "user_email", "user_name")
    assert fields.CURRENT_UPDATE_REQUIRED == ()
    assert fields.NOT_UPDATABLE == ("user_email",)


def test_request_bodies_are_flattened_and_labelled_by_the_table():
    body = {f.current_path[0]: f"v-{f.name}" for f in fields.CURRENT_SHAPE_SCALARS if f.in_body}
    for key, set_fields in fields.CURRENT_SERVER_SETS:
        body[key] = {f.base: f"v-{f.name}" for f in set_fields}
    flat, errors = shapes.current_fields({**body, "phone_id": "ignored", "unknown": 1})
    assert errors == []
    assert flat == {f.name: f"v-{f.name}" for f in FIELDS if f.in_body and f.current}
    assert shapes.legacy_fields({f.name: 1 for f in FIELDS} | {"unknown": 1}) == {n: 1 for n in LEGACY_FIELDS}
    for f in FIELDS:
        assert shapes.current_label(f.name) == ".".join(f.current_path)
    assert shapes.current_label("register_server2") == "server_2.register_server"


def test_the_phone_record_and_the_sql_column_lists_are_the_tables():
    assert PhoneRecord._fields == fields.RECORD_NAMES == tuple(f.name for f in FIELDS)
    assert statements.LIST_COLUMN_NAMES == fields.COLUMNS
    assert [c.name for c in alchemy._LIST_COLUMNS[:1]] == ["id"]
    stored = [c.name for c in schema.sip_phones.c]
    assert set(statements.PHONE_COLUMN_NAMES) == set(stored) - {"user_id", "email_key"}
    assert statements.PHONE_COLUMN_NAMES == tuple(n for n in stored if n not in ("user_id", "email_key"))
    assert statements._UPDATABLE == tuple(f.column for f in FIELDS if f.updatable) + ("updated_at",)
    assert statements.SQL_PAGE.startswith(
        "SELECT id, user_email, user_name, authorization_name, password_enc, domain, ")
    for f in FIELDS:  # every field has its column; a text column is wide enough for its limit
        column = schema.sip_phones.c[f.column]
        if f.max_length is not None and not f.secret:  # the password is stored encrypted (bytes)
            assert column.type.length >= f.max_length, f.name


def test_the_openapi_phone_schemas_are_the_tables():
    doc = openapi.build_document()
    paths = {path[len("/v2"):]: ops for path, ops in doc["paths"].items() if path.startswith("/v2/sip_phones")}
    schemas = openapi.phone_schemas(paths)
    legacy_body = set(fields.LEGACY_BODY_KEYS)
    current_body = set(fields.CURRENT_BODY_SCALARS) | set(SERVER_KEYS)
    current_all = {f.current_path[0] for f in fields.CURRENT_SHAPE_SCALARS} | set(SERVER_KEYS)
    not_updatable = set(fields.NOT_UPDATABLE)
    expected = {
        ("legacy", "create"): legacy_body, ("legacy", "update"): legacy_body - not_updatable,
        ("legacy", "created"): set(fields.LEGACY_KEYS), ("legacy", "listed"): set(fields.LEGACY_KEYS),
        ("current", "create"): current_body, ("current", "update"): current_body - not_updatable,
        ("current", "created"): current_all, ("current", "listed"): current_all,
    }
    assert set(schemas) == set(expected)
    for (shape, use), schema_ in schemas.items():
        properties = schema_["properties"]
        assert set(properties) == expected[shape, use], (shape, use)
        for key in SERVER_KEYS:
            if key in properties:
                assert set(properties[key]["properties"]) == set(SERVER_FIELDS)
        for f in FIELDS:
            prop = properties.get(f.name) if shape == "legacy" or f.slot is None else properties.get(
                f.current_path[0], {}).get("properties", {}).get(f.base)
            if prop is None:
                continue
            if "maxLength" in prop:
                assert prop["maxLength"] == f.max_length, (shape, use, f.name)
            if f.kind is Kind.TRANSPORT:
                assert tuple(prop["enum"]) == fields.TRANSPORTS
            if f.kind is Kind.MINUTES and "default" in prop:
                assert prop["default"] == f.default
    assert schemas["legacy", "create"]["required"] == list(fields.LEGACY_CREATE_REQUIRED)
    assert schemas["legacy", "update"]["required"] == list(fields.LEGACY_UPDATE_REQUIRED)
    assert schemas["current", "create"]["required"] == [
        "authorization_name", "domain", "password", "server", "user_email", "user_name"]
    assert schemas["current", "create"]["properties"]["server"]["required"] == ["register_server"]


def test_the_table_agrees_with_the_rules_and_the_phone_model():
    limits = {"user_email": rules.MAX_NAME, "user_name": rules.MAX_NAME, "authorization_name": rules.MAX_NAME,
              "domain": rules.MAX_NAME, "password": rules.MAX_PASSWORD, "voice_mail": rules.MAX_VOICE_MAIL,
              "display_number": rules.MAX_DISPLAY_NUMBER}
    for f in FIELDS:
        if f.kind is Kind.SERVER:
            assert f.max_length == rules.MAX_SERVER
        elif f.name in limits:
            assert f.max_length == limits[f.name], f.name
    defaults = {f.name: f.default for f in dataclasses.fields(SipPhone) if f.default is not dataclasses.MISSING}
    for name, default in fields.NEW_SCALAR_DEFAULTS.items():
        assert defaults.get(name, default) == default, name
    assert fields.BY_NAME["password"].secret and [f.name for f in FIELDS if f.secret] == ["password"]
    assert fields.TRANSPORTS == ("UDP", "TCP", "TLS", "AUTO")


def test_csv_columns_are_the_issues_order():
    assert fields.csv_columns() == (
        "user_email", "user_name", "authorization_name", "password", "domain", "register_server", "proxy_server",
        "transport_protocol", "register_server2", "proxy_server2", "transport_protocol2", "register_server3",
        "proxy_server3", "transport_protocol3", "registration_expire_time", "voice_mail", "display_number")
    row = dict.fromkeys(fields.csv_columns(), "") | {"user_email": "a@example.com", "registration_expire_time": "30",
                                                     "register_server": "pbx.example.com", "comment": "x"}
    assert fields.fields_of_csv_row(row) == {"user_email": "a@example.com", "register_server": "pbx.example.com",
                                             "registration_expire_time": 30}
    assert fields.fields_of_csv_row({"registration_expire_time": "soon"}) == {"registration_expire_time": "soon"}


# --- one default transport: stored, shown and used alike ---------------------------------------

def test_a_set_stored_without_transport_is_shown_and_registered_with_the_default(admin, creds, api):
    # A row whose configured set has no transport (written before the service stored a default,
    # or by another writer): the API shows UDP, so the SIP engine must use UDP too (it used AUTO).
    now = time.time()
    phone = SipPhone(id=f"nt{creds.account_id[:20]}", account_id=creds.account_id, user_email="alice@example.com",
                     user_name="1001", authorization_name="1001", password="pw", domain="sip.example.com",
                     servers=(ServerSet("pbx.example.com", "", None), ServerSet(), ServerSet()),
                     created_at=now, updated_at=now)

    async def store(svc, repo):
        user = await repo.get_user_by_email(creds.account_id, "alice@example.com")
        await repo.add_phone(phone, user.id)
        return await repo.get_phone(creds.account_id, phone.id)

    stored = admin.run(store)
    assert stored.servers[0].transport_protocol is None          # nothing stored
    assert legacy_phones(api)[phone.id]["transport_protocol"] == "UDP"
    assert current_phones(api)[phone.id]["server"]["transport_protocol"] == "UDP"
    [used] = registration_config(stored).server_sets
    assert used.transport is fields.DEFAULT_TRANSPORT is Transport.UDP


@pytest.mark.parametrize("name", [f.name for f in FIELDS if f.in_body])
def test_every_body_field_is_validated_under_its_name(name):
    # A value of the wrong type is refused under the field's own name, in both shapes.
    from sipphones.errors import ValidationFailed
    from sipphones.phones.validation import validate_phone_fields

    wrong = "60" if fields.BY_NAME[name].kind is Kind.MINUTES else 60
    for label in (lambda n: n, shapes.current_label):
        with pytest.raises(ValidationFailed) as e:
            validate_phone_fields({name: wrong}, label=label)
        assert [err.field for err in e.value.errors] == [label(name)]
