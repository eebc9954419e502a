"""Parser: real peer messages, RFC 4475 torture messages, limits, stream framing, properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipphones.sip import errors
from sipphones.sip.errors import ParseError
from sipphones.sip.headers import Via, parse_cseq, parse_vias
from sipphones.sip.uri import NameAddr, SipUri, parse_contacts
from sipphones.sip.message import Headers, Request, Response
from sipphones.sip.parser import Limits, StreamParser, is_keepalive, parse_message


def crlf(text: str) -> bytes:
    """Test messages are written with \\n; the wire uses CRLF."""
    return text.replace("\n", "\r\n").encode("utf-8")


# --- real peers (sip-test-peers.md §3.5, §4, §5) ----------------------------------------------

SIPP_REGISTER = crlf("""\
REGISTER sip:sip.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-5585-1-0
Max-Forwards: 70
From: <sip:alice@sip.test>;tag=5585SIPpTag1
To: <sip:alice@sip.test>
Call-ID: 1-5585@127.0.0.1
CSeq: 1 REGISTER
Contact: <sip:alice@127.0.0.1:5070;transport=UDP>
Expires: 3600
User-Agent: sipp-register-test
Content-Length: 0

""")

KAMAILIO_401 = crlf("""\
SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-5585-1-0;rport=5070
From: <sip:alice@sip.test>;tag=5585SIPpTag1
To: <sip:alice@sip.test>;tag=b27e1a1d33761e85846fc98f5f3a7e58.3b1e0000
Call-ID: 1-5585@127.0.0.1
CSeq: 1 REGISTER
WWW-Authenticate: Digest realm="sip.test", nonce="awmGh2sJhVurq+QEuFOgHthnsK6QDUNX", qop="auth"
Server: kamailio (5.6.3 (x86_64/linux))
Content-Length: 0

""")

KAMAILIO_200 = crlf("""\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-5585-1-1;rport=5070
From: <sip:alice@sip.test>;tag=5585SIPpTag1
To: <sip:alice@sip.test>;tag=b27e1a1d33761e85846fc98f5f3a7e58.cf8c0000
Call-ID: 1-5585@127.0.0.1
CSeq: 2 REGISTER
Contact: <sip:alice@127.0.0.1:5070;transport=UDP>;expires=3600
Server: kamailio (5.6.3 (x86_64/linux))
Content-Length: 0

""")

BARESIP_REGISTER = crlf("""\
REGISTER sip:sip.test SIP/2.0
Via: SIP/2.0/TLS 127.0.0.1:5080;branch=z9hG4bK8e1f2c3a4b5d6e7f;rport
Contact: <sip:alice-0x5610@127.0.0.1:5080;transport=tls>;expires=3600
Max-Forwards: 70
To: <sip:alice@sip.test>
From: <sip:alice@sip.test>;tag=7a8bb0f6a3c2d1e0
Call-ID: 4e2a61c3b9d87f10
CSeq: 28012 REGISTER
User-Agent: baresip v1.0.0 (x86_64/linux)
Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE
Supported: replaces,norefersub,100rel
Content-Length: 0

""")


def test_sipp_register():
    msg = parse_message(SIPP_REGISTER)
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri, msg.version) == ("REGISTER", "sip:sip.test", "SIP/2.0")
    assert parse_cseq(msg.headers.get("CSeq")).number == 1
    assert msg.headers.get("Expires") == "3600"
    assert msg.body == b""


def test_kamailio_401():
    msg = parse_message(KAMAILIO_401)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (401, "Unauthorized")
    via = parse_vias(msg.headers)[0]
    assert via.branch == "z9hG4bK-5585-1-0" and via.rport == 5070
    assert msg.headers.get("www-authenticate").startswith('Digest realm="sip.test"')
    assert NameAddr.parse(msg.headers.get("To")).tag == "b27e1a1d33761e85846fc98f5f3a7e58.3b1e0000"


def test_kamailio_200_contact_expires():
    msg = parse_message(KAMAILIO_200)
    [contact] = parse_contacts(msg.headers)
    assert contact.expires == 3600
    assert contact.uri == SipUri(host="127.0.0.1", user="alice", port=5070, params={"transport": "UDP"})


def test_baresip_register():
    msg = parse_message(BARESIP_REGISTER)
    via = parse_vias(msg.headers)[0]
    assert via.transport == "TLS" and via.has_rport and via.rport is None
    assert msg.headers.values("Allow")[:2] == ["INVITE", "ACK"]
    assert parse_contacts(msg.headers)[0].uri.params == {"transport": "tls"}


# --- RFC 4475 §3.1.1 valid messages --------------------------------------------------------

SDP_150 = crlf("""\
v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
""")

WSINV = crlf(r"""INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

