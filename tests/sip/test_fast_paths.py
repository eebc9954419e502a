"""The parser's and the machine's fast paths give exactly what the general code gives.

Several hot paths (see bench/sip_engine.py) take a shortcut for the common case and fall back to
the general code otherwise. Each shortcut is checked here against that general code on generated
input, so a shortcut can never accept what the general code rejects or read a value differently.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sipphones.sip.errors import BadHeaderValue
from sipphones.sip.headers import _parse_one_challenge, parse_challenges
from sipphones.sip.syntax import parse_params
from sipphones.sip.uri import NameAddr, SipUri, simple_name_addr
from sipphones.sip.message import Headers, Response, split_list
from sipphones.sip.parser import _HEAD_END, _head_end
from sipphones.sip.attempt import _granted

# Pieces that hit the boundaries of each fast path's regular expression.
ADDR_PIECES = ["<", ">", "sip:", "SIPS:", "tel:", "@", ":", ";", "=", ".", "a", "Z", "0", "9", "255", "256",
               "65535", "65536", "127.0.0.1", "sip.test", "-", "_", "%41", " ", "\"", "?", ",", "[", "]", "tag"]


def joined(pieces: list[str], min_size: int = 0, max_size: int = 14):
    return st.lists(st.sampled_from(pieces), min_size=min_size, max_size=max_size).map("".join)


@given(st.one_of(joined(ADDR_PIECES), joined(ADDR_PIECES).map(lambda s: "<sip:" + s)))
@settings(max_examples=1500)
def test_simple_name_addr_accepts_only_what_the_parser_accepts(text):
    if simple_name_addr(text):
        NameAddr.parse(text, "To")  # must not raise


@given(st.sampled_from(["a", "b0", "sip.test", "x_y-z", "127.0.0.1", "1.2.3.999", "255.255.255.255"]),
       st.sampled_from(["", ":5060", ":65535", ":65536"]),
       st.sampled_from(["", ";tag=abc", ";tag=a.b;x", ";q=0.5;expires=60"]))
def test_simple_name_addr_takes_the_usual_forms(host, port, params):
    text = f"<sip:b000001@{host}{port}>{params}"
    try:
        NameAddr.parse(text, "To")
        valid = True
    except BadHeaderValue:
        valid = False
    assert simple_name_addr(text) == valid


@given(joined(["\r", "\n", "a", " ", ":"], max_size=16), st.integers(min_value=0, max_value=16))
@settings(max_examples=1500)
def test_head_end_finds_the_first_blank_line_like_the_regex(text, start):
    data = text.encode()
    start = min(start, len(data))
    m = _HEAD_END.search(data, start)
    expected = (m.start(), m.end()) if m else None
    assert _head_end(data, start) == expected
    assert _head_end(bytearray(data), start) == expected


def _split_by_characters(value: str) -> list[str]:
    """RFC 3261 §7.3.1 list splitting, one character at a time (the reference)."""
    parts, buf, quoted, angle, escape = [], [], False, False, False
    for ch in value:
        if escape:
            buf.append(ch)
            escape = False
            continue
        if quoted and ch == "\\":
            buf.append(ch)
            escape = True
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle = True
        elif not quoted and ch == ">":
            angle = False
        if ch == "," and not quoted and not angle:
            parts.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    tail = "".join(buf).strip()
    if tail or parts:
        parts.append(tail)
    return [p for p in parts if p]


@given(joined(["a", ",", " ", "<", ">", '"', "\\", ";x=1"], max_size=20))
@settings(max_examples=1500)
def test_split_list_matches_the_character_loop(value):
    assert split_list(value) == _split_by_characters(value)


CHALLENGE_PIECES = ["Digest", "Basic", " ", "\t", ",", "=", '"', "\\", "realm", "nonce", "qop", "a/b=", "x",
                    '"sip.test"', '"a,b"', "auth", "\n"]


@given(joined(CHALLENGE_PIECES, max_size=16))
@settings(max_examples=1500)
def test_challenge_fast_path_reads_like_the_tokenizer(text):
    fast = _parse_one_challenge(text)
    if fast is not None:
        # what the general tokenizer reads, with the fast path out of the way
        import sipphones.sip.headers as headers
        saved = headers._parse_one_challenge
        headers._parse_one_challenge = lambda s: None
        try:
            assert parse_challenges(text) == [fast]
        finally:
            headers._parse_one_challenge = saved


@given(joined([";", "=", "a", "B", "1", ":", "[", "]", " ", '"', "%"], max_size=14))
@settings(max_examples=1500)
def test_parameter_fast_path_reads_like_the_loop(text):
    # The fast path only applies to plain ";name[=value]" runs; they must read like the regex loop
    # (whose rules the fast path's pattern restates). Both either fail or give the same dict.
    def by_loop(s: str):
        params, i = {}, 0
        pattern = re.compile(r"[ \t]*;[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)(?:[ \t]*=[ \t]*(?:([A-Za-z0-9\-.!%*_+`'~\[\]:]+)"
                             r'|"((?:[^"\\\r\n]|\\[^\r\n])*)"))?')
        while True:
            m = pattern.match(s, i)
            if m is None:
                while i < len(s) and s[i] in " \t":
                    i += 1
                if i >= len(s):
                    return params
                raise BadHeaderValue("malformed")
            name, token, quoted = m.groups()
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token
            params.setdefault(name.lower(), value)
            i = m.end()

    try:
        expected = by_loop(text)
    except BadHeaderValue:
        expected = None
    try:
        got = parse_params(text)
    except BadHeaderValue:
        got = None
    assert got == expected


OURS = SipUri(host="127.0.0.1", user="b000001", port=40000, params={"transport": "udp"})
OURS_TEXT = f"<{OURS}>"


@given(st.lists(st.one_of(
           st.builds(lambda p: OURS_TEXT + p, joined([";expires=", ";EXPIRES=", "60", "0", "x", ";q=1", ";expires",
                                                      " ", ",", "99999999999"], max_size=6)),
           st.sampled_from(["<sip:other@1.2.3.4>;expires=30", "<sip:b000001@127.0.0.1:40000;transport=UDP>;expires=9",
                            "garbage<", "*"])), min_size=0, max_size=3),
       st.sampled_from([None, "120", "x", "0"]))
@settings(max_examples=1500)
def test_granted_fast_path_agrees_with_the_general_path(contacts, expires):
    items = [("Contact", c) for c in contacts]
    if expires is not None:
        items.append(("Expires", expires))
    response = Response(200, "OK", Headers(items))
    assert _granted(response, OURS, 3600, OURS_TEXT) == _granted(response, OURS, 3600)


BRANCH_PIECES = [";", ",", " ", "\t", "=", "branch", "BRANCH", "Branch", "brancH", "z9hG4bK", "a", "x", "\"",
                 "SIP/2.0/UDP 1.2.3.4:5060", "rport", "\u212a", "\u0130", "bra", "nch"]


@given(joined(BRANCH_PIECES, max_size=12))
@settings(max_examples=3000)
def test_branch_param_reads_like_the_regex(text):
    from sipphones.sip.transaction import _TOP_BRANCH, _branch_param
    m = _TOP_BRANCH.match(text)
    assert _branch_param(text) == (m.group(1) if m else None)


@given(st.text(alphabet=st.sampled_from(["a", " ", "\r", "\n", "\x00", "\t", "\x0b", "é", "\u2028"]), max_size=8))
@settings(max_examples=500)
def test_forbidden_check_is_the_regex(text):
    from sipphones.sip.message import _FORBIDDEN, _forbidden_in
    assert _forbidden_in(text) == (_FORBIDDEN.search(text) is not None)


@given(st.text(max_size=12) | st.text(alphabet=st.sampled_from(['a', '"', "\\", "\t", "\x00", "\x1f", "\x7f",
                                                                  "\x80", "é", " ", "~"]), max_size=8))
@settings(max_examples=1500)
def test_quote_fast_path_is_the_character_loop(text):
    from sipphones.sip.errors import SerializeError
    from sipphones.sip.syntax import quote
    if "\r" in text or "\n" in text:
        try:
            quote(text)
        except SerializeError:
            return
        raise AssertionError("CR/LF quoted")
    expected = '"' + "".join(("\\" + c) if (c in '"\\' or (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F) else c
                             for c in text) + '"'
    assert quote(text) == expected


@given(st.one_of(joined(ADDR_PIECES), joined(ADDR_PIECES).map(lambda s: "<sip:" + s),
                 joined(ADDR_PIECES).map(lambda s: "<sip:b1@sip.test>" + s)))
@settings(max_examples=3000)
def test_simple_name_addr_is_the_whole_regex(text):
    # Read in two parts (the "<uri>" part remembered): the same answer as the one regex, twice.
    from sipphones.sip.uri import _SIMPLE_NAME_ADDR_RE
    m = _SIMPLE_NAME_ADDR_RE.fullmatch(text)
    expected = m is not None and len(m.group(1)) <= 255 and (m.group(2) is None or int(m.group(2)) <= 65535)
    assert simple_name_addr(text) == expected
    assert simple_name_addr(text) == expected


VIA_PIECES = ["SIP/2.0/UDP ", "SIP / 2.0 / tcp ", "sip/2.0/TLS\t", "1.2.3.4", "[::1]", "host.example", "a_b", "-x",
              ":5060", ":65536", ":99999", ";rport", ";rport=", ";rport=5060", ";RPORT=70000", ";rport=12a",
              ";branch=z9hG4bK1", ";received=1.2.3.4", ";x=\"q v\"", " ;x", "; ", ";", "=", " ", ",", "\t", "é",
              ";RPort=1", ";rportx=99999", ";xrport=1", ";rport=00065535", ";rport=065536", "rport", "=1"]


@given(joined(VIA_PIECES, max_size=8))
@settings(max_examples=3000)
def test_check_via_raises_what_via_parse_raises(text):
    from sipphones.sip.errors import ParseError
    from sipphones.sip.headers import _via_parts, check_via

    def outcome(fn):
        try:
            fn(text)
        except ParseError as e:
            return type(e), str(e)
        return None
    assert outcome(check_via) == outcome(_via_parts)


@given(st.sampled_from(["1 REGISTER", " 2 REGISTER ", "0 INVITE", "2147483647 X", "2147483648 X", "1REGISTER",
                        "a REGISTER", "00000000001 OPTIONS", "1 REG ISTER", ""]))
def test_cseq_parts_remembered_gives_the_same(text):
    from sipphones.sip.errors import ParseError
    from sipphones.sip.headers import _cseq_parts, cseq_parts

    def outcome(fn):
        try:
            return fn(text)
        except ParseError as e:
            return type(e), str(e)
    first = outcome(cseq_parts)
    assert first == outcome(_cseq_parts) == outcome(cseq_parts)


QUOTED_NEW = r'''[^"\\\r\n]*+(?:\\[^\r\n][^"\\\r\n]*+)*+'''
QUOTED_OLD = r'''(?:[^"\\\r\n]|\\[^\r\n])*'''


@given(joined(['a', 'realm', '=', '"', '\\', '\\"', ',', ' ', '\t', '\r', '\n', 'x y', '""', 'é', ', ', '=,',
               'nonce="abc"', ';', '; x', '[', ':'], max_size=10), st.integers(min_value=0, max_value=2))
@settings(max_examples=3000)
def test_quoted_string_regexes_read_like_the_per_character_form(text, pos):
    # The quoted-string part of the parameter regexes is written as an unrolled loop (one character
    # class run instead of a group per character): the same matches as the per-character form.
    from sipphones.sip import headers, syntax
    for pattern in (syntax._PARAM_RE, headers._AUTH_PARAM_RE):
        assert QUOTED_NEW in pattern.pattern
        reference = re.compile(pattern.pattern.replace(QUOTED_NEW, QUOTED_OLD))
        a, b = reference.match(text, pos), pattern.match(text, pos)
        assert (a is None) == (b is None)
        if a is not None:
            assert (a.groups(), a.end()) == (b.groups(), b.end())


@given(joined(["SIP/2.0 200 OK", "REGISTER sip:a SIP/2.0", "\r\n", "\r", "\n", "Via: x", "A: b", " c", ":", "\t"],
              max_size=10))
@settings(max_examples=3000)
def test_head_lines_split_like_the_general_path(text):
    # _parse_head splits a CRLF-only head at its pairs; the general path (strip one trailing CR,
    # CRLF -> LF, bare CR rejected, split at LF) must give the same message or the same error.
    from sipphones.sip.errors import ParseError
    from sipphones.sip.parser import DEFAULT_LIMITS, _parse_head

    def outcome(head: str):
        try:
            message, length = _parse_head(head.encode(), DEFAULT_LIMITS)
        except ParseError as e:
            return type(e), str(e)
        return repr(message), length

    expected_text = text
    if "\r" in text:
        if text.endswith("\r"):
            expected_text = text[:-1]
        expected_text = expected_text.replace("\r\n", "\n")
    if "\r" in expected_text:
        from sipphones.sip.errors import BadHeader
        assert outcome(text) == (BadHeader, "bare CR inside the header section")
    else:
        assert outcome(text) == outcome(expected_text)


@given(st.text(alphabet=st.sampled_from(["a", "@", " ", "\t", "\n", "\x0b", "\x1c", "\x85", "\xa0", "\u2028",
                                          "\u3000", "\u200b", "é"]), max_size=6))
@settings(max_examples=1500)
def test_call_id_word_check_is_the_whitespace_regex(text):
    from sipphones.sip.parser import _SPACE_RE
    # parser.validate: "not call_id or call_id.split() != [call_id]" was "not call_id or _SPACE_RE.search(call_id)"
    assert (not text or text.split() != [text]) == (not text or _SPACE_RE.search(text) is not None)


@given(st.sampled_from(["REGISTER", "REG ISTER", "", "OPTIONS", "ré"]),
       st.sampled_from(["sip:sip.test", "sip:a b", "", "sip:x\u2028y", "sips:[::1]"]))
def test_request_line_check_remembered_gives_the_same(method, uri):
    from sipphones.sip.errors import SerializeError
    from sipphones.sip.message import _TOKEN, _WHITESPACE, Request
    valid = bool(_TOKEN.fullmatch(method)) and bool(uri) and not _WHITESPACE.search(uri)
    for _ in range(2):   # the second time from the remembered pairs
        try:
            Request(method, uri).to_bytes()
            ok = True
        except SerializeError:
            ok = False
        assert ok == valid


@given(st.text(alphabet=st.sampled_from(["0", "1", "2", "9", "a", "\u0663", "\u00b2", "+", "-", "\uff11"]),
               max_size=5))
@settings(max_examples=1500)
def test_status_code_check_is_the_regex(code):
    from sipphones.sip.errors import BadStartLine
    from sipphones.sip.parser import _STATUS_RE, _parse_start_line
    try:
        _parse_start_line(f"SIP/2.0 {code} OK")
        digits_ok = True
    except BadStartLine as e:
        digits_ok = "is not 3 digits" not in str(e)
    assert digits_ok == (_STATUS_RE.fullmatch(code) is not None)
