"""What the journal keeps of secrets: nothing (sipphones.emulator.masking)."""

from __future__ import annotations

import orjson

from sipphones.emulator.masking import (
    FORM_SECRET_FIELDS, MARKERS, MASK, mask_form, mask_header, mask_header_bytes, mask_json, mask_json_text,
    may_hold_secrets,
)


def test_credential_headers_keep_their_scheme_only():
    assert mask_header("authorization", "Bearer eyJhbGciOi.abc.def") == f"Bearer {MASK}"
    assert mask_header("authorization", "Basic Y2lkOnNlY3JldA==") == f"Basic {MASK}"
    assert mask_header("authorization", "sometokenwithoutscheme") == MASK
    assert mask_header("cookie", "session=abc") == MASK
    assert mask_header("content-type", "application/json") == "application/json"


def test_json_secrets_are_masked_at_any_depth_and_under_escaped_names():
    raw = (b'{"password": "s3cret", "user_email": "a@example.com", "server": {"password": 1234},'
           b' "items": [{"access_token": "tok"}, {"nested": [{"Client_Secret": "cs"}]}],'
           b' "pass\\u0077ord_hint": "kept", "pass\\u0077ord": "escaped", "code": 124}')
    doc = mask_json(orjson.loads(raw))
    assert doc["password"] == MASK and doc["password_hint"] == "kept"
    assert doc["server"]["password"] == MASK
    assert doc["items"][0]["access_token"] == MASK
    assert doc["items"][1]["nested"][0]["Client_Secret"] == MASK
    assert doc["code"] == 124 and doc["user_email"] == "a@example.com"
    assert b"s3cret" not in orjson.dumps(doc) and b"escaped" not in orjson.dumps(doc)


def test_a_deeply_nested_document_does_not_exhaust_the_stack():
    doc: dict = {"password": "x"}
    for _ in range(5000):
        doc = {"a": [doc]}
    mask_json(doc)
    node = doc
    for _ in range(5000):
        node = node["a"][0]
    assert node["password"] == MASK


def test_unparsable_json_text_is_masked_by_pattern_even_when_cut_short():
    assert "hunter2" not in mask_json_text('{"password": "hunter2", "user_name": "x",')
    assert "hunter2" not in mask_json_text('{"user_name": "x", "PASSWORD":"hunt\\"er2')
    assert "hunter2" not in mask_json_text('{"password": hunter2}')
    assert mask_json_text('{"user_name": "password"}') == '{"user_name": "password"}'


def test_form_secrets_are_masked_including_an_authorization_code():
    form = mask_form("grant_type=authorization_code&code=abc123&code_verifier=v&client_secret=s"
                     "&account_id=acc1&refresh_token=r&x=1&x=2")
    assert form == {"grant_type": "authorization_code", "code": MASK, "code_verifier": MASK,
                    "client_secret": MASK, "account_id": "acc1", "refresh_token": MASK, "x": ["1", "2"]}


def test_a_form_body_of_many_fields_is_read_up_to_a_bound():
    form = mask_form("&".join(f"f{i}=v" for i in range(10_000)))
    assert len(form) == 100


def test_the_quick_secret_check_knows_every_secret_name():
    assert all(any(m in name.encode() for m in MARKERS) for name in FORM_SECRET_FIELDS - {"code"})
    for marker in MARKERS:
        assert may_hold_secrets(b'{"x": 1, "' + marker.upper() + b'": 2}')
    assert not may_hold_secrets(b'{"user_email": "a@example.com", "domain": "sip.example.com"}')


def test_raw_credential_headers_are_masked_too():
    assert mask_header_bytes(b"Bearer abc.def") == b"Bearer ****"
    assert mask_header_bytes(b"abc") == b"****"


def test_secrets_are_masked_on_the_bytes_when_that_is_sure():
    from sipphones.emulator.masking import mask_json_bytes

    raw = (b'{"a": 1, "password"  ' + b" " * 100 + b': "x\\"y", "token":12, "b": "password",'
           b' "client_secret": null, "n": {"access_token": "t"}, "list": ["password"]}')
    masked = mask_json_bytes(raw)
    assert orjson.loads(masked) == {"a": 1, "password": MASK, "token": MASK, "b": "password",
                                    "client_secret": MASK, "n": {"access_token": MASK}, "list": ["password"]}
    assert mask_json_bytes(b'{"x": "y"}') == b'{"x": "y"}'
    # not sure: another case, an escape, a secret that is an object - the caller decodes instead
    for unsure in (b'{"Password": "x"}', b'{"pass\\u0077ord": "x"}', b'{"password": {"a": "x"}}',
                   b'{"password": "a", "note": "PASSWORD"}'):
        assert mask_json_bytes(unsure) is None