""") + SDP_150


def test_rfc4475_wsinv_short_tortuous_invite():
    assert len(SDP_150) == 150
    msg = parse_message(WSINV)
    assert isinstance(msg, Request) and msg.method == "INVITE"
    assert msg.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    h = msg.headers
    to = NameAddr.parse(h.get("To"))
    assert to.tag == "1918181833n" and to.display_name is None
    frm = NameAddr.parse(h.get("From"))
    assert frm.display_name == 'J Rosenberg \\"' and frm.tag == "98asjd8"
    assert h.get("Max-Forwards") == "0068"
    assert parse_cseq(h.get("CSeq")) == parse_cseq("9 INVITE")
    assert h.get("Subject") == ""
    assert h.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert h.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    vias = parse_vias(h)
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    [contact] = parse_contacts(h)
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert contact.q == 0.33
    route = NameAddr.parse(h.get("Route"))
    assert route.uri.params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    assert msg.body == SDP_150


INTMETH = (
    b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:"
    b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"
    b"To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\r\n"
    b"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
    + "\"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439\"".encode() +
    b";tag=_token~1'+`*%!-.\r\n"
    b"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"
    b"CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"
    b"Max-Forwards: 255\r\n"
    b"extensionHeader-!.%*+_`'~:" + "\ufeff\u5927\u505c\u96fb".encode() + b"\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_rfc4475_intmeth_wide_range_of_valid_characters():
    msg = parse_message(INTMETH)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    uri = SipUri.parse(msg.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com"
    to = NameAddr.parse(msg.headers.get("To"))
    assert to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    frm = NameAddr.parse(msg.headers.get("From"))
    assert frm.display_name == "token1~` token2'+_ token3*%!.-"
    assert frm.params["fromparam''~+*_!.-%"] == "\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"
    assert frm.tag == "_token~1'+`*%!-."
    assert msg.headers.get("Call-ID") == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"


ESC01 = crlf("""\
INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: 150

""") + SDP_150


def test_rfc4475_esc01_escaped_uris():
    msg = parse_message(ESC01)
    assert SipUri.parse(msg.uri).user == "sips:user@example.com"
    assert NameAddr.parse(msg.headers.get("To")).uri.user == "user"
    assert NameAddr.parse(msg.headers.get("From")).uri.user == "I have spaces"
    assert msg.headers.get("Content-Type") == "application/sdp"
    assert msg.headers.get("Call-ID") == "esc01.239409asdfakjkn23onasd0-3234"
    contact = parse_contacts(msg.headers)[0]
    assert contact.uri.user == "caller"
    assert contact.uri.params == {"lr": None, "name": "value%41"}


ESCNULL = crlf("""\
REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0

""")


def test_rfc4475_escnull_escaped_nulls_in_uris():
    msg = parse_message(ESCNULL)
    assert NameAddr.parse(msg.headers.get("To")).uri.user == "null-\x00-null"
    assert [c.uri.user for c in parse_contacts(msg.headers)] == ["\x00", "\x00\x00"]
    assert str(parse_contacts(msg.headers)[1].uri) == "sip:%00%00@host5.example.com"


ESC02 = crlf("""\
RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;rport;branch=z9hG4bK209~%3Faaa
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
CSeq: 1 RE%47IST%45R
l: 0

""")


def test_rfc4475_esc02_percent_is_not_an_escape_in_method_or_header_names():
    msg = parse_message(ESC02)
    assert msg.method == "RE%47IST%45R"      # an unknown method, not REGISTER
    assert NameAddr.parse(msg.headers.get("To")).display_name == "%Z%45"
    assert [c.uri.user for c in parse_contacts(msg.headers)] == ["alias1", "alias3"]
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


LWSDISP = crlf("""\
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0

""")

SEMIURI = crlf("""\
OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0

""")

TRANSPORTS = crlf("""\
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0

""")

SDP_154 = crlf("""\
v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.198
s=-
c=IN IP4 192.0.2.198
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
""")

UNREASON = crlf("""\
SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>

