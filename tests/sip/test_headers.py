"""Structured header values: URIs, name-addr, Via, CSeq, challenges, Retry-After, expiry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipphones.sip.errors import BadHeaderValue, BadUri, ParseError, SerializeError
from sipphones.sip.headers import (
    Challenge,
    RetryAfter,
    Via,
    find_contact,
    granted_expires,
    min_expires,
    parse_challenge,
    parse_challenges,
    parse_cseq,
    parse_retry_after,
    parse_vias,
    retry_after,
)
from sipphones.sip.syntax import parse_delta_seconds, parse_params, quote, unquote
from sipphones.sip.uri import AbsoluteUri, NameAddr, SipUri, parse_contacts, parse_uri
from sipphones.sip.message import Headers, Response

# --- SIP URIs -------------------------------------------------------------------------------


def test_user_part_is_escaped_on_output():
    uri = SipUri(user="Jill Chill", host="sip.test")
    assert str(uri) == "sip:Jill%20Chill@sip.test"
    assert SipUri.parse(str(uri)) == uri


@pytest.mark.parametrize("user, wire", [
    ("J\u00fcrgen", "J%C3%BCrgen"),
    ("a@b", "a%40b"),
    ("+1-212-555;x=1?y/z", "+1-212-555;x=1?y/z"),      # user-unreserved stay as they are
    ("100%", "100%25"),
    ('quote"<>', "quote%22%3C%3E"),
])
def test_user_escaping(user, wire):
    assert str(SipUri(user=user, host="example.com")) == f"sip:{wire}@example.com"
    assert SipUri.parse(f"sip:{wire}@example.com").user == user


def test_full_uri_parse():
    uri = SipUri.parse("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr;maddr=239.255.255.1?subject=project%20x&priority=urgent")
    assert uri.scheme == "sips" and uri.user == "alice" and uri.password == "secret"
    assert uri.host == "2001:db8::1" and uri.port == 5061
    assert uri.params == {"transport": "tcp", "lr": None, "maddr": "239.255.255.1"}
    assert uri.headers == {"subject": "project x", "priority": "urgent"}
    assert uri.hostport == "[2001:db8::1]:5061"
    assert SipUri.parse(str(uri)) == uri


def test_uri_scheme_and_param_names_are_case_insensitive():
    uri = SipUri.parse("SIP:bob@Example.COM;Transport=UDP")
    assert uri.scheme == "sip" and uri.params == {"transport": "UDP"} and uri.host == "Example.COM"


def test_replace_and_hostport():
    uri = SipUri(host="127.0.0.1", user="alice", port=5070)
    assert uri.hostport == "127.0.0.1:5070"
    assert str(uri.replace(params={"transport": "tcp"})) == "sip:alice@127.0.0.1:5070;transport=tcp"


def test_parse_uri_other_schemes():
    assert parse_uri("tel:+1-201-555-0123") == AbsoluteUri("tel:+1-201-555-0123")
    assert parse_uri("tel:+1-201-555-0123").scheme == "tel"
    assert isinstance(parse_uri("sips:a@b"), SipUri)


@pytest.mark.parametrize("text", [
    "sip:", "sip:@host", "sip:user@", "http://x", "sip:host:99999", "sip:host:port", "sip:[::1",
    "sip:[zz::1]", "sip:300.1.1.1", "sip:ho st", "sip:host;", "sip:host;=v", "sip:host;a=",
    "sip:host?x", "sip:host?=y", "sip:us er@host", "sip:user@host%", "sip:user@host;a=%G1",
    "sip:a%2@host", "sip:-bad-.com", "sip:host:", "sip:a@b@c",
])
def test_bad_sip_uris(text):
    with pytest.raises(BadUri):
        SipUri.parse(text)


@pytest.mark.parametrize("text", ["nocolon", ":x", "1tel:x", "tel:", "tel:a b", "urn:<x>"])
def test_bad_absolute_uris(text):
    with pytest.raises(BadUri):
        parse_uri(text)


# RFC 3261 §19.1.4 examples.
@pytest.mark.parametrize("a, b", [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
])
def test_rfc3261_equivalent_uris(a, b):
    assert SipUri.parse(a).equivalent(SipUri.parse(b))
    assert SipUri.parse(b).equivalent(SipUri.parse(a))


@pytest.mark.parametrize("a, b", [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:a@b", "sips:a@b"),
])
def test_rfc3261_non_equivalent_uris(a, b):
    assert not SipUri.parse(a).equivalent(SipUri.parse(b))


def test_equivalent_to_non_sip_is_false():
    assert not SipUri.parse("sip:a@b").equivalent(AbsoluteUri("tel:1"))
    assert not SipUri.parse("sip:a@b").equivalent(None)


# --- name-addr ------------------------------------------------------------------------------


def test_name_addr_forms():
    a = NameAddr.parse('"Alice \\"A\\" Smith" <sip:alice@sip.test>;tag=abc')
    assert (a.display_name, a.uri.user, a.tag) == ('Alice "A" Smith', "alice", "abc")
    b = NameAddr.parse("Alice   Smith <sip:alice@sip.test>")
    assert b.display_name == "Alice Smith"
    c = NameAddr.parse("<sip:alice@sip.test>")
    assert c.display_name is None and str(c) == "<sip:alice@sip.test>"
    assert str(a) == '"Alice \\"A\\" Smith" <sip:alice@sip.test>;tag=abc'


def test_addr_spec_params_belong_to_the_header_but_bracketed_ones_to_the_uri():
    # RFC 3261 §20.10: without <>, parameters after the URI are header parameters
    bare = NameAddr.parse("sip:+1-972-555-2222@gw1.example.net;unknownparam")
    assert bare.params == {"unknownparam": None} and bare.uri.params == {}
    bracketed = NameAddr.parse("<sip:+1-972-555-2222@gw1.example.net;unknownparam>")
    assert bracketed.params == {} and bracketed.uri.params == {"unknownparam": None}


def test_wildcard_contact():
    star = NameAddr.parse(" * ")
    assert star.wildcard and star.uri is None and str(star) == "*"


def test_contact_expires_and_q():
    c = NameAddr.parse("<sip:a@b>;expires=0060;q=0.5")
    assert c.expires == 60 and c.q == 0.5
    assert NameAddr.parse("<sip:a@b>").expires is None
    with pytest.raises(BadHeaderValue):
        _ = NameAddr.parse("<sip:a@b>;expires=soon").expires
    with pytest.raises(BadHeaderValue):
        _ = NameAddr.parse("<sip:a@b>;q=2").q


def test_tel_uri_in_name_addr():
    n = NameAddr.parse("<tel:+12015550123>;tag=1")
    assert n.uri == AbsoluteUri("tel:+12015550123") and n.tag == "1"


def test_name_addr_quoted_param_value_round_trip():
    n = NameAddr.parse('<sip:a@b>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1')
    assert n.params["+sip.instance"] == "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"
    assert NameAddr.parse(str(n)) == n


@pytest.mark.parametrize("text", [
    "", '"unterminated <sip:a@b>', '"x" sip:a@b', "Bell, Alexander <sip:a@b>", "<sip:a@b",
    "<sip:a@b>;", "<sip:a@b>;tag=", "<sip:a@b> junk", "sip:a@b?x=y", "<>",
    "<sip:a@b>;x=\"open", "sip:a@b,c@d",
])
def test_bad_name_addrs(text):
    with pytest.raises(BadHeaderValue):
        NameAddr.parse(text)


def test_display_name_with_crlf_cannot_be_serialized():
    with pytest.raises(SerializeError):
        str(NameAddr(uri=SipUri(host="a"), display_name="x\r\nVia: evil"))


# --- Via ------------------------------------------------------------------------------------


def test_via_parse_and_format():
    via = Via.parse("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport;received=10.0.0.1")
    assert (via.protocol, via.transport, via.host, via.port) == ("SIP/2.0", "UDP", "127.0.0.1", 5070)
    assert via.branch == "z9hG4bK-1" and via.has_rport and via.rport is None and via.received == "10.0.0.1"
    assert str(via) == "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport;received=10.0.0.1"


def test_via_rport_with_value_and_ipv6():
    via = Via.parse("SIP/2.0/tcp [::1]:5060 ; branch=z9hG4bKx ; rport=40000")
    assert via.transport == "TCP" and via.host == "::1" and via.rport == 40000
    assert str(via) == "SIP/2.0/TCP [::1]:5060;branch=z9hG4bKx;rport=40000"


def test_parse_vias_across_lines():
    h = Headers([("Via", "SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2"), ("v", "SIP/2.0/TCP c;branch=3")])
    assert [v.host for v in parse_vias(h)] == ["a", "b", "c"]


@pytest.mark.parametrize("text", [
    "", "SIP/2.0/UDP", "SIP/2.0 127.0.0.1", "SIP/2.0/UDP 127.0.0.1:99999", "SIP/2.0/UDP 1.2.3.4;;",
    "SIP/2.0/UDP 1.2.3.4;rport=x", "SIP/2.0/UDP [::1;branch=x", "SIP/2.0/UDP 999.1.1.1", "SIP/2.0/UDP host junk",
])
def test_bad_vias(text):
    with pytest.raises(BadHeaderValue):
        Via.parse(text)


# --- CSeq, params, quoting, delta-seconds ------------------------------------------------------


def test_cseq():
    assert parse_cseq("  0009\t INVITE ") == parse_cseq("9 INVITE")
    assert parse_cseq(f"{2**31 - 1} REGISTER").number == 2**31 - 1
    assert str(parse_cseq("1 REGISTER")) == "1 REGISTER"


@pytest.mark.parametrize("text", ["", "1", "REGISTER", "-1 REGISTER", f"{2**31} REGISTER", "1 REG ISTER",
                                  "36893488147419103232 REGISTER", "1.5 REGISTER"])
def test_bad_cseq(text):
    with pytest.raises(BadHeaderValue):
        parse_cseq(text)


def test_parse_params():
    assert parse_params(' ; a = 1 ;b; c="x;y, \\"z\\"" ;D=[::1]') == {"a": "1", "b": None, "c": 'x;y, "z"', "d": "[::1]"}
    assert parse_params("") == {}
    for bad in ("a=1", ";", ";a=", ";a b", ';a="x'):
        with pytest.raises(BadHeaderValue):
            parse_params(bad)


def test_quote_unquote():
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert unquote('"a\\"b\\\\c"') == 'a"b\\c'
    assert unquote("  token ") == "token"
    assert quote("nul\x00") == '"nul\\\x00"'
    with pytest.raises(SerializeError):
        quote("a\nb")
    with pytest.raises(BadHeaderValue):
        unquote('"a" b')
    with pytest.raises(BadHeaderValue):
        unquote('"abc\\')


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")))
@settings(max_examples=300, deadline=None)
def test_property_quote_round_trip(text):
    assert unquote(quote(text)) == text


def test_delta_seconds():
    assert parse_delta_seconds("3600") == 3600
    assert parse_delta_seconds(" 0 ") == 0
    assert parse_delta_seconds("1293020219491843102391839482") == 2**32 - 1
    for bad in ("", "-1", "1h", "1 2"):
        with pytest.raises(BadHeaderValue):
            parse_delta_seconds(bad)


# --- Retry-After, Min-Expires -------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("30", RetryAfter(30)),
    ("18000;duration=3600", RetryAfter(18000, None, {"duration": "3600"})),
    ("120 (I'm in a meeting)", RetryAfter(120, "I'm in a meeting")),
    ("120 (nested (comment) \\) here) ; duration = 60", RetryAfter(120, "nested (comment) ) here", {"duration": "60"})),
])
def test_retry_after(text, expected):
    assert parse_retry_after(text) == expected


def test_retry_after_duration():
    assert parse_retry_after("5;duration=60").duration == 60
    assert parse_retry_after("5").duration is None


@pytest.mark.parametrize("text", ["", "soon", "10 (unterminated", "10;duration", "10;duration=x", "10 junk"])
def test_bad_retry_after(text):
    with pytest.raises(BadHeaderValue):
        parse_retry_after(text)


def test_response_helpers():
    r = Response(423, "Interval Too Brief", Headers([("Min-Expires", "1800"), ("Retry-After", "30")]))
    assert min_expires(r) == 1800 and retry_after(r).seconds == 30
    assert min_expires(Response(200, "OK")) is None and retry_after(Response(200, "OK")) is None


# --- challenges -----------------------------------------------------------------------------


def test_kamailio_challenge():
    c = parse_challenge('Digest realm="sip.test", nonce="awmGh2sJhVurq+QEuFOgHthnsK6QDUNX", qop="auth"')
    assert c == Challenge("Digest", {"realm": "sip.test", "nonce": "awmGh2sJhVurq+QEuFOgHthnsK6QDUNX", "qop": "auth"})


def test_challenge_with_commas_escapes_and_unquoted_tokens():
    c = parse_challenge('Digest  REALM="a, \\"b\\"" ,nonce=abc/def==,algorithm=SHA-256 , stale=TRUE,qop="auth,auth-int"')
    assert c.scheme == "Digest"
    assert c.params == {"realm": 'a, "b"', "nonce": "abc/def==", "algorithm": "SHA-256", "stale": "TRUE",
                        "qop": "auth,auth-int"}
    assert c.get("Realm") == 'a, "b"'


def test_multiple_challenges_in_one_header():
    cs = parse_challenges('Basic realm="x", Digest realm="y", nonce="n1", algorithm=MD5, '
                          'Negotiate abc123==, Digest realm="y", nonce="n2", algorithm=SHA-256')
    assert [(c.scheme, c.get("nonce"), c.token68) for c in cs] == [
        ("Basic", None, None), ("Digest", "n1", None), ("Negotiate", None, "abc123=="), ("Digest", "n2", None)]


def test_cisco_style_challenge_realm_is_not_the_domain():
    c = parse_challenge('Digest realm="ccmsipline", nonce="p0Y7ZKNxjZj8ScAKLlvnQVPgT6EwBhwr", algorithm=MD5')
    assert c.get("realm") == "ccmsipline"


@pytest.mark.parametrize("text", ["", "   ", 'realm="x"', 'Digest realm="x', "Digest realm=x y",
                                  "Digest, =x", "Negotiate abc==, realm=x", "Digest realm=\"x\" nonce=\"y\""])
def test_bad_challenges(text):
    with pytest.raises(BadHeaderValue):
        parse_challenges(text)


# --- granted expiry (RFC 3261 §10.2.4) ------------------------------------------------------------

OURS = SipUri(user="alice", host="127.0.0.1", port=5070, params={"transport": "udp"})


def ok(*headers):
    return Response(200, "OK", Headers(list(headers)))


def test_granted_expires_from_our_contact_among_several():
    r = ok(("Contact", "<sip:alice@10.0.0.9:5060>;expires=3000, <sip:alice@127.0.0.1:5070;transport=UDP;ob>;expires=120"),
           ("Expires", "3600"))
    assert granted_expires(r, OURS) == 120
    assert find_contact(parse_contacts(r.headers), OURS).expires == 120


def test_granted_expires_falls_back_to_expires_header():
    assert granted_expires(ok(("Contact", "<sip:alice@127.0.0.1:5070;transport=udp>"), ("Expires", "600")), OURS) == 600
    assert granted_expires(ok(("Expires", "300")), OURS) == 300


def test_granted_expires_none_when_our_binding_is_absent():
    assert granted_expires(ok(("Contact", "<sip:alice@10.0.0.9>;expires=3000"), ("Expires", "600")), OURS) is None
    assert granted_expires(ok(), OURS) is None


def test_granted_expires_with_received_header_param_still_matches():
    r = ok(("Contact", '<sip:alice@127.0.0.1:5070;transport=udp>;expires=60;received="sip:198.51.100.1:40000"'))
    assert granted_expires(r, OURS) == 60


def test_granted_expires_malformed_raises_parse_error():
    with pytest.raises(ParseError):
        granted_expires(ok(("Contact", "<sip:alice@127.0.0.1:5070;transport=udp>;expires=x")), OURS)


# --- properties -----------------------------------------------------------------------------

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~", min_size=1, max_size=10)
HOST = st.one_of(
    st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z]{1,6}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str),
)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=15)


@st.composite
def sip_uris(draw):
    user = draw(st.none() | ANY_TEXT)
    return SipUri(
        host=draw(HOST), user=user,
        password=draw(st.none() | ANY_TEXT) if user is not None else None,
        port=draw(st.none() | st.integers(0, 65535)),
        scheme=draw(st.sampled_from(["sip", "sips"])),
        params=draw(st.dictionaries(ANY_TEXT.map(str.lower).filter(lambda s: s.lower() == s), st.none() | ANY_TEXT, max_size=3)),
        headers=draw(st.dictionaries(ANY_TEXT, st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=5), max_size=2)),
    )


@given(sip_uris())
@settings(max_examples=300, deadline=None)
def test_property_sip_uri_round_trip(uri):
    text = str(uri)
    assert not any(c.isspace() for c in text)
    parsed = SipUri.parse(text)
    assert parsed == uri
    assert parsed.equivalent(uri)


@given(sip_uris(), st.none() | st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20),
       st.dictionaries(TOKEN, st.none() | st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=10), max_size=3))
@settings(max_examples=300, deadline=None)
def test_property_name_addr_round_trip(uri, display, params):
    n = NameAddr(uri=uri, display_name=display or None, params=params)
    assert NameAddr.parse(str(n)) == n


@given(st.sampled_from(["UDP", "TCP", "TLS", "SCTP"]), HOST, st.none() | st.integers(0, 65535),
       st.dictionaries(TOKEN, st.none() | TOKEN, max_size=4))
@settings(max_examples=300, deadline=None)
def test_property_via_round_trip(transport, host, port, params):
    params.pop("rport", None)
    via = Via(transport=transport, host=host, port=port, params=params)
    assert Via.parse(str(via)) == via


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_property_structured_parsers_raise_only_bad_header_value(text):
    for parse in (SipUri.parse, parse_uri, NameAddr.parse, Via.parse, parse_cseq, parse_retry_after,
                  parse_challenges, parse_params, parse_delta_seconds, unquote):
        try:
            result = parse(text)
        except BadHeaderValue:
            continue
        if isinstance(result, NameAddr):
            try:
                _ = (result.expires, result.q)
            except BadHeaderValue:
                pass
