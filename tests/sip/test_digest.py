"""Digest client: published vectors, independent SIP computations, client state, a real peer."""

from __future__ import annotations

import hashlib
import itertools
import re
import shutil
import socket
import subprocess
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipphones.sip.digest import (
    SUPPORTED_ALGORITHMS, DigestChallenge, DigestClient, build_authorization, canonical_algorithm,
    challenges_in, digest_response, select_challenges,
)
from sipphones.sip.errors import DigestError
from sipphones.sip.headers import parse_challenges
from sipphones.sip.message import Headers, Request, Response
from sipphones.sip.parser import parse_message


def params_of(header_value: str) -> dict[str, str]:
    [c] = parse_challenges(header_value, "Authorization")
    assert c.scheme == "Digest"
    return c.params


def raw_params(header_value: str) -> dict[str, str]:
    """Parameter values as written (quotes kept), to check what is quoted and what is not."""
    return {m.group(1): m.group(2) for m in re.finditer(r'([a-z]+)=("(?:[^"\\]|\\.)*"|[^,]*)', header_value)}


def h(name: str, text: str) -> str:
    return hashlib.new(name, text.encode()).hexdigest()


# --- published vectors ----------------------------------------------------------------------


def test_rfc2617_section_3_5_example():
    challenge = DigestChallenge.parse(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    value = build_authorization(challenge, username="Mufasa", password="Circle Of Life", method="GET",
                                uri="/dir/index.html", cnonce="0a4f113b", nc=1)
    p = params_of(value)
    assert p["response"] == "6629fae49393a05397450978507c4ef1"
    assert p == {
        "username": "Mufasa", "realm": "testrealm@host.com", "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "uri": "/dir/index.html", "response": "6629fae49393a05397450978507c4ef1", "algorithm": "MD5",
        "cnonce": "0a4f113b", "qop": "auth", "nc": "00000001", "opaque": "5ccc069c403ebaf9f0171e9517f40e41",
    }


RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


@pytest.mark.parametrize("algorithm, response", [
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
])
def test_rfc7616_section_3_9_1_examples(algorithm, response):
    challenge = DigestChallenge.parse(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"')
    value = build_authorization(challenge, username="Mufasa", password="Circle of Life", method="GET",
                                uri="/dir/index.html", cnonce=RFC7616_CNONCE, nc=1)
    p = params_of(value)
    assert p["response"] == response
    assert (p["algorithm"], p["qop"], p["nc"], p["opaque"], p["realm"]) == (
        algorithm, "auth", "00000001", RFC7616_OPAQUE, "http-auth@example.org")


def test_rfc7616_section_3_9_2_sha512_256_userhash_with_erratum_4897():
    # The RFC's printed hashes were made with a pre-standard SHA-512/256; erratum 4897 has these.
    challenge = DigestChallenge.parse(
        'Digest realm="api@example.org", qop="auth", algorithm=SHA-512-256, '
        'nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", '
        'opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", charset=UTF-8, userhash=true')
    value = build_authorization(challenge, username="J\u00e4s\u00f8n Doe", password="Secret, or not?",
                                method="GET", uri="/doe.json",
                                cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", nc=1)
    p = params_of(value)
    assert p["username"] == "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
    assert p["response"] == "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"
    assert p["userhash"] == "true" and p["algorithm"] == "SHA-512-256"


def test_sha512_256_is_available_here():
    # hashlib's "sha512_256" is FIPS 180-4 SHA-512/256 (not a truncated SHA-512).
    assert "SHA-512-256" in SUPPORTED_ALGORITHMS
    assert hashlib.new("sha512_256", b"abc").hexdigest() == \
        "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
    assert hashlib.new("sha512_256", b"abc").hexdigest() != hashlib.sha512(b"abc").hexdigest()[:64]


def test_rfc2069_no_qop_example():
    challenge = DigestChallenge.parse(
        'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    value = build_authorization(challenge, username="Mufasa", password="CircleOfLife", method="GET",
                                uri="/dir/index.html")
    p = params_of(value)
    assert p["response"] == "1949323746fe6a43ef61f9606e7febea"
    assert "qop" not in p and "nc" not in p and "cnonce" not in p


# --- SIP computations, checked against an independent hashlib computation ------------------------

KAM_NONCE = "awmGh2sJhVurq+QEuFOgHthnsK6QDUNX"


def test_sip_register_md5_qop_auth_from_first_principles():
    challenge = DigestChallenge.parse(f'Digest realm="sip.test", nonce="{KAM_NONCE}", qop="auth"')
    value = build_authorization(challenge, username="alice", password="alicepw", method="REGISTER",
                                uri="sip:sip.test", cnonce="6b8b4567", nc=1)
    ha1 = hashlib.md5(b"alice:sip.test:alicepw").hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:sip.test").hexdigest()
    expected = hashlib.md5(f"{ha1}:{KAM_NONCE}:00000001:6b8b4567:auth:{ha2}".encode()).hexdigest()
    assert params_of(value)["response"] == expected


@pytest.mark.parametrize("algorithm, hname", [
    ("MD5-sess", "md5"), ("SHA-256", "sha256"), ("SHA-256-sess", "sha256"),
    ("SHA-512-256", "sha512_256"), ("SHA-512-256-sess", "sha512_256"),
])
def test_algorithms_from_first_principles(algorithm, hname):
    challenge = DigestChallenge.parse(f'Digest realm="ccmsipline", nonce="n0nce", qop="auth", algorithm={algorithm}')
    value = build_authorization(challenge, username="1001", password="pw:with:colons", method="REGISTER",
                                uri="sip:pbx.example.com:5061;transport=tls", cnonce="c0ffee", nc=7)
    ha1 = h(hname, "1001:ccmsipline:pw:with:colons")
    if algorithm.endswith("-sess"):
        ha1 = h(hname, f"{ha1}:n0nce:c0ffee")
    ha2 = h(hname, "REGISTER:sip:pbx.example.com:5061;transport=tls")
    p = params_of(value)
    assert p["response"] == h(hname, f"{ha1}:n0nce:00000007:c0ffee:auth:{ha2}")
    assert p["algorithm"] == algorithm and p["nc"] == "00000007"


def test_auth_int_hashes_the_body():
    challenge = DigestChallenge.parse('Digest realm="r", nonce="n", qop="auth-int", algorithm=SHA-256')
    body = b"v=0\r\n"
    value = build_authorization(challenge, username="u", password="p", method="INVITE", uri="sip:bob@r",
                                cnonce="c", nc=2, body=body)
    ha1 = h("sha256", "u:r:p")
    ha2 = h("sha256", f"INVITE:sip:bob@r:{hashlib.sha256(body).hexdigest()}")
    p = params_of(value)
    assert p["qop"] == "auth-int"
    assert p["response"] == h("sha256", f"{ha1}:n:00000002:c:auth-int:{ha2}")


def test_digest_response_function_directly():
    assert digest_response(algorithm="md5", username="Mufasa", realm="testrealm@host.com", password="Circle Of Life",
                           nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", method="GET", uri="/dir/index.html",
                           qop="auth", nc=1, cnonce="0a4f113b") == "6629fae49393a05397450978507c4ef1"
    with pytest.raises(ValueError):
        digest_response(algorithm="MD5", username="u", realm="r", password="p", nonce="n", method="M", uri="u", qop="auth")


def test_quoting_of_the_authorization_value():
    challenge = DigestChallenge.parse('Digest realm="we \\"quote\\" \\\\ this", nonce="n,1", qop="auth", opaque="o"')
    value = build_authorization(challenge, username='al"ice', password="p", method="REGISTER", uri="sip:a@b",
                                cnonce="c", nc=1)
    raw = raw_params(value)
    for quoted in ("username", "realm", "nonce", "uri", "response", "cnonce", "opaque"):
        assert raw[quoted].startswith('"'), quoted
    for bare in ("qop", "nc", "algorithm"):
        assert not raw[bare].startswith('"'), bare
    p = params_of(value)
    assert p["realm"] == 'we "quote" \\ this' and p["username"] == 'al"ice' and p["nonce"] == "n,1"
    assert value.startswith("Digest ")


def test_canonical_algorithm():
    assert canonical_algorithm(None) == "MD5"
    assert canonical_algorithm("md5-SESS") == "MD5-sess"
    assert canonical_algorithm(" sha-512-256 ") == "SHA-512-256"
    assert canonical_algorithm("AKAv1-MD5") == "AKAV1-MD5"


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    'Digest realm="r", nonce="n", algorithm=AKAv1-MD5',
    'Digest realm="r", nonce="n", algorithm=SHA-1',
    'Digest realm="r", nonce="n", qop="auth-conf"',
    'Digest realm="r", nonce="n", algorithm=MD5-sess',        # -sess needs a qop (and so a cnonce)
])
def test_unanswerable_challenges(value):
    challenge = DigestChallenge.parse(value)
    assert not challenge.supported
    with pytest.raises(DigestError):
        build_authorization(challenge, username="u", password="p", method="REGISTER", uri="sip:r", cnonce="c")
    with pytest.raises(DigestError):
        select_challenges([challenge])


@pytest.mark.parametrize("value", ['Basic realm="r"', 'Digest nonce="n"', 'Digest realm="r"', "", "Digest realm=\"x"])
def test_not_a_usable_digest_challenge(value):
    with pytest.raises(DigestError):
        DigestChallenge.parse(value)


def test_client_refuses_response_without_challenge():
    client = DigestClient("u", "p", cnonce_factory=lambda: "c")
    with pytest.raises(DigestError):
        client.handle_challenge(Response(401, "Unauthorized"))
    with pytest.raises(DigestError):
        client.handle_challenge(response(401, ("WWW-Authenticate", 'Basic realm="x"')))
    with pytest.raises(DigestError):
        client.handle_challenge(response(401, ("WWW-Authenticate", 'Digest realm="x", nonce="n", algorithm=FOO')))


# --- the client -----------------------------------------------------------------------------


def response(status: int, *headers: tuple[str, str]) -> Response:
    return Response(status, "Unauthorized" if status == 401 else "Proxy Authentication Required", Headers(list(headers)))


def counter_cnonce():
    numbers = itertools.count(1)
    return lambda: f"cn{next(numbers):04d}"


def register(uri: str = "sip:sip.test") -> Request:
    return Request("REGISTER", uri, Headers([("CSeq", "1 REGISTER")]))


def test_client_answers_401_and_preauthorizes_with_rising_nc():
    client = DigestClient("alice", "alicepw", cnonce_factory=counter_cnonce())
    result = client.handle_challenge(response(401, ("WWW-Authenticate", f'Digest realm="sip.test", nonce="{KAM_NONCE}", qop="auth"')))
    assert not result.stale and not result.repeated and result.realms == ("sip.test",)
    seen = []
    for _ in range(3):
        req = client.authorize(register())
        [value] = req.headers.get_all("Authorization")
        seen.append(params_of(value))
    assert [p["nc"] for p in seen] == ["00000001", "00000002", "00000003"]
    assert [p["cnonce"] for p in seen] == ["cn0001", "cn0002", "cn0003"]
    assert {p["nonce"] for p in seen} == {KAM_NONCE}
    for p in seen:   # each one verifies independently
        ha1 = hashlib.md5(b"alice:sip.test:alicepw").hexdigest()
        ha2 = hashlib.md5(b"REGISTER:sip:sip.test").hexdigest()
        assert p["response"] == hashlib.md5(f"{ha1}:{KAM_NONCE}:{p['nc']}:{p['cnonce']}:auth:{ha2}".encode()).hexdigest()


def test_authorize_replaces_old_credentials_and_uses_the_exact_request_uri():
    client = DigestClient("alice", "alicepw", cnonce_factory=counter_cnonce())
    client.handle_challenge(response(401, ("WWW-Authenticate", 'Digest realm="sip.test", nonce="n", qop="auth"')))
    req = register("sip:sip.test;transport=tcp")
    req.headers.add("Authorization", "Digest stale")
    client.authorize(req)
    [value] = req.headers.get_all("Authorization")
    assert params_of(value)["uri"] == "sip:sip.test;transport=tcp"


def test_stale_nonce_is_reported_and_the_new_nonce_restarts_nc():
    client = DigestClient("alice", "alicepw", cnonce_factory=counter_cnonce())
    client.handle_challenge(response(401, ("WWW-Authenticate", 'Digest realm="sip.test", nonce="old", qop="auth"')))
    client.authorize(register())
    client.authorize(register())
    result = client.handle_challenge(response(401, ("WWW-Authenticate", 'Digest realm="sip.test", nonce="new", qop="auth", stale=TRUE')))
    assert result.stale and not result.repeated
    p = params_of(client.authorize(register()).headers.get("Authorization"))
    assert (p["nonce"], p["nc"]) == ("new", "00000001")


def test_rechallenge_without_stale_is_reported_as_repeated():
    client = DigestClient("alice", "wrong", cnonce_factory=counter_cnonce())
    first = response(401, ("WWW-Authenticate", 'Digest realm="sip.test", nonce="n1", qop="auth"'))
    assert not client.handle_challenge(first).repeated      # nothing sent yet
    assert not client.handle_challenge(first).repeated      # still nothing sent
    client.authorize(register())
    result = client.handle_challenge(response(401, ("WWW-Authenticate", 'Digest realm="sip.test", nonce="n2", qop="auth"')))
    assert result.repeated and not result.stale


def test_same_nonce_rechallenged_keeps_counting():
    client = DigestClient("alice", "alicepw", cnonce_factory=counter_cnonce())
    challenge = response(401, ("WWW-Authenticate", 'Digest realm="sip.test", nonce="same", qop="auth"'))
    client.handle_challenge(challenge)
    client.authorize(register())
    client.handle_challenge(challenge)
    assert params_of(client.authorize(register()).headers.get("Authorization"))["nc"] == "00000002"


def test_opaque_is_echoed():
    client = DigestClient("u", "p", cnonce_factory=counter_cnonce())
    client.handle_challenge(response(401, ("WWW-Authenticate", 'Digest realm="r", nonce="n", opaque="0p/aq+ue=="')))
    assert params_of(client.authorize(register()).headers.get("Authorization"))["opaque"] == "0p/aq+ue=="


def test_407_is_answered_with_proxy_authorization():
    client = DigestClient("u", "p", cnonce_factory=counter_cnonce())
    client.handle_challenge(response(407, ("Proxy-Authenticate", 'Digest realm="proxy.example", nonce="pn", qop="auth"')))
    req = client.authorize(register())
    assert req.headers.get("Authorization") is None
    assert params_of(req.headers.get("Proxy-Authorization"))["realm"] == "proxy.example"
    # later the registrar challenges too: both are kept and both are answered
    client.handle_challenge(response(401, ("WWW-Authenticate", 'Digest realm="sip.test", nonce="wn", qop="auth"')))
    req = client.authorize(register())
    assert params_of(req.headers.get("Proxy-Authorization"))["nc"] == "00000002"
    assert params_of(req.headers.get("Authorization"))["nc"] == "00000001"
    assert client.challenged and len(client.challenges) == 2
    client.forget()
    assert not client.challenged and client.authorize(register()).headers.get("Authorization") is None


def test_strongest_supported_challenge_is_chosen_per_realm():
    r = response(401,
                 ("WWW-Authenticate", 'Digest realm="r", nonce="a", qop="auth", algorithm=MD5'),
                 ("WWW-Authenticate", 'Digest realm="r", nonce="b", qop="auth", algorithm=SHA-256-sess, '
                                      'Digest realm="r", nonce="c", qop="auth", algorithm=SHA-256'),
                 ("WWW-Authenticate", 'Digest realm="r", nonce="d", qop="auth", algorithm=FUTURE-HASH'),
                 ("WWW-Authenticate", 'Digest realm="other", nonce="e", qop="auth"'))
    assert [c.nonce for c in challenges_in(r)] == ["a", "b", "c", "d", "e"]
    strongest = DigestClient("u", "p", cnonce_factory=counter_cnonce())
    assert [c.nonce for c in strongest.handle_challenge(r).challenges] == ["c", "e"]
    first = DigestClient("u", "p", cnonce_factory=counter_cnonce(), policy="first")
    assert [c.nonce for c in first.handle_challenge(r).challenges] == ["a", "e"]
    assert len(strongest.authorize(register()).headers.get_all("Authorization")) == 2


def test_rfc8760_ordering_sha512_256_over_sha256_over_md5():
    r = response(401, *[("WWW-Authenticate", f'Digest realm="r", nonce="{a}", qop="auth", algorithm={a}')
                        for a in ("MD5", "SHA-256", "SHA-512-256")])
    client = DigestClient("u", "p", cnonce_factory=counter_cnonce())
    assert client.handle_challenge(r).challenges[0].algorithm == "SHA-512-256"


def test_unreadable_header_next_to_a_good_one_is_skipped():
    r = response(401, ("WWW-Authenticate", 'Digest realm="broken'), ("WWW-Authenticate", 'Digest realm="r", nonce="n"'))
    client = DigestClient("u", "p", cnonce_factory=counter_cnonce())
    assert client.handle_challenge(r).realms == ("r",)


def test_realm_comes_from_the_challenge_not_the_domain():
    client = DigestClient("1001", "pw", cnonce_factory=counter_cnonce())
    client.handle_challenge(response(401, ("WWW-Authenticate", 'Digest realm="ccmsipline", nonce="n", algorithm=MD5')))
    p = params_of(client.authorize(register("sip:cucm.example.com")).headers.get("Authorization"))
    assert p["realm"] == "ccmsipline"
    assert p["response"] == hashlib.md5(
        f"{h('md5', '1001:ccmsipline:pw')}:n:{h('md5', 'REGISTER:sip:cucm.example.com')}".encode()).hexdigest()


def test_sess_keeps_one_cnonce_per_nonce():
    client = DigestClient("u", "p", cnonce_factory=counter_cnonce())
    client.handle_challenge(response(401, ("WWW-Authenticate", 'Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess')))
    a = params_of(client.authorize(register()).headers.get("Authorization"))
    b = params_of(client.authorize(register()).headers.get("Authorization"))
    assert a["cnonce"] == b["cnonce"] and (a["nc"], b["nc"]) == ("00000001", "00000002")
    ha1 = h("md5", f"{h('md5', 'u:r:p')}:n:{a['cnonce']}")
    assert b["response"] == h("md5", f"{ha1}:n:00000002:{b['cnonce']}:auth:{h('md5', 'REGISTER:sip:sip.test')}")


def test_client_repr_hides_the_password():
    client = DigestClient("alice", "s3cr3t-pa55", cnonce_factory=lambda: "c")
    assert "s3cr3t" not in repr(client) and "s3cr3t" not in str(client)


@given(st.text(min_size=1, max_size=30).filter(lambda s: "\r" not in s and "\n" not in s),
       st.text(max_size=30), st.sampled_from(list(SUPPORTED_ALGORITHMS)))
@settings(max_examples=100, deadline=None)
def test_property_authorization_value_parses_back(username, password, algorithm):
    challenge = DigestChallenge(realm='r"\\,', nonce="n,\"x\"", algorithm=algorithm, qop=("auth",), opaque="o")
    value = build_authorization(challenge, username=username, password=password, method="REGISTER",
                                uri="sip:r", cnonce="c", nc=1)
    p = params_of(value)
    assert (p["username"], p["realm"], p["nonce"], p["opaque"]) == (username, 'r"\\,', 'n,"x"', "o")


# --- a real peer: SIPp's verifyauth checks our MD5 qop=auth answer --------------------------------

UAS_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="registrar UAS with digest">
  <recv request="REGISTER" timeout="10000" ontimeout="done"/>
  <send>
    <![CDATA[
      SIP/2.0 401 Unauthorized
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      WWW-Authenticate: Digest realm="sip.test", nonce="[pid]n[call_number]x[clock_tick]", algorithm=MD5, qop="auth", opaque="op4que"
      Content-Length: 0

    ]]>
  </send>
  <recv request="REGISTER" timeout="10000" ontimeout="done">
    <action>
      <verifyauth assign_to="authvalid" username="alice" password="alicepw"/>
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="good"/>
  <send next="done">
    <![CDATA[
      SIP/2.0 403 Forbidden
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="good"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:]
      Content-Length: 0

    ]]>
  </send>
  <label id="done"/>