""") + SDP_154

NOREASON = crlf("""\
SIP/2.0 100 \nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

""")

DBLREQ = crlf("""\
REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0


INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: 150

""") + SDP_150


def test_rfc4475_lwsdisp_no_space_before_angle_bracket():
    frm = NameAddr.parse(parse_message(LWSDISP).headers.get("From"))
    assert frm.display_name == "caller" and frm.uri.user == "caller" and frm.tag == "323"


def test_rfc4475_semiuri_semicolon_in_user_part():
    msg = parse_message(SEMIURI)
    uri = SipUri.parse(msg.uri)
    assert (uri.user, uri.host, uri.params) == ("user;par=u@example.net", "example.com", {})
    assert msg.headers.values("Accept") == [
        "application/sdp", "application/pkcs7-mime", "multipart/mixed", "multipart/signed",
        "message/sip", "message/sipfrag"]


def test_rfc4475_transports_unknown_transport_in_via():
    vias = parse_vias(parse_message(TRANSPORTS).headers)
    assert [v.transport for v in vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_rfc4475_unreason_utf8_reason_phrase():
    msg = parse_message(UNREASON)
    assert msg.status == 200 and msg.reason.endswith("\u043f\u0440\u043e\u0441\u0442\u043e\u0435")
    assert msg.body == SDP_154 and len(SDP_154) == 154


def test_rfc4475_noreason_empty_reason_phrase():
    msg = parse_message(NOREASON)
    assert (msg.status, msg.reason) == (100, "")


def test_rfc4475_dblreq_extra_bytes_in_a_datagram_are_discarded():
    msg = parse_message(DBLREQ)
    assert msg.method == "REGISTER" and msg.body == b""


def test_rfc4475_dblreq_is_two_messages_on_a_stream():
    msgs = StreamParser().feed(DBLREQ)
    # the blank line between them is a CRLF "pong" between messages on a stream
    assert [m.method for m in msgs] == ["REGISTER", "INVITE"]
    assert msgs[1].body == SDP_150


def test_long_request_within_limits():
    long_user = "amazinglylongcallername" * 40
    lines = [
        f"INVITE sip:{long_user}@example.net SIP/2.0",
        f"To: \"{'I have a user name of extreme proportion ' * 20}\" <sip:{long_user}@example.net>",
        f"From: sip:{long_user}@example.net;tag=12{'982' * 200}",
        "Call-ID: longreq." + "onereallyreallyreallyreallyreallyreallyreallyreallylongcallid" * 20,
        "CSeq: 3882340 INVITE",
        "Max-Forwards: 70",
    ]
    lines += [f"Via: SIP/2.0/TCP sip{i}.example.com;branch=z9hG4bK{'x' * 300}{i}" for i in range(30)]
    lines += [f"X-Header-{i}: {'value ' * 100}" for i in range(50)]
    data = ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()
    assert len(data) > 40000
    msg = parse_message(data)
    assert len(parse_vias(msg.headers)) == 30
    assert SipUri.parse(msg.uri).user == long_user


# --- RFC 4475 §3.1.2 invalid messages --------------------------------------------------------

INVALID = {
    "badinv01 extraneous header field separators": ("""\
INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: 0

""", errors.BadHeaderValue),
    "clerr content length larger than message": ("""\
INVITE sip:user@example.com SIP/2.0
Max-Forwards: 80
To: sip:j.user@example.com
From: sip:caller@example.net;tag=93942939o2
Contact: <sip:caller@hungry.example.net>
Call-ID: clerr.0ha0isndaksdjweiafasdk3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523
Content-Type: application/sdp
Content-Length: 9999

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.155
""", errors.IncompleteMessage),
    "ncl negative content length": ("""\
INVITE sip:user@example.com SIP/2.0
Max-Forwards: 254
To: sip:j.user@example.com
From: sip:caller@example.net;tag=32394234
Call-ID: ncl.0ha0isndaksdj2193423r542w35
CSeq: 0 INVITE
Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw
Content-Type: application/sdp
Content-Length: -999

v=0
""", errors.BadContentLength),
    "scalar02 out of range values": ("""\
REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: 1293020219491843102391839482
Contact: <sip:user@host129.example.com>;expires=280297596632815
Content-Length: 0

""", errors.BadHeaderValue),
    "scalarlg large numbers in a response": ("""\
SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture "In Progress"
Content-Length: 0

""", errors.BadHeaderValue),
    "quotbal unterminated quoted string in display name": ("""\
INVITE sip:user@example.com SIP/2.0
To: "Mr. J. User <sip:j.user@example.com>
From: sip:caller@example.net;tag=93334
Max-Forwards: 10
Call-ID: quotbal.aksdj
Contact: <sip:caller@host59.example.net>
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234
Content-Length: 0

""", errors.BadHeaderValue),
    "ltgtruri request-uri in angle brackets": ("""\
INVITE <sip:user@example.com> SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=39291
Max-Forwards: 23
Call-ID: ltgtruri.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5
Content-Length: 0

""", errors.BadStartLine),
    "lwsruri LWS within request-uri": ("""\
INVITE sip:user@example.com; lr SIP/2.0
To: sip:user@example.com;tag=3xfe-9921883-z9f
From: sip:caller@example.net;tag=231413434
Max-Forwards: 5
Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423
CSeq: 2130706432 INVITE
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395
Content-Length: 0

""", errors.BadStartLine),
    "lwsstart multiple SP in request line": ("""\
INVITE  sip:user@example.com  SIP/2.0
Max-Forwards: 8
To: sip:user@example.com
From: sip:caller@example.net;tag=8814
Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com
CSeq: 1893884 INVITE
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923
Content-Length: 0

""", errors.BadStartLine),
    "trws trailing whitespace in request line": ("""\
OPTIONS sip:remote-target@example.com SIP/2.0  \nVia: SIP/2.0/TCP host1.example.com;branch=z9hG4bK299342093
To: <sip:remote-target@example.com>
From: <sip:local-resource@example.com>;tag=329429089
Call-ID: trws.oicu34958239neffasdhr2345r
Accept: application/sdp
CSeq: 238923 OPTIONS
Max-Forwards: 70
Content-Length: 0

""", errors.BadStartLine),
    "escruri escaped headers in request-uri": ("""\
INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=341518
Max-Forwards: 7
Contact: <sip:caller@host39923.example.net>
Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5
CSeq: 39234 INVITE
Via: SIP/2.0/UDP host-of-the-caller.example.net;branch=z9hG4bKkdjuw
Content-Length: 0

""", errors.BadStartLine),
    "baddn unquoted display name with comma": ("""\
OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0

""", errors.BadHeaderValue),
    "badvers unknown protocol version": ("""\
OPTIONS sip:t.watson@example.org SIP/7.0
Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw
Max-Forwards:     70
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe
To:      T. Watson <sip:t.watson@example.org>
Call-ID: badvers.31417@c.example.com
CSeq:    1 OPTIONS
l: 0

""", errors.UnsupportedVersion),
    "mismatch01 method mismatch": ("""\
OPTIONS sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch01.dj0234sxdfl3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
l: 0

""", errors.MethodMismatch),
    "mismatch02 unknown method with CSeq mismatch": ("""\
NEWMETHOD sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch02.dj0234sxdfl3
CSeq: 8 INVITE
Contact: <sip:caller@host.example.net>
Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw
Content-Type: application/sdp
l: 0

""", errors.MethodMismatch),
    "bigcode response with overlarge status code": ("""\
SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

""", errors.BadStartLine),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_rfc4475_invalid_messages_raise_typed_errors(name):
    text, expected = INVALID[name]
    with pytest.raises(expected) as info:
        parse_message(crlf(text))
    assert isinstance(info.value, ParseError)


def test_rfc4475_regbadct_unbracketed_contact_with_header_part():
    value = "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    with pytest.raises(errors.BadHeaderValue):
        NameAddr.parse(value, "Contact")


# --- syntax features ------------------------------------------------------------------------

MINIMAL_HEADERS = (
    "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\n"
    "From: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: x\nCSeq: 1 OPTIONS\n"
)


def request(extra: str = "", body: str = "", cl: str | None = "auto") -> bytes:
    cl_line = f"Content-Length: {len(body.encode()) if cl == 'auto' else cl}\n" if cl is not None else ""
    return crlf(f"OPTIONS sip:b SIP/2.0\n{MINIMAL_HEADERS}{extra}{cl_line}\n{body}")


def test_compact_forms_are_expanded():
    data = crlf("""\
