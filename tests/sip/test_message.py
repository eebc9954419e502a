"""Message objects: header multi-map semantics, list splitting and serialization."""

import pytest

from sipphones.sip.errors import SerializeError, SipError
from sipphones.sip.message import Headers, Request, Response, canonical_name, split_list
from sipphones.sip.parser import parse_message


@pytest.mark.parametrize("name, expected", [
    ("v", "Via"), ("V", "Via"), ("i", "Call-ID"), ("l", "Content-Length"), ("m", "Contact"),
    ("f", "From"), ("t", "To"), ("k", "Supported"), ("c", "Content-Type"), ("s", "Subject"),
    ("call-id", "Call-ID"), ("CSEQ", "CSeq"), ("www-authenticate", "WWW-Authenticate"),
    ("max-FORWARDS", "Max-Forwards"), ("x-custom-thing", "X-Custom-Thing"), (" via ", "Via"),
])
def test_canonical_name(name, expected):
    assert canonical_name(name) == expected


def test_headers_are_case_insensitive_and_compact_aware():
    h = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("VIA", "SIP/2.0/UDP b;branch=z9hG4bK2")])
    h.add("m", "<sip:a@b>")
    assert h.get("via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert h.get_all("Via") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b;branch=z9hG4bK2"]
    assert "contact" in h and "CONTACT" in h and "m" in h
    assert "Route" not in h and 42 not in h
    assert list(h)[0] == ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")


def test_headers_set_replaces_all_lines_at_first_position():
    h = Headers([("X-A", "1"), ("X-B", "2"), ("x-a", "3"), ("X-C", "4")])
    h.set("x-A", "x")
    assert list(h) == [("X-A", "x"), ("X-B", "2"), ("X-C", "4")]
    h.set("X-D", "5")
    assert list(h)[-1] == ("X-D", "5")
    h.remove("x-b")
    assert h.get("X-B") is None and len(h) == 3


def test_headers_copy_is_independent():
    h = Headers([("X-A", "1")])
    c = h.copy()
    c.add("X-B", "2")
    assert len(h) == 1 and len(c) == 2 and h != c


def test_values_splits_comma_lists_but_not_inside_quotes_or_brackets():
    h = Headers([("Contact", '"Doe, John" <sip:j@a;x=1,2>;q=0.5, <sip:k@b>'), ("Contact", "<sip:l@c>")])
    assert h.values("Contact") == ['"Doe, John" <sip:j@a;x=1,2>;q=0.5', "<sip:k@b>", "<sip:l@c>"]


@pytest.mark.parametrize("value, parts", [
    ("a, b,c", ["a", "b", "c"]),
    ('"x\\", y", z', ['"x\\", y"', "z"]),
    ("", []),
    (" , ,a", ["a"]),
])
def test_split_list(value, parts):
    assert split_list(value) == parts


def test_request_serialization_writes_content_length_from_body():
    req = Request("MESSAGE", "sip:bob@example.com", Headers([("Content-Length", "999"), ("Content-Type", "text/plain")]), b"hello")
    data = req.to_bytes()
    assert data.startswith(b"MESSAGE sip:bob@example.com SIP/2.0\r\n")
    assert data.endswith(b"Content-Length: 5\r\n\r\nhello")
    assert b"999" not in data


def test_response_serialization():
    resp = Response(200, "OK", Headers([("Call-ID", "x")]))
    assert resp.to_bytes() == b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize("build", [
    lambda: Request("REGISTER", "sip:a", Headers([("Subject", "x\r\nVia: evil")])),
    lambda: Request("REGISTER", "sip:a", Headers([("Subject", "x\nVia: evil")])),
    lambda: Request("REGISTER", "sip:a", Headers([("Bad Name", "x")])),
    lambda: Request("REGISTER", "sip:a", Headers([("Subject", "nul\x00")])),
    lambda: Request("REG ISTER", "sip:a"),
    lambda: Request("REGISTER", "sip:a b"),
    lambda: Request("REGISTER", ""),
    lambda: Response(99, "Too low"),
    lambda: Response(700, "Too high"),
    lambda: Response(200, "OK\r\nVia: x"),
])
def test_serializer_refuses_values_that_would_change_framing(build):
    with pytest.raises(SerializeError) as info:
        build().to_bytes()
    assert isinstance(info.value, SipError) and isinstance(info.value, ValueError)


def test_serialized_request_parses_back_equal():
    headers = Headers([
        ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport"),
        ("Max-Forwards", "70"), ("From", "<sip:alice@sip.test>;tag=1"), ("To", "<sip:alice@sip.test>"),
        ("Call-ID", "abc@host"), ("CSeq", "1 REGISTER"), ("Contact", "<sip:alice@127.0.0.1:5070>"),
        ("Expires", "3600"),
    ])
    req = Request("REGISTER", "sip:sip.test", headers)
    parsed = parse_message(req.to_bytes())
    assert parsed.headers.get("Content-Length") == "0"
    parsed.headers.remove("Content-Length")
    assert parsed == req