</scenario>
"""


@pytest.fixture
def sipp_registrar(tmp_path):
    if shutil.which("sipp") is None:
        pytest.fail("sipp is not installed (apt-get install sip-tester)")
    scenario = tmp_path / "uas.xml"
    scenario.write_text(UAS_SCENARIO)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    proc = subprocess.Popen(["sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Until sipp holds the port, the test's own socket (bound to port 0) could be given that
        # very port and talk to itself: wait (bounded) until the port is taken.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            check = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                check.bind(("127.0.0.1", port))
            except OSError:
                break           # taken: sipp listens
            finally:
                check.close()
            time.sleep(0.02)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)


def exchange(sock: socket.socket, data: bytes, port: int) -> Response:
    """Send with a simple bounded retransmission (sipp may still be starting)."""
    for _attempt in range(20):
        sock.sendto(data, ("127.0.0.1", port))
        try:
            reply, _ = sock.recvfrom(65536)
        except TimeoutError:
            continue
        msg = parse_message(reply)
        assert isinstance(msg, Response)
        return msg
    raise AssertionError("no answer from sipp")


@pytest.mark.peers
@pytest.mark.parametrize("password, expected", [("alicepw", 200), ("wrong", 403)])
def test_sipp_verifies_our_digest(sipp_registrar, password, expected):
    port = sipp_registrar
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.25)
    local = sock.getsockname()[1]
    try:
        def build(cseq: int) -> Request:
            return Request("REGISTER", "sip:sip.test", Headers([
                ("Via", f"SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{cseq}x{time.monotonic_ns()};rport"),
                ("Max-Forwards", "70"), ("From", "<sip:alice@sip.test>;tag=t1"), ("To", "<sip:alice@sip.test>"),
                ("Call-ID", f"digest-test-{local}"), ("CSeq", f"{cseq} REGISTER"),
                ("Contact", f"<sip:alice@127.0.0.1:{local}>"), ("Expires", "60")]))
        first = exchange(sock, build(1).to_bytes(), port)
        assert first.status == 401
        client = DigestClient("alice", password, cnonce_factory=counter_cnonce())
        client.handle_challenge(first)
        second = exchange(sock, client.authorize(build(2)).to_bytes(), port)
        assert second.status == expected
    finally:
        sock.close()
