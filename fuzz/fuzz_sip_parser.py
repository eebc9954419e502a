"""Coverage-guided fuzz target (atheris/libFuzzer) for the SIP parser and header parsers.

Contract under test: bad bytes raise ``ParseError`` (header parsers: ``BadHeaderValue``, the
digest layer: ``DigestError``) and nothing else. Any other exception is a crash for libFuzzer.

Run::

    .venv/bin/python fuzz/fuzz_sip_parser.py --write-seeds /tmp/sipcorpus   # once
    .venv/bin/python fuzz/fuzz_sip_parser.py /tmp/sipcorpus -runs=200000 -artifact_prefix=/tmp/

libFuzzer adds new inputs to the first corpus directory, so point it at a scratch copy, not at
files in the repository.
"""

from __future__ import annotations

import os
import sys

import atheris

with atheris.instrument_imports(include=["sipphones.sip"]):
    from sipphones.sip.digest import DigestClient
    from sipphones.sip.errors import BadHeaderValue, DigestError, ParseError
    from sipphones.sip.headers import Via, parse_challenges, parse_cseq, parse_retry_after
    from sipphones.sip.uri import NameAddr, SipUri, parse_contacts
    from sipphones.sip.message import Response
    from sipphones.sip.parser import Limits, StreamParser, parse_message

SMALL = Limits(max_message_bytes=4096, max_headers=32, max_line_bytes=1024, max_body_bytes=2048)

SEEDS = [
    b"REGISTER sip:sip.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:alice@sip.test>;tag=1\r\nTo: <sip:alice@sip.test>\r\n"
    b"Call-ID: 1-5585@127.0.0.1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:5070;transport=UDP>\r\n"
    b"Expires: 3600\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport=5070\r\n"
    b"From: <sip:alice@sip.test>;tag=1\r\nTo: <sip:alice@sip.test>;tag=x\r\nCall-ID: 1-5585@127.0.0.1\r\n"
    b"CSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"sip.test\", nonce=\"awmGh2sJ+QEu\", qop=\"auth\"\r\n"
    b"Proxy-Authenticate: Digest realm=\"p\", nonce=\"n\", algorithm=SHA-256-sess, qop=\"auth,auth-int\", opaque=\"o\", stale=true\r\n"
    b"Content-Length: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\nv: SIP/2.0/TCP [::1]:5060;branch=z9hG4bK2, SIP/2.0/UDP a.b;branch=3\r\n"
    b"f: \"A \\\"B\\\", C\" <sip:a@b>;tag=1\r\nt: sip:a@b;tag=2\r\ni: x\r\nCSeq: 2 REGISTER\r\n"
    b"m: <sip:a@127.0.0.1:5070;transport=UDP>;expires=120, <sip:b@c>;q=0.5\r\nRetry-After: 30 (busy);duration=60\r\n"
    b"Subject: folded\r\n  line\r\nl: 5\r\n\r\nhello",
    b"\r\n\r\nOPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\nTo: sip:j_user@example.com\n"
    b"From: sip:caller@example.org;tag=33242\nCall-ID: semiuri\nCSeq: 8 OPTIONS\nVia: SIP/2.0/UDP 192.0.2.1;branch=z\nl: 0\n\n",
]


def _chunks(data: bytes, sizes: bytes):
    pos, k = 0, 0
    while pos < len(data):
        size = 1 + (sizes[k % len(sizes)] if sizes else 64)
        yield data[pos:pos + size]
        pos += size
        k += 1


def test_one_input(data: bytes) -> None:
    sizes, payload = data[:4], data[4:]
    message = None
    try:
        message = parse_message(payload, SMALL)
    except ParseError:
        pass
    parser = StreamParser(SMALL)
    try:
        for chunk in _chunks(payload, sizes):
            parser.feed(chunk)
    except ParseError:
        pass
    parser.take_pings()

    text = payload.decode("utf-8", "replace")
    for parse in (SipUri.parse, NameAddr.parse, Via.parse, parse_cseq, parse_retry_after, parse_challenges):
        try:
            parse(text)
        except BadHeaderValue:
            pass

    if isinstance(message, Response):
        try:
            parse_contacts(message.headers)
        except BadHeaderValue:
            pass
        client = DigestClient("alice", "pw", cnonce_factory=lambda: "c")
        try:
            client.handle_challenge(message)
            client.authorization_headers("REGISTER", "sip:sip.test")
        except DigestError:
            pass


def write_seeds(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    for i, seed in enumerate(SEEDS):
        with open(os.path.join(directory, f"seed{i}"), "wb") as f:
            f.write(b"\x10\x03\x40\x00" + seed)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        write_seeds(sys.argv[2])
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