REGISTER sip:sip.test SIP/2.0
v: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1
f: <sip:a@sip.test>;tag=1
t: <sip:a@sip.test>
i: abc
CSeq: 1 REGISTER
m: <sip:a@127.0.0.1>
k: path
c: text/plain
s: hello
l: 2

hi""")
    h = parse_message(data).headers
    assert [name for name, _ in h] == [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Supported", "Content-Type", "Subject",
        "Content-Length"]


def test_header_names_are_case_insensitive():
    msg = parse_message(request("cOnTaCt: <sip:x@y>\nEXPIRES: 5\n"))
    assert msg.headers.get("Contact") == "<sip:x@y>" and msg.headers.get("expires") == "5"


def test_folding_joins_with_one_space():
    msg = parse_message(request("Subject: first   \n\t  second\n   third\n"))
    assert msg.headers.get("Subject") == "first second third"


def test_repeated_and_comma_joined_via_in_order():
    data = crlf("""\
SIP/2.0 200 OK
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2
v: SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK3;received=2001:db8::9;rport=5061
From: <sip:a@b>;tag=1
To: <sip:a@b>;tag=2
Call-ID: x
CSeq: 1 OPTIONS
Content-Length: 0

""")
    vias = parse_vias(parse_message(data).headers)
    assert [(v.transport, v.host, v.port, v.branch) for v in vias] == [
        ("UDP", "a.example.com", None, "z9hG4bK1"),
        ("TCP", "b.example.com", 5070, "z9hG4bK2"),
        ("TLS", "2001:db8::1", 5061, "z9hG4bK3"),
    ]
    assert vias[2].received == "2001:db8::9" and vias[2].rport == 5061


def test_quoted_strings_with_escapes_and_commas_in_contact_list():
    msg = parse_message(request(
        'Contact: "Doe, \\"JD\\" John" <sip:jd@a.example>;q=0.7, <sip:x@b.example>;expires=60\n'
        "Contact: sip:y@c.example;expires=30\n"))
    contacts = parse_contacts(msg.headers)
    assert [c.display_name for c in contacts] == ['Doe, "JD" John', None, None]
    assert [c.expires for c in contacts] == [None, 60, 30]
    assert [str(c.uri) for c in contacts] == ["sip:jd@a.example", "sip:x@b.example", "sip:y@c.example"]


def test_leading_crlf_before_start_line_is_ignored():
    assert parse_message(b"\r\n\r\n\r\n" + request()).method == "OPTIONS"


def test_lf_only_line_endings_are_accepted():
    data = request("Subject: a\n b\n", "body").replace(b"\r\n", b"\n")
    msg = parse_message(data)
    assert msg.headers.get("Subject") == "a b" and msg.body == b"body"


def test_bare_cr_in_headers_is_rejected():
    with pytest.raises(errors.BadHeader):
        parse_message(request("Subject: a\rVia: SIP/2.0/UDP evil\n"))


def test_body_is_kept_as_bytes_even_when_not_utf8():
    body = bytes(range(256))
    data = crlf(f"OPTIONS sip:b SIP/2.0\n{MINIMAL_HEADERS}Content-Length: 256\n\n") + body
    assert parse_message(data).body == body


def test_udp_body_without_content_length_is_the_rest_of_the_datagram():
    msg = parse_message(request(body="abc", cl=None))
    assert msg.body == b"abc"


def test_udp_bytes_after_content_length_are_discarded():
    assert parse_message(request(body="abcdef", cl="3")).body == b"abc"


def test_multiple_equal_content_lengths_are_accepted():
    assert parse_message(request("l: 2\n", "hi")).body == b"hi"


@pytest.mark.parametrize("data, error", [
    (request("Content-Length: 3\n", "hi"), errors.BadContentLength),          # conflicting
    (request(cl="1e3"), errors.BadContentLength),
    (request(cl=""), errors.BadContentLength),
    (request(cl="0, 0"), errors.BadContentLength),
    (request(cl="99999999999999999999999"), errors.BodyTooLarge),
    (crlf("OPTIONS sip:b SIP/2.0\n") + b"\xff\xfe: x\r\n\r\n", errors.BadEncoding),
    (request("X-Name: caf\xe9\n").replace("é".encode(), b"\xe9"), errors.BadEncoding),
    (request().replace(b"\r\n\r\n", b"\r\n"), errors.IncompleteMessage),
    (b"\r\n\r\n", errors.EmptyMessage),
    (b"", errors.EmptyMessage),
    (request("NoColonHere\n"), errors.BadHeader),
    (request("Bad Name: x\n"), errors.BadHeader),
    (request(": empty name\n"), errors.BadHeader),
    (crlf(" folded-first: x\nOPTIONS sip:b SIP/2.0\n\n"), errors.BadStartLine),
    (request().replace(b"OPTIONS sip:b SIP/2.0\r\n", b"OPTIONS sip:b SIP/2.0\r\n continuation\r\n"), errors.BadHeader),
    (request().replace(b"SIP/2.0\r\n", b"SIP/2.0x\r\n", 1), errors.BadStartLine),
    (request().replace(b"sip:b", b"nocolon"), errors.BadStartLine),
    (request().replace(b"OPTIONS", b"OPT(IONS"), errors.BadStartLine),
    (b"SIP/2.0 20 OK\r\n\r\n", errors.BadStartLine),
    (b"SIP/2.0 099 Low\r\n\r\n", errors.BadStartLine),
    (b"SIP/2.0\r\n\r\n", errors.BadStartLine),
    (b"SIP/3.0 200 OK\r\n\r\n", errors.UnsupportedVersion),
    (crlf("OPTIONS sip:b SIP/2.0\nCall-ID: x\nContent-Length: 0\n\n"), errors.MissingHeader),
    (request("Call-ID: y\n"), errors.MissingHeader),
    (request("Max-Forwards: 256\n"), errors.BadHeaderValue),
    (request("Max-Forwards: -1\n"), errors.BadHeaderValue),
    (request().replace(b"Call-ID: x", b"Call-ID: x y"), errors.BadHeaderValue),
    (request().replace(b"CSeq: 1 OPTIONS", b"CSeq: OPTIONS"), errors.BadHeaderValue),
    (request().replace(b"branch=z9hG4bK1", b"branch=z9hG4bK1;rport=70000"), errors.BadHeaderValue),
    (request().replace(b"<sip:a@b>;tag=1", b"<sip:a@b;tag=1"), errors.BadHeaderValue),
])
def test_malformed_messages_raise_typed_errors(data, error):
    with pytest.raises(error):
        parse_message(data)


def test_validation_can_be_switched_off():
    data = crlf("OPTIONS sip:b SIP/2.0\nContent-Length: 0\n\n")
    with pytest.raises(errors.MissingHeader):
        parse_message(data)
    assert parse_message(data, validate=False).method == "OPTIONS"


def test_is_keepalive():
    assert is_keepalive(b"\r\n\r\n") and is_keepalive(b"\r\n")
    assert not is_keepalive(b"") and not is_keepalive(request())


# --- limits ---------------------------------------------------------------------------------


def test_oversized_datagram():
    data = request(body="x" * 70000)
    with pytest.raises(errors.MessageTooLarge):
        parse_message(data)
    assert parse_message(data, Limits(max_message_bytes=100000, max_body_bytes=100000)).body == b"x" * 70000


def test_body_limit():
    with pytest.raises(errors.BodyTooLarge):
        parse_message(request(body="x" * 200), Limits(max_body_bytes=100))


def test_too_many_headers():
    extra = "".join(f"X-H{i}: {i}\n" for i in range(130))
    with pytest.raises(errors.TooManyHeaders):
        parse_message(request(extra))
    assert len(parse_message(request(extra), Limits(max_headers=200)).headers) == 136


def test_header_line_too_long_including_folded_lines():
    with pytest.raises(errors.HeaderTooLong):
        parse_message(request("Subject: " + "a" * 9000 + "\n"))
    folded = "Subject: " + "\n ".join(["a" * 100] * 90) + "\n"
    with pytest.raises(errors.HeaderTooLong):
        parse_message(request(folded))
    with pytest.raises(errors.HeaderTooLong):
        parse_message(b"OPTIONS sip:" + b"a" * 9000 + b" SIP/2.0\r\n\r\n")


# --- stream framing -------------------------------------------------------------------------


def three_messages() -> bytes:
    return SIPP_REGISTER + KAMAILIO_401 + request(body="hello")


def test_stream_byte_by_byte():
    parser = StreamParser()
    out = []
    for b in three_messages():
        out += parser.feed(bytes([b]))
    assert [type(m).__name__ for m in out] == ["Request", "Response", "Request"]
    assert out[2].body == b"hello"
    assert out[0] == parse_message(SIPP_REGISTER)
    assert parser.buffered == 0


@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_stream_any_chunking_gives_the_same_messages(cuts):
    data = three_messages() * 2
    expected = StreamParser().feed(data)
    parser = StreamParser()
    out, pos, k = [], 0, 0
    while pos < len(data):
        size = cuts[k % len(cuts)]
        out += parser.feed(data[pos:pos + size])
        pos += size
        k += 1
    assert out == expected and len(out) == 6


def test_stream_requires_content_length():
    with pytest.raises(errors.MissingContentLength) as info:
        StreamParser().feed(request(cl=None))
    assert isinstance(info.value, errors.BadContentLength)


def test_stream_crlf_ping_and_pong():
    parser = StreamParser()
    assert parser.feed(b"\r\n\r\n") == []
    assert (parser.pings, parser.pongs) == (1, 0)
    assert parser.feed(b"\r\n\r\n\r\n\r\n" + SIPP_REGISTER + b"\r\n") != []
    assert parser.pings == 3 and parser.take_pings() == 3 and parser.take_pings() == 0
    assert parser.pongs == 1                          # the lone CRLF at the end
    assert parser.feed(b"\r\n") == []                 # ...completes a ping split over two reads
    assert parser.pings == 4 and parser.take_pings() == 1


def test_stream_ping_fed_byte_by_byte():
    parser = StreamParser()
    for b in b"\r\n\r\n":
        assert parser.feed(bytes([b])) == []
    assert parser.pings == 1 and parser.take_pings() == 1


def test_stream_pong_is_reported_without_waiting():
    parser = StreamParser()
    parser.feed(b"\r\n")
    assert parser.pongs == 1 and parser.pings == 0
    assert parser.feed(SIPP_REGISTER)[0].method == "REGISTER"
    assert parser.pings == 0


def test_stream_oversized_headers_without_end():
    parser = StreamParser(Limits(max_message_bytes=1000))
    with pytest.raises(errors.MessageTooLarge):
        for _ in range(20):
            parser.feed(b"X-Junk: " + b"a" * 90 + b"\r\n")


def test_stream_oversized_content_length_fails_before_the_body_arrives():
    parser = StreamParser(Limits(max_message_bytes=1000, max_body_bytes=1000))
    with pytest.raises(errors.MessageTooLarge):
        parser.feed(request(cl="990"))


def test_stream_error_keeps_earlier_messages_and_breaks_the_stream():
    parser = StreamParser()
    with pytest.raises(errors.BadStartLine) as info:
        parser.feed(SIPP_REGISTER + b"garbage here\r\n\r\n")
    assert [m.method for m in info.value.messages] == ["REGISTER"]
    with pytest.raises(errors.BadStartLine):
        parser.feed(SIPP_REGISTER)


# --- properties -----------------------------------------------------------------------------

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
                min_size=1, max_size=12)
HOST = st.one_of(
    st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z][a-z0-9]{0,8}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=40,
).map(lambda s: s.strip(" \t"))
UNICODE_WORD = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=12)


@st.composite
def sip_uris(draw):
    return SipUri(
        host=draw(HOST),
        user=draw(st.none() | UNICODE_WORD),
        port=draw(st.none() | st.integers(1, 65535)),
        scheme=draw(st.sampled_from(["sip", "sips"])),
        params=draw(st.dictionaries(TOKEN.map(str.lower), st.none() | TOKEN, max_size=3)),
    )


@st.composite
def name_addrs(draw, tag: bool):
    params = draw(st.dictionaries(TOKEN.map(str.lower), st.none() | TOKEN, max_size=2))
    if tag:
        params["tag"] = draw(TOKEN)
    display = draw(st.none() | SAFE_TEXT.filter(bool))
    return NameAddr(uri=draw(sip_uris()), display_name=display, params=params)


@st.composite
def common_headers(draw, method: str) -> Headers:
    h = Headers()
    for _ in range(draw(st.integers(1, 3))):
        via = Via(transport=draw(st.sampled_from(["UDP", "TCP", "TLS"])), host=draw(HOST),
                  port=draw(st.none() | st.integers(1, 65535)),
                  params={"branch": "z9hG4bK" + draw(TOKEN), **({"rport": None} if draw(st.booleans()) else {})})
        h.add("Via", str(via))
    h.add("From", str(draw(name_addrs(True))))
    h.add("To", str(draw(name_addrs(draw(st.booleans())))))
    h.add("Call-ID", draw(TOKEN))
    h.add("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}")
    names = st.one_of(TOKEN.map(lambda t: "X-" + t), st.sampled_from(["Subject", "User-Agent", "Expires", "Contact-Info"]))
    for name, value in draw(st.lists(st.tuples(names, SAFE_TEXT), max_size=8)):
        h.add(name, value)
    return h


@st.composite
def messages(draw):
    body = draw(st.binary(max_size=300))
    if draw(st.booleans()):
        method = draw(st.sampled_from(["REGISTER", "OPTIONS", "INVITE", "NOTIFY"]) | TOKEN)
        msg = Request(method, str(draw(sip_uris())), draw(common_headers(method)), body)
    else:
        method = draw(st.sampled_from(["REGISTER", "OPTIONS"]))
        msg = Response(draw(st.integers(100, 699)), draw(SAFE_TEXT), draw(common_headers(method)), body)
    return msg


def without_content_length(msg):
    msg.headers.remove("Content-Length")
    return msg


@given(messages())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_round_trip(msg):
    data = msg.to_bytes()
    assert without_content_length(parse_message(data)) == msg
    assert [without_content_length(m) for m in StreamParser().feed(data + data)] == [msg, msg]


@given(messages(), st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_equivalent_encodings_parse_the_same(msg, data):
    """Compact names, odd case, LWS before the colon, folding and LF-only lines change nothing."""
    compact = {"via": "v", "from": "f", "to": "t", "call-id": "i", "contact": "m", "subject": "s"}
    lines = [msg.to_bytes().split(b"\r\n", 1)[0].decode()]
    for name, value in msg.headers:
        if data.draw(st.booleans()) and name.lower() in compact:
            name = compact[name.lower()]
        name = "".join(c.upper() if data.draw(st.booleans()) else c.lower() for c in name)
        sep = data.draw(st.sampled_from([":", " :", "\t: ", ":   "]))
        words = value.split(" ")
        # Fold only at a single space between words that do not themselves begin or end with white
        # space: a fold next to a tab would join the two into one run of LWS, which the parser
        # rightly reads as one SP (RFC 3261 7.3.1), so it would not be an equivalent encoding.
        if len(words) > 1 and data.draw(st.booleans()) and all(w and w.strip() == w for w in words):
            k = data.draw(st.integers(1, len(words) - 1))
            value = " ".join(words[:k]) + "\r\n " + " ".join(words[k:])
        lines.append(f"{name}{sep}{value}")
    lines.append(f"Content-Length: {len(msg.body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + msg.body
    if data.draw(st.booleans()):
        head, _, body = raw.partition(b"\r\n\r\n")
        raw = head.replace(b"\r\n", b"\n") + b"\n\n" + body
    assert without_content_length(parse_message(raw)) == msg


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_property_arbitrary_bytes_raise_only_parse_errors(data):
    try:
        parse_message(data)
    except ParseError:
        pass
    try:
        StreamParser().feed(data)
    except ParseError:
        pass


@st.composite
def mutated(draw):
    base = bytearray(draw(st.sampled_from([
        SIPP_REGISTER, KAMAILIO_401, KAMAILIO_200, BARESIP_REGISTER, WSINV, INTMETH, ESC01, UNREASON,
    ])))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "truncate", "special"]))
        if not base:
            break
        pos = draw(st.integers(0, len(base) - 1))
        if op == "flip":
            base[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            base[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del base[pos:pos + draw(st.integers(1, 20))]
        elif op == "dup":
            base[pos:pos] = base[pos:pos + draw(st.integers(1, 200))]
        elif op == "truncate":
            del base[pos:]
        else:
            base[pos:pos] = draw(st.sampled_from([b"\r", b"\n", b"\r\n", b"\r\n ", b":", b";", b",", b'"', b"\\",
                                                  b"<", b">", b"%", b"=", b"\xff", b"\x00", b"9" * 30]))
    return bytes(base)


@given(mutated(), st.integers(1, 64))
@settings(max_examples=300, deadline=None)
def test_property_mutated_messages_raise_only_parse_errors(data, chunk):
    try:
        parse_message(data)
    except ParseError:
        pass
    parser = StreamParser()
    try:
        for i in range(0, len(data), chunk):
            parser.feed(data[i:i + chunk])
    except ParseError:
        pass
