"""The registration machines driven by a fake clock and canned responses.

No sockets: there is no real peer for a state machine that never touches one (the real-peer
tests with kamailio and sipp drive it through the asyncio driver). Every request the machine
emits goes through the wire format (``to_bytes`` then the parser) before the test looks at it,
and every response is built from that parsed request the way a registrar builds it (Via, From,
To, Call-ID, CSeq copied) and parsed again before it is fed back. Digest responses are verified
here with hashlib, independently of the digest module.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from sipphones.phones.models import ServerSet, SipPhone, Transport
from sipphones.sip.config import (
    ConfigError,
    RegistrationPolicy,
    Target,
    TargetTransport,
    TransactionTimers,
)
from sipphones.registration_config import registration_config
from sipphones.sip.headers import Via, parse_challenges
from sipphones.sip.uri import NameAddr
from sipphones.sip.message import Headers, Request, Response
from sipphones.sip.parser import parse_message
from sipphones.sip.events import (
    CheckFinished,
    Connect,
    Expired,
    FailedBack,
    FailedOver,
    Registered,
    RegistrationFailed,
    RegistrationState,
    Release,
    Resolve,
    ResultKind,
    Send,
    SetTimer,
    Stopped,
    Unregistered,
)
from sipphones.sip.registration import Registration
from sipphones.sip.registration_check import RegistrationCheck

LOCAL = ("127.0.0.1", 5070)
PASSWORD = "s3cret pw"


def phone(*servers: ServerSet, user_name: str = "alice", auth: str = "alice-auth",
          domain: str = "sip.test", minutes: int = 60) -> SipPhone:
    sets = list(servers) or [ServerSet("127.0.0.1", "", Transport.UDP)]
    while len(sets) < 3:
        sets.append(ServerSet())
    return SipPhone(id="ph1", account_id="acc", user_email="alice@example.com", user_name=user_name,
                    authorization_name=auth, password=PASSWORD, domain=domain, servers=tuple(sets),
                    registration_expire_time=minutes)


THREE = (ServerSet("127.0.0.1", "", Transport.UDP), ServerSet("127.0.0.2", "", Transport.UDP),
         ServerSet("127.0.0.3", "", Transport.UDP))


def udp(host: str, port: int = 5060) -> Target:
    return Target(host, port, TargetTransport.UDP)


# --- a fake driver -----------------------------------------------------------------------------


class Harness:
    """Performs the machine's actions the way the asyncio driver will, with a fake clock.

    ``Connect`` is answered at once with ``LOCAL`` (or with a transport error for targets in
    ``refuse``), unless ``auto_connect`` is off. Requests sent are parsed from their bytes and
    kept in ``sent`` as (time, slot, target, request, retransmission).
    """

    def __init__(self, machine, *, auto_connect: bool = True, local=LOCAL):
        self.m = machine
        self.now = 0.0
        self.timer_at: float | None = None
        self.sent: list[tuple[float, int, Target, Request, bool]] = []
        self.reports: list[object] = []
        self.actions: list[object] = []
        self.resolves: list[Resolve] = []
        self.connects: list[Connect] = []
        self.releases: list[Release] = []
        self.auto_connect = auto_connect
        self.local = local
        self.refuse: dict[Target, ResultKind] = {}

    def feed(self, outputs) -> None:
        queue = list(outputs)
        while queue:
            out = queue.pop(0)
            self.actions.append(out)
            if isinstance(out, SetTimer):
                self.timer_at = out.at
            elif isinstance(out, Send):
                request = parse_message(out.data)
                assert isinstance(request, Request)
                self.sent.append((self.now, out.slot, out.target, request, out.retransmission))
            elif isinstance(out, Resolve):
                self.resolves.append(out)
            elif isinstance(out, Connect):
                self.connects.append(out)
                if out.target in self.refuse:
                    queue.extend(self.m.transport_error(out.slot, out.target, self.refuse[out.target],
                                                        self.now, "refused"))
                elif self.auto_connect:
                    queue.extend(self.m.connected(out.slot, out.target, *self.local, self.now))
            elif isinstance(out, Release):
                self.releases.append(out)
            else:
                self.reports.append(out)

    def start(self) -> "Harness":
        self.feed(self.m.start(self.now))
        return self

    def stop(self) -> None:
        self.feed(self.m.stop(self.now))

    def advance(self, to: float, limit: int = 10000) -> None:
        """Move the clock to ``to``, firing the timer at each deadline on the way."""
        for _ in range(limit):
            if self.timer_at is None or self.timer_at > to:
                self.now = max(self.now, to)
                return
            self.now = max(self.now, self.timer_at)
            self.feed(self.m.timer(self.now))
        raise AssertionError("timer loop did not settle")

    def last(self, slot: int | None = None) -> Request:
        for _, s, _, request, _ in reversed(self.sent):
            if slot is None or s == slot:
                return request
        raise AssertionError("nothing sent")

    def last_target(self) -> Target:
        return self.sent[-1][2]

    def respond(self, status: int, reason: str = "", headers=(), *, request: Request | None = None,
                after: float = 0.02) -> None:
        """Answer ``request`` (default: the last one sent) ``after`` seconds later."""
        request = request or self.last()
        self.now += after
        self.feed(self.m.receive(make_response(request, status, reason, headers), self.now))

    def ok(self, expires_param: int | None = None, headers=(), *, contact: str | None = None, **kw) -> None:
        request = kw.pop("request", None) or self.last()
        contacts = []
        if contact is None and expires_param is not None:
            ours = [c for c in request.headers.values("Contact") if "expires=0" not in c][0]
            contact = f"{ours};expires={expires_param}"
        if contact is not None:
            contacts.append(("Contact", contact))
        self.respond(200, "OK", contacts + list(headers), request=request, **kw)

    def challenge(self, *, realm: str = "sip.test", nonce: str = "n1", proxy: bool = False,
                  stale: bool = False, algorithm: str = "MD5", opaque: str | None = None, **kw) -> None:
        value = f'Digest realm="{realm}", nonce="{nonce}", algorithm={algorithm}, qop="auth"'
        if opaque:
            value += f', opaque="{opaque}"'
        if stale:
            value += ", stale=true"
        if proxy:
            self.respond(407, "Proxy Authentication Required", [("Proxy-Authenticate", value)], **kw)
        else:
            self.respond(401, "Unauthorized", [("WWW-Authenticate", value)], **kw)

    def reports_of(self, kind) -> list:
        return [r for r in self.reports if isinstance(r, kind)]

    def requests(self, slot: int | None = None, retransmissions: bool = False) -> list[Request]:
        return [r for _, s, _, r, re_ in self.sent if (slot is None or s == slot) and (retransmissions or not re_)]


def make_response(request: Request, status: int, reason: str = "", headers=()) -> Response:
    h = Headers()
    for via in request.headers.get_all("Via"):
        h.add("Via", via.replace(";rport", ";rport=5070;received=127.0.0.1", 1))
    h.add("From", request.headers.get("From"))
    h.add("To", request.headers.get("To") + ";tag=registrar")
    h.add("Call-ID", request.headers.get("Call-ID"))
    h.add("CSeq", request.headers.get("CSeq"))
    for name, value in headers:
        h.add(name, value)
    resp = parse_message(Response(status, reason or "Reason", h).to_bytes())
    assert isinstance(resp, Response)
    return resp


def machine(p: SipPhone | None = None, *, seed: int = 7, **policy) -> Registration:
    cfg = registration_config(p or phone())
    return Registration(cfg, rng=random.Random(seed), policy=RegistrationPolicy(**policy))


def cseq(request: Request) -> int:
    return int(request.headers.get("CSeq").split()[0])


def branch(request: Request) -> str:
    return Via.parse(request.headers.values("Via")[0]).branch


def auth_params(value: str) -> dict[str, str]:
    (challenge,) = parse_challenges(value, "Authorization")
    assert challenge.scheme == "Digest"
    return dict(challenge.params)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def expected_digest(params: dict[str, str], *, username: str, password: str, method: str = "REGISTER") -> str:
    ha1 = md5(f"{username}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{params['uri']}")
    return md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}")


# --- configuration from the phone record ---------------------------------------------------------


def test_config_maps_the_phone_record():
    p = phone(ServerSet("pbx.example.com", "", Transport.TLS), ServerSet("10.0.0.2:5080", "", Transport.TCP),
              ServerSet("[2001:db8::1]", "", None), user_name="john doe", auth="jd-auth", minutes=7)
    cfg = registration_config(p, user_agent="ua/1")
    assert cfg.request_uri == "sip:sip.test"
    assert cfg.aor == "sip:john%20doe@sip.test"
    assert cfg.auth_username == "jd-auth"
    assert cfg.expires == 7 * 60
    assert cfg.user_agent == "ua/1"
    assert "s3cret" not in repr(cfg)
    s1, s2, s3 = cfg.server_sets
    assert s1.static_targets() is None                       # a host name: the driver resolves
    assert s2.static_targets() == [Target("10.0.0.2", 5080, TargetTransport.TCP)]
    assert s3.transport is Transport.UDP                      # no transport given: the default (phones.fields)
    assert s3.static_targets() == [Target("2001:db8::1", 5060, TargetTransport.UDP)]
    assert [s.route for s in cfg.server_sets] == [None, None, None]


def test_config_default_tls_port_and_auto_with_ip_is_udp():
    cfg = registration_config(phone(ServerSet("192.0.2.1", "", Transport.TLS),
                                    ServerSet("192.0.2.2", "", Transport.AUTO)))
    assert cfg.server_sets[0].static_targets() == [Target("192.0.2.1", 5061, TargetTransport.TLS)]
    assert cfg.server_sets[1].static_targets() == [Target("192.0.2.2", 5060, TargetTransport.UDP)]


def test_config_outbound_proxy_is_next_hop_with_route():
    cfg = registration_config(phone(ServerSet("registrar.example.com", "127.0.0.9:5062", Transport.UDP),
                                    ServerSet("127.0.0.2", "127.0.0.2", Transport.TCP)))
    s1, s2 = cfg.server_sets
    assert s1.static_targets() == [Target("127.0.0.9", 5062, TargetTransport.UDP)]
    assert s1.route == "<sip:127.0.0.9:5062;lr>"
    assert s2.route is None          # the proxy is the registrar itself


def test_config_errors():
    with pytest.raises(ConfigError):
        registration_config(phone(ServerSet(), ServerSet(), ServerSet()))
    with pytest.raises(ConfigError):
        registration_config(phone(ServerSet("not a host", "", Transport.UDP)))
    with pytest.raises(ConfigError):
        RegistrationPolicy(jitter=1.5)


# --- the first REGISTER --------------------------------------------------------------------------


def test_first_register_is_built_as_specified():
    h = Harness(machine(phone(user_name="john doe"))).start()
    assert [c.target for c in h.connects] == [udp("127.0.0.1")]
    assert h.m.state is RegistrationState.REGISTERING
    req = h.last()
    assert req.method == "REGISTER" and req.uri == "sip:sip.test"
    via = Via.parse(req.headers.values("Via")[0])
    assert (via.transport, via.host, via.port) == ("UDP", "127.0.0.1", 5070)
    assert via.has_rport and via.branch.startswith("z9hG4bK") and len(via.branch) > 7 + 16
    assert req.headers.get("Max-Forwards") == "70"
    frm, to = NameAddr.parse(req.headers.get("From")), NameAddr.parse(req.headers.get("To"))
    assert str(frm.uri) == str(to.uri) == "sip:john%20doe@sip.test"
    assert frm.uri.user == "john doe"
    assert frm.tag and to.tag is None
    assert req.headers.get("CSeq") == "1 REGISTER"
    (contact,) = [NameAddr.parse(c) for c in req.headers.values("Contact")]
    assert str(contact.uri) == "sip:john%20doe@127.0.0.1:5070;transport=udp"
    assert req.headers.get("Expires") == "3600"
    assert req.headers.get("User-Agent")
    assert "Authorization" not in req.headers and "Route" not in req.headers
    assert h.timer_at == pytest.approx(0.5)       # Timer E over UDP


def test_route_header_when_registering_through_an_outbound_proxy():
    h = Harness(machine(phone(ServerSet("registrar.example.com", "127.0.0.9", Transport.UDP)))).start()
    assert h.last_target() == udp("127.0.0.9")
    assert h.last().uri == "sip:sip.test"
    assert h.last().headers.get("Route") == "<sip:127.0.0.9;lr>"


def test_200_registers_with_rtt_and_granted_expiry_from_our_contact():
    h = Harness(machine()).start()
    h.ok(expires_param=1800, headers=[("Expires", "999")], after=0.042)
    assert h.m.state is RegistrationState.REGISTERED
    (reg,) = h.reports_of(Registered)
    assert reg.slot == 1 and reg.target == udp("127.0.0.1")
    assert reg.expires == 1800
    assert reg.rtt == pytest.approx(0.042)
    assert h.m.granted_expires == 1800 and h.m.last_rtt == pytest.approx(0.042)
    assert h.m.last_status == 200 and h.m.last_kind is ResultKind.REGISTERED
    assert h.m.active_slot == 1 and h.m.active_target == udp("127.0.0.1")
    assert h.m.expires_at == pytest.approx(1800.0)      # counted from when it was sent (t=0)
    assert h.m.refresh_at == pytest.approx(1800 - 60)   # the margin before expiry


def test_granted_expiry_falls_back_to_expires_header_then_to_the_request():
    h = Harness(machine()).start()
    h.ok(headers=[("Expires", "600")])
    assert h.m.granted_expires == 600
    assert h.m.refresh_at == pytest.approx(540)
    h2 = Harness(machine()).start()
    h2.ok()
    assert h2.m.granted_expires == 3600


def test_contact_of_another_device_is_not_ours():
    h = Harness(machine()).start()
    h.ok(contact="<sip:alice@192.0.2.50:5060>;expires=30, <sip:alice@127.0.0.1:5070;transport=udp>;expires=300")
    assert h.m.granted_expires == 300


def test_short_grant_refreshes_at_half():
    h = Harness(machine()).start()
    h.ok(expires_param=60)
    assert h.m.refresh_at == pytest.approx(30)


def test_grant_of_zero_is_a_failure():
    h = Harness(machine(phone(*THREE))).start()
    h.ok(expires_param=0)
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.REJECTED and failed.status == 200
    assert h.last_target() == udp("127.0.0.2")      # moved on


# --- refresh ---------------------------------------------------------------------------------------


def test_refresh_before_expiry_keeps_call_id_and_raises_cseq():
    h = Harness(machine()).start()
    first = h.last()
    h.challenge(nonce="abc")
    h.ok(expires_param=120)
    assert h.m.refresh_at == pytest.approx(0.02 + 60)      # sent at 0.02, half of 120
    h.advance(h.m.refresh_at - 0.001)
    assert len(h.requests()) == 2
    h.advance(h.m.refresh_at)
    refresh = h.last()
    assert len(h.requests()) == 3
    assert refresh.headers.get("Call-ID") == first.headers.get("Call-ID")
    assert NameAddr.parse(refresh.headers.get("From")).tag == NameAddr.parse(first.headers.get("From")).tag
    assert [cseq(r) for r in h.requests()] == [1, 2, 3]
    assert len({branch(r) for r in h.requests()}) == 3
    # the cached challenge answers the refresh at once, with the next nonce count
    params = auth_params(refresh.headers.get("Authorization"))
    assert params["nonce"] == "abc" and params["nc"] == "00000002"
    assert params["response"] == expected_digest(params, username="alice-auth", password=PASSWORD)
    assert h.m.state is RegistrationState.REGISTERED       # still registered while refreshing
    h.ok(expires_param=120)
    assert len(h.reports_of(Registered)) == 2
    assert h.m.expires_at == pytest.approx(h.sent[-1][0] + 120)


def test_refresh_jitter_only_makes_refreshes_earlier():
    times = []
    for seed in range(20):
        h = Harness(machine(seed=seed, jitter=0.2)).start()
        h.ok(expires_param=1000, after=0.0)
        times.append(h.m.refresh_at)
    assert all(0.8 * 940 - 1e-9 <= t <= 940 for t in times)
    assert len(set(times)) > 10                              # spread, not lock-step


def test_refresh_challenged_again_is_answered():
    """A registrar that challenges every REGISTER (SIPp's fake) must not look like a rejection."""
    h = Harness(machine(), ).start()
    h.challenge(nonce="n1")
    h.ok(expires_param=120)
    h.advance(h.m.refresh_at)
    h.challenge(nonce="n2")
    params = auth_params(h.last().headers.get("Authorization"))
    assert params["nonce"] == "n2" and params["nc"] == "00000001"
    h.ok(expires_param=120)
    assert h.m.state is RegistrationState.REGISTERED
    assert not h.reports_of(RegistrationFailed)


def test_binding_expires_when_refresh_does_not_succeed():
    h = Harness(machine(timers=TransactionTimers(t1=2.0))).start()   # Timer F = 128 s
    h.ok(expires_param=60)
    h.advance(30.0)                                   # refresh sent, never answered
    h.advance(60.0)
    assert h.reports_of(Expired) == [Expired(1)]
    assert h.m.state is RegistrationState.REGISTERING
    h.ok(expires_param=60)                            # the refresh finally answered
    assert h.m.state is RegistrationState.REGISTERED


# --- authentication --------------------------------------------------------------------------------


def test_401_then_authenticated_retry_with_correct_digest():
    h = Harness(machine(phone(user_name="john doe", auth="CUCM-user"))).start()
    first = h.last()
    h.challenge(realm="ccmsipline", nonce="nonce-1", opaque="op4que")
    second = h.last()
    assert cseq(second) == cseq(first) + 1
    assert second.headers.get("Call-ID") == first.headers.get("Call-ID")
    assert branch(second) != branch(first)
    params = auth_params(second.headers.get("Authorization"))
    assert params["username"] == "CUCM-user"
    assert params["realm"] == "ccmsipline"                  # from the challenge, not the domain
    assert params["uri"] == "sip:sip.test"                  # the Request-URI
    assert params["nonce"] == "nonce-1" and params["opaque"] == "op4que"
    assert params["qop"] == "auth" and params["nc"] == "00000001" and params["cnonce"]
    assert params["response"] == expected_digest(params, username="CUCM-user", password=PASSWORD)
    assert "Proxy-Authorization" not in second.headers
    h.ok(expires_param=3600)
    assert h.m.state is RegistrationState.REGISTERED


def test_407_is_answered_with_proxy_authorization_then_401_with_both():
    h = Harness(machine()).start()
    h.challenge(proxy=True, realm="proxy.test", nonce="p1")
    second = h.last()
    assert "Authorization" not in second.headers
    pp = auth_params(second.headers.get("Proxy-Authorization"))
    assert pp["realm"] == "proxy.test"
    assert pp["response"] == expected_digest(pp, username="alice-auth", password=PASSWORD)
    h.challenge(realm="sip.test", nonce="r1")               # the registrar behind the proxy
    third = h.last()
    assert auth_params(third.headers.get("Proxy-Authorization"))["nc"] == "00000002"
    ap = auth_params(third.headers.get("Authorization"))
    assert ap["realm"] == "sip.test"
    assert ap["response"] == expected_digest(ap, username="alice-auth", password=PASSWORD)
    h.ok()
    assert h.m.state is RegistrationState.REGISTERED


def test_stale_nonce_is_retried_without_counting_as_failure():
    h = Harness(machine(phone(*THREE))).start()
    h.challenge(nonce="old")
    h.challenge(nonce="fresh", stale=True)
    params = auth_params(h.last().headers.get("Authorization"))
    assert params["nonce"] == "fresh"
    assert params["response"] == expected_digest(params, username="alice-auth", password=PASSWORD)
    h.ok()
    assert h.m.state is RegistrationState.REGISTERED and h.m.active_slot == 1
    assert not h.reports_of(RegistrationFailed)
    assert [cseq(r) for r in h.requests()] == [1, 2, 3]


def test_endless_stale_is_a_rejection():
    h = Harness(machine(max_stale_retries=2)).start()
    h.challenge(nonce="a")
    for i in range(3):
        h.challenge(nonce=f"s{i}", stale=True)
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.AUTH_REJECTED


def test_second_401_means_rejected_and_no_failover():
    h = Harness(machine(phone(*THREE))).start()
    h.challenge(nonce="n1")
    h.challenge(nonce="n2")
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.AUTH_REJECTED and failed.status == 401 and failed.slot == 1
    assert h.m.state is RegistrationState.FAILED
    assert h.m.last_kind is ResultKind.AUTH_REJECTED
    assert {s for _, s, *_ in h.sent} == {1}                  # sets 2 and 3 untouched
    assert not h.reports_of(FailedOver)
    assert h.m.retry_at == pytest.approx(h.now + 1800)
    # no traffic until the rejected-retry interval, then from set 1 again
    h.advance(h.m.retry_at - 1)
    assert len(h.sent) == 2
    h.advance(h.m.retry_at)
    assert h.sent[-1][1] == 1 and len(h.sent) == 3
    assert "Authorization" not in h.last().headers            # bad credentials are not replayed


@pytest.mark.parametrize("status,kind", [(403, ResultKind.AUTH_REJECTED), (404, ResultKind.NOT_FOUND),
                                         (604, ResultKind.NOT_FOUND), (603, ResultKind.DECLINED)])
def test_403_404_6xx_are_final(status, kind):
    h = Harness(machine(phone(*THREE))).start()
    h.challenge()
    h.respond(status)
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is kind and failed.status == status
    assert h.m.state is RegistrationState.FAILED
    assert {s for _, s, *_ in h.sent} == {1}


def test_a_challenge_under_a_new_realm_after_an_answer_is_a_rejection():
    """A registrar that answers every REGISTER with a 401 of a new realm: one answer, then rejected."""
    h = Harness(machine(phone(*THREE))).start()
    h.challenge(realm="r0", nonce="n0")
    for i in range(1, 50):
        if h.reports_of(RegistrationFailed):
            break
        h.challenge(realm=f"r{i}", nonce=f"n{i}")
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.AUTH_REJECTED and failed.status == 401
    assert "realm" in failed.detail
    assert len(h.requests()) == 2                             # the first REGISTER and one answer
    assert h.m.state is RegistrationState.FAILED and h.m.retry_at == pytest.approx(h.now + 1800)
    assert {s for _, s, *_ in h.sent} == {1}


def test_alternating_401_and_407_is_bounded():
    """407 then 401 is proxy then registrar, both answered; a third challenge is a rejection."""
    h = Harness(machine()).start()
    for i in range(50):
        if h.reports_of(RegistrationFailed):
            break
        h.challenge(realm=f"r{i}", nonce=f"n{i}", proxy=i % 2 == 1)
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.AUTH_REJECTED
    assert len(h.requests()) == 3                             # first, answer to 401, answer to 407


def test_alternating_401_and_407_with_stale_is_bounded():
    h = Harness(machine()).start()
    for i in range(200):
        if h.reports_of(RegistrationFailed):
            break
        h.challenge(realm="r", nonce=f"n{i}", proxy=i % 2 == 1, stale=i > 1)
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.AUTH_REJECTED
    assert len(h.requests()) <= 2 + RegistrationPolicy().max_stale_retries + 1


def test_stale_for_a_realm_never_answered_is_a_rejection():
    h = Harness(machine()).start()
    h.challenge(realm="a", nonce="n1")
    h.challenge(realm="b", nonce="n2", stale=True)
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.AUTH_REJECTED


def test_rechallenge_loop_on_refresh_is_bounded_too():
    h = Harness(machine()).start()
    h.challenge(realm="r0", nonce="n0")
    h.ok(expires_param=120)
    h.advance(h.m.refresh_at)
    sent = len(h.requests())
    for i in range(1, 50):
        if h.reports_of(RegistrationFailed):
            break
        h.challenge(realm=f"r{i}", nonce=f"n{i}")
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.AUTH_REJECTED
    assert len(h.requests()) - sent <= 2


def test_unanswerable_challenge():
    h = Harness(machine(phone(*THREE))).start()
    h.respond(401, headers=[("WWW-Authenticate", 'Digest realm="x", nonce="y", algorithm=FOO-1')])
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.AUTH_UNSUPPORTED
    assert h.m.state is RegistrationState.FAILED


def test_unanswerable_challenge_with_an_enormous_algorithm_gives_a_short_detail():
    h = Harness(machine()).start()
    h.respond(401, headers=[("WWW-Authenticate", f'Digest realm="x", nonce="y", algorithm={"A" * 7000}')])
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.AUTH_UNSUPPORTED
    assert "unsupported algorithm AAA" in failed.detail and len(failed.detail) <= 203


# --- 423 ---------------------------------------------------------------------------------------


def test_423_raises_expires_to_min_expires_and_keeps_it_for_refreshes():
    h = Harness(machine(phone(minutes=1))).start()
    assert h.last().headers.get("Expires") == "60"
    h.respond(423, "Interval Too Brief", [("Min-Expires", "300")])
    again = h.last()
    assert again.headers.get("Expires") == "300" and cseq(again) == 2
    h.ok(expires_param=300)
    assert h.m.granted_expires == 300
    h.advance(h.m.refresh_at)
    assert h.last().headers.get("Expires") == "300"


def test_second_423_is_interval_too_brief_and_fails_over():
    h = Harness(machine(phone(*THREE, minutes=1))).start()
    h.respond(423, headers=[("Min-Expires", "300")])
    h.respond(423, headers=[("Min-Expires", "600")])
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.INTERVAL_TOO_BRIEF
    assert h.reports_of(FailedOver) == [FailedOver(1, 2, ResultKind.INTERVAL_TOO_BRIEF)]
    assert h.last_target() == udp("127.0.0.2")


# --- failover and fail-back --------------------------------------------------------------------------


def test_503_with_retry_after_fails_over_and_avoids_the_server():
    h = Harness(machine(phone(*THREE), probe_interval=10)).start()
    h.respond(503, "Service Unavailable", [("Retry-After", "30")])
    assert h.reports_of(FailedOver) == [FailedOver(1, 2, ResultKind.SERVER_ERROR)]
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.SERVER_ERROR and failed.status == 503
    assert h.last_target() == udp("127.0.0.2")
    assert h.m.slot_status(1, h.now).avoid_until == pytest.approx(0.02 + 30)
    h.ok()
    assert h.m.active_slot == 2
    # the probe of set 1 waits for Retry-After, not just the probe interval
    assert h.m.probe_at == pytest.approx(0.02 + 30)
    h.advance(25.0)
    assert {s for _, s, *_ in h.sent[2:]} <= {2}
    h.advance(h.m.probe_at)
    assert h.sent[-1][1] == 1                                 # probing set 1 now
    h.ok(request=h.last(1))
    assert h.reports_of(FailedBack) == [FailedBack(2, 1)]
    assert h.m.active_slot == 1


def test_absurd_retry_after_is_capped_and_reported():
    from sipphones.sip.events import RetryAfterCapped
    h = Harness(machine(phone(*THREE), max_retry_after=3600)).start()
    h.respond(503, "Service Unavailable", [("Retry-After", "99999999999999999")])
    assert h.m.slot_status(1, h.now).avoid_until == pytest.approx(0.02 + 3600)
    (capped,) = h.reports_of(RetryAfterCapped)
    assert (capped.slot, capped.target, capped.asked, capped.used) == (1, udp("127.0.0.1"), 4294967295, 3600)
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.SERVER_ERROR
    h.respond(503, "Service Unavailable", [("Retry-After", "99999999999999999")])
    h.respond(503, "Service Unavailable", [("Retry-After", "99999999999999999")])
    assert h.m.state is RegistrationState.FAILED
    h.advance(h.m.retry_at)                                   # a new round: every set is avoided
    assert len(h.sent) == 3
    assert h.m.retry_at == pytest.approx(0.02 + 3600)         # until the capped Retry-After of set 1
    h.advance(h.m.retry_at)
    assert len(h.sent) == 4 and h.sent[-1][1] == 1            # set 1 is tried again


def test_retry_after_below_the_cap_is_not_reported():
    from sipphones.sip.events import RetryAfterCapped
    h = Harness(machine(phone(*THREE))).start()
    h.respond(503, "Service Unavailable", [("Retry-After", "3600")])
    assert not h.reports_of(RetryAfterCapped)
    assert h.m.slot_status(1, h.now).avoid_until == pytest.approx(0.02 + 3600)


def test_max_retry_after_is_validated():
    with pytest.raises(ConfigError):
        RegistrationPolicy(max_retry_after=-1)
    with pytest.raises(ConfigError):
        RegistrationPolicy(sequence_budget=0)


def test_timeout_fails_over_after_timer_f():
    h = Harness(machine(phone(*THREE))).start()
    h.advance(31.9)
    assert h.m.active_slot is None and all(s == 1 for _, s, *_ in h.sent)
    h.advance(32.0)
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.TIMEOUT and failed.status is None
    assert h.reports_of(FailedOver) == [FailedOver(1, 2, ResultKind.TIMEOUT)]
    assert h.last_target() == udp("127.0.0.2")


def test_per_server_budget_fails_over_quickly():
    h = Harness(machine(phone(*THREE), timers=TransactionTimers(budget=4.0))).start()
    h.advance(4.0)
    assert h.last_target() == udp("127.0.0.2")
    assert [t for t, *_ in h.sent] == pytest.approx([0, 0.5, 1.5, 3.5, 4.0])
    h.advance(8.0)
    assert h.last_target() == udp("127.0.0.3")
    h.advance(12.0)
    assert h.m.state is RegistrationState.FAILED
    assert h.m.retry_at == pytest.approx(12.0 + 30)
    assert h.m.last_kind is ResultKind.TIMEOUT


def test_all_sets_failing_backs_off_and_starts_again_from_set_1():
    h = Harness(machine(phone(*THREE), timers=TransactionTimers(budget=1.0), retry_base=10, retry_max=25)).start()
    h.advance(3.0)
    assert h.m.retry_at == pytest.approx(13.0)
    h.advance(13.0)
    assert h.sent[-1][1] == 1 and h.sent[-1][0] == pytest.approx(13.0)
    h.advance(16.0)
    assert h.m.retry_at == pytest.approx(16.0 + 20)
    h.advance(36.0 + 3.0)
    assert h.m.retry_at == pytest.approx(39.0 + 25)          # capped


def test_three_server_failover_then_fail_back_to_set_1():
    tcp2 = Target("127.0.0.2", 5060, TargetTransport.TCP)
    p = phone(ServerSet("127.0.0.1", "", Transport.UDP), ServerSet("127.0.0.2", "", Transport.TCP),
              ServerSet("127.0.0.3", "", Transport.UDP))
    h = Harness(machine(p, timers=TransactionTimers(budget=2.0), probe_interval=60))
    h.refuse[tcp2] = ResultKind.CONNECTION_REFUSED
    h.start()
    h.advance(2.0)                                           # set 1: no answer
    assert h.reports_of(FailedOver) == [FailedOver(1, 2, ResultKind.TIMEOUT),
                                        FailedOver(2, 3, ResultKind.CONNECTION_REFUSED)]
    assert [r.kind for r in h.reports_of(RegistrationFailed)] == [ResultKind.TIMEOUT,
                                                                  ResultKind.CONNECTION_REFUSED]
    assert h.last_target() == udp("127.0.0.3")
    h.challenge()
    h.ok(expires_param=3600)
    assert h.m.active_slot == 3 and h.m.state is RegistrationState.REGISTERED
    reg3 = h.last(3)
    assert h.m.probe_at == pytest.approx(h.now + 60)
    # first probe: set 1 still dead, set 2 still refusing
    h.advance(h.m.probe_at)
    assert h.sent[-1][1] == 1
    h.advance(h.now + 2.0)
    probes = h.reports_of(RegistrationFailed)[2:]
    assert [(f.slot, f.kind, f.probe) for f in probes] == [(1, ResultKind.TIMEOUT, True),
                                                           (2, ResultKind.CONNECTION_REFUSED, True)]
    assert h.m.active_slot == 3
    # set 1 recovers: the next probe registers there and the machine falls back
    del h.refuse[tcp2]
    h.advance(h.m.probe_at)
    probe = h.last(1)
    assert probe.headers.get("Call-ID") != reg3.headers.get("Call-ID")   # a binding per set
    h.challenge(request=probe)
    h.ok(request=h.last(1), expires_param=3600)
    assert h.reports_of(FailedBack) == [FailedBack(3, 1)]
    assert h.m.active_slot == 1 and h.m.active_target == udp("127.0.0.1")
    assert h.m.probe_at is None                                           # on the first set
    # the backup binding is removed: an un-REGISTER on set 3, same Call-ID, next CSeq
    unreg = h.last(3)
    assert unreg.headers.get("Expires") == "0"
    assert unreg.headers.get("Call-ID") == reg3.headers.get("Call-ID")
    assert cseq(unreg) == cseq(reg3) + 1
    assert "Authorization" in unreg.headers                               # cached credentials
    h.ok(request=unreg)
    assert h.reports_of(Unregistered)[-1] == Unregistered(3, udp("127.0.0.3"), True,
                                                          ResultKind.UNREGISTERED, 200)
    assert Release(3, udp("127.0.0.3")) in h.releases
    assert h.m.state is RegistrationState.REGISTERED


def test_refresh_failure_moves_to_the_next_set():
    h = Harness(machine(phone(*THREE), timers=TransactionTimers(budget=2.0))).start()
    h.ok(expires_param=100)
    h.advance(50.0)
    assert h.last(1) is h.last()
    h.respond(500, "Server Internal Error")
    assert h.reports_of(FailedOver) == [FailedOver(1, 2, ResultKind.SERVER_ERROR)]
    assert h.m.active_slot is None
    assert h.m.state is RegistrationState.REGISTERING
    h.ok()
    assert h.m.active_slot == 2


def test_resolution_and_next_target_in_the_same_set():
    p = phone(ServerSet("pbx.example.com", "", Transport.AUTO), ServerSet("127.0.0.3", "", Transport.UDP))
    h = Harness(machine(p, timers=TransactionTimers(budget=1.0))).start()
    assert h.resolves == [Resolve(1, "pbx.example.com", None, Transport.AUTO)]
    assert h.m.state is RegistrationState.RESOLVING
    a, b = Target("127.0.0.1", 5060, TargetTransport.TCP, "pbx.example.com"), udp("127.0.0.2")
    h.refuse[a] = ResultKind.TLS_ERROR
    h.feed(h.m.resolved(1, [a, b], h.now))
    assert [c.target for c in h.connects] == [a, b]          # first target failed: next one
    h.ok()
    (reg,) = h.reports_of(Registered)
    assert reg.slot == 1 and reg.target == b
    assert not h.reports_of(FailedOver)


def test_dns_failure_fails_over():
    p = phone(ServerSet("pbx.example.com", "", Transport.UDP), ServerSet("127.0.0.3", "", Transport.UDP))
    h = Harness(machine(p)).start()
    h.feed(h.m.resolve_failed(1, h.now, "NXDOMAIN"))
    (failed,) = h.reports_of(RegistrationFailed)
    assert failed.kind is ResultKind.DNS_ERROR and failed.detail == "NXDOMAIN"
    assert h.reports_of(FailedOver) == [FailedOver(1, 2, ResultKind.DNS_ERROR)]


def test_dns_timeout():
    p = phone(ServerSet("pbx.example.com", "", Transport.UDP), ServerSet("127.0.0.3", "", Transport.UDP))
    h = Harness(machine(p, resolve_timeout=5)).start()
    h.advance(5.0)
    assert h.reports_of(RegistrationFailed)[0].kind is ResultKind.DNS_ERROR
    h.feed(h.m.resolved(1, [udp("127.0.0.1")], h.now))       # too late: ignored
    assert h.last_target() == udp("127.0.0.3")


def test_connect_timeout():
    h = Harness(machine(phone(*THREE), timers=TransactionTimers(budget=3.0)), auto_connect=False).start()
    h.advance(3.0)
    assert h.reports_of(RegistrationFailed)[0].kind is ResultKind.TIMEOUT
    assert [c.slot for c in h.connects] == [1, 2]
    h.feed(h.m.connected(1, udp("127.0.0.1"), *LOCAL, h.now))  # late answer: ignored
    assert h.sent == []


# --- transports ------------------------------------------------------------------------------


def test_tcp_does_not_retransmit_and_uses_tcp_in_via_and_contact():
    h = Harness(machine(phone(ServerSet("127.0.0.1", "", Transport.TCP)))).start()
    req = h.last()
    assert Via.parse(req.headers.values("Via")[0]).transport == "TCP"
    assert "transport=tcp" in req.headers.get("Contact")
    h.advance(31.0)
    assert len(h.sent) == 1
    assert h.timer_at == pytest.approx(32.0)


def test_tcp_connection_loss_while_registered_refreshes_at_once():
    tcp = Target("127.0.0.1", 5060, TargetTransport.TCP)
    h = Harness(machine(phone(ServerSet("127.0.0.1", "", Transport.TCP)))).start()
    h.ok(expires_param=3600)
    h.now = 100.0
    h.local = ("127.0.0.1", 40001)                            # the new connection's port
    h.feed(h.m.transport_error(1, tcp, ResultKind.TRANSPORT_ERROR, h.now, "connection reset"))
    req = h.last()
    assert len(h.sent) == 2 and cseq(req) == 2
    contacts = [NameAddr.parse(c) for c in req.headers.values("Contact")]
    assert [str(c.uri) for c in contacts] == ["sip:alice@127.0.0.1:40001;transport=tcp",
                                              "sip:alice@127.0.0.1:5070;transport=tcp"]
    assert contacts[0].expires is None and contacts[1].expires == 0      # the stale binding goes
    h.ok(expires_param=3600)
    assert h.m.state is RegistrationState.REGISTERED
    h.advance(h.m.refresh_at)
    assert len(h.last().headers.values("Contact")) == 1


def test_stray_and_duplicate_responses_are_ignored():
    h = Harness(machine()).start()
    req = h.last()
    stray = make_response(req, 200, "OK")
    stray.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKnotours")
    assert h.m.receive(stray, 0.01) == []
    assert h.m.stray_responses == 1
    h.ok()
    n = len(h.reports)
    h.feed(h.m.receive(make_response(req, 200, "OK"), h.now))    # a retransmitted 200
    assert len(h.reports) == n
    assert h.m.stray_responses == 2


def test_provisional_response_keeps_waiting():
    h = Harness(machine()).start()
    h.respond(100, "Trying")
    assert h.m.state is RegistrationState.REGISTERING
    h.ok()
    assert h.m.state is RegistrationState.REGISTERED


def test_set_timer_tracks_next_deadline():
    h = Harness(machine()).start()
    assert isinstance(h.actions[-1], SetTimer)
    assert h.timer_at == h.m.next_deadline == pytest.approx(0.5)
    h.ok(expires_param=600)
    assert h.timer_at == pytest.approx(540.0)               # only the refresh remains


# --- stop ------------------------------------------------------------------------------------------


def test_stop_sends_unregister_with_same_call_id_and_next_cseq():
    h = Harness(machine()).start()
    h.challenge(nonce="n1")
    h.ok()
    reg = h.last()
    h.now = 10.0
    h.stop()
    assert h.m.state is RegistrationState.STOPPING
    unreg = h.last()
    assert unreg.headers.get("Expires") == "0"
    assert unreg.headers.get("Call-ID") == reg.headers.get("Call-ID")
    assert cseq(unreg) == cseq(reg) + 1
    assert [str(NameAddr.parse(c).uri) for c in unreg.headers.values("Contact")] == \
        ["sip:alice@127.0.0.1:5070;transport=udp"]
    h.challenge(nonce="n2")                                    # challenged: answered once
    final = h.last()
    assert cseq(final) == cseq(reg) + 2 and final.headers.get("Expires") == "0"
    params = auth_params(final.headers.get("Authorization"))
    assert params["nonce"] == "n2"
    assert params["response"] == expected_digest(params, username="alice-auth", password=PASSWORD)
    h.ok(request=final)
    assert h.reports_of(Unregistered) == [Unregistered(1, udp("127.0.0.1"), True, ResultKind.UNREGISTERED, 200)]
    assert h.reports_of(Stopped) == [Stopped()]
    assert h.m.state is RegistrationState.STOPPED
    assert h.timer_at is None
    assert Release(1, udp("127.0.0.1")) in h.releases
    n = len(h.sent)
    h.advance(100000.0)
    assert len(h.sent) == n


def test_stop_while_register_in_flight_unregisters():
    h = Harness(machine()).start()
    h.stop()
    assert h.last().headers.get("Expires") == "0"
    assert cseq(h.last()) == 2
    h.advance(40.0)                                            # never answered
    assert h.reports_of(Unregistered)[0].kind is ResultKind.TIMEOUT
    assert h.m.state is RegistrationState.STOPPED


def test_stop_with_nothing_registered_stops_at_once():
    h = Harness(machine(), auto_connect=False).start()
    h.stop()
    assert h.reports_of(Stopped) == [Stopped()]
    assert h.sent == [] and h.m.state is RegistrationState.STOPPED
    h2 = Harness(machine())
    h2.stop()
    assert h2.m.state is RegistrationState.STOPPED


def test_stop_during_failback_unregisters_every_bound_set():
    h = Harness(machine(phone(*THREE), timers=TransactionTimers(budget=1.0), probe_interval=5)).start()
    h.advance(1.0)
    h.ok()
    assert h.m.active_slot == 2
    h.advance(h.m.probe_at)
    h.ok(request=h.last(1))                                    # back to set 1, un-REGISTER on 2 in flight
    h.stop()
    unregs = [r for r in h.requests() if r.headers.get("Expires") == "0"]
    assert sorted(r.headers.get("Call-ID") for r in unregs) == sorted(
        {h.m.call_id(1), h.m.call_id(2)})
    for r in unregs:
        h.ok(request=r)
    assert h.m.state is RegistrationState.STOPPED
    assert sorted(u.slot for u in h.reports_of(Unregistered)) == [1, 2]


# --- the check -------------------------------------------------------------------------------------


def check(p: SipPhone, **kw) -> RegistrationCheck:
    all_slots = kw.pop("all_slots", True)
    return RegistrationCheck(registration_config(p), rng=random.Random(3),
                             policy=RegistrationPolicy(**kw), all_slots=all_slots)


def test_check_reports_every_set_and_unregisters():
    h = Harness(check(phone(*THREE), timers=TransactionTimers(budget=2.0))).start()
    h.challenge()
    h.ok(expires_param=300, after=0.01)
    reg = h.requests(1)[-2]
    unreg = h.last()
    assert unreg.headers.get("Expires") == "0" and unreg.headers.get("Call-ID") == reg.headers.get("Call-ID")
    assert h.m.state is RegistrationState.STOPPING
    h.ok(request=unreg)
    assert h.last_target() == udp("127.0.0.2")
    h.challenge()
    h.respond(403, "Forbidden")                                # still tried: the check reports per set
    assert h.last_target() == udp("127.0.0.3")
    h.advance(h.now + 2.0)
    (done,) = h.reports_of(CheckFinished)
    r1, r2, r3 = done.results
    assert h.m.results == list(done.results)
    assert (r1.slot, r1.kind, r1.status, r1.expires, r1.target) == (1, ResultKind.REGISTERED, 200, 300,
                                                                    udp("127.0.0.1"))
    assert r1.rtt == pytest.approx(0.01) and r1.server == "127.0.0.1" and r1.transport is Transport.UDP
    assert r1.unregister.ok and r1.unregister.status == 200
    assert (r2.kind, r2.status, r2.unregister) == (ResultKind.AUTH_REJECTED, 403, None)
    assert (r3.kind, r3.status) == (ResultKind.TIMEOUT, None)
    assert h.m.state is RegistrationState.STOPPED and h.m.finished
    assert h.timer_at is None
    assert {r.target for r in h.releases} == {udp("127.0.0.1"), udp("127.0.0.2"), udp("127.0.0.3")}


def test_check_first_success_only():
    h = Harness(check(phone(*THREE), all_slots=False)).start()
    h.respond(503, headers=[("Retry-After", "5")])
    h.ok()
    h.ok(request=h.last())                                     # the un-REGISTER
    (done,) = h.reports_of(CheckFinished)
    assert [r.kind for r in done.results] == [ResultKind.SERVER_ERROR, ResultKind.REGISTERED,
                                              ResultKind.NOT_TRIED]
    assert done.results[0].status == 503


def test_check_sequence_budget_bounds_a_slow_challenge_chain():
    """A registrar that answers each REGISTER just inside the per-transaction budget cannot make
    one server set take longer than the attempt budget."""
    h = Harness(check(phone(*THREE), timers=TransactionTimers(budget=1.0), sequence_budget=2.0)).start()
    h.challenge(proxy=True, realm="p", nonce="p1", after=0.9)
    h.challenge(realm="r", nonce="r1", after=0.9)              # t = 1.8: answered
    h.advance(2.0)
    assert h.last_target() == udp("127.0.0.2")                # set 1 gave up at 2.0, not 2.8
    assert h.sent[-1][0] == pytest.approx(2.0)
    h.advance(h.now + 4.0)                                     # sets 2 and 3: silent, 1 s each
    (done,) = h.reports_of(CheckFinished)
    r1 = done.results[0]
    assert r1.kind is ResultKind.TIMEOUT and "2 s allowed per server" in r1.detail
    assert r1.elapsed == pytest.approx(2.0)


def test_check_sequence_budget_bounds_the_unregister():
    h = Harness(check(phone(), timers=TransactionTimers(budget=1.0), sequence_budget=1.5)).start()
    h.ok(after=0.1)
    h.challenge(realm="r", nonce="r1", after=0.9)              # the un-REGISTER challenged late
    h.advance(h.now + 5.0)
    (done,) = h.reports_of(CheckFinished)
    assert done.results[0].kind is ResultKind.REGISTERED
    assert done.results[0].unregister.kind is ResultKind.TIMEOUT
    assert done.results[0].unregister.elapsed == pytest.approx(1.5)


def test_check_abort_gives_every_set_a_typed_result():
    h = Harness(check(phone(*THREE))).start()
    h.feed(h.m.abort(h.now))
    (done,) = h.reports_of(CheckFinished)
    assert [r.kind for r in done.results] == [ResultKind.TIMEOUT, ResultKind.NOT_TRIED, ResultKind.NOT_TRIED]
    assert h.m.finished and h.timer_at is None
    assert Release(1, udp("127.0.0.1")) in h.releases


def test_check_dns_error_names_the_server():
    p = phone(ServerSet("pbx.example.com", "", Transport.TLS))
    h = Harness(check(p)).start()
    h.feed(h.m.resolve_failed(1, h.now, "no SRV, no A"))
    (done,) = h.reports_of(CheckFinished)
    (r,) = [x for x in done.results if x.slot == 1]
    assert (r.kind, r.server, r.transport, r.target) == (ResultKind.DNS_ERROR, "pbx.example.com", Transport.TLS, None)


def test_check_stop_mid_flight_unregisters():
    h = Harness(check(phone(*THREE))).start()
    h.stop()
    unreg = h.last()
    assert unreg.headers.get("Expires") == "0"
    h.ok(request=unreg)
    (done,) = h.reports_of(CheckFinished)
    assert [r.kind for r in done.results] == [ResultKind.NOT_TRIED] * 3
    assert done.results[0].unregister.ok


# --- more edges ------------------------------------------------------------------------------------


def test_connection_reset_mid_transaction_fails_over_and_releases():
    tcp1 = Target("127.0.0.1", 5060, TargetTransport.TCP)
    p = phone(ServerSet("127.0.0.1", "", Transport.TCP), ServerSet("127.0.0.2", "", Transport.UDP))
    h = Harness(machine(p)).start()
    h.feed(h.m.transport_error(1, tcp1, "transport_error", h.now, "connection reset by peer"))
    (failed,) = h.reports_of(RegistrationFailed)
    assert (failed.kind, failed.detail, failed.target) == (ResultKind.TRANSPORT_ERROR, "connection reset by peer", tcp1)
    assert Release(1, tcp1) in h.releases
    assert h.last_target() == udp("127.0.0.2")
    h.respond(200, "OK", request=h.requests(1)[0])            # a late answer on the dead flow: ignored
    assert h.m.state is RegistrationState.REGISTERING


def test_icmp_unreachable_on_udp_fails_over_at_once():
    h = Harness(machine(phone(*THREE))).start()
    h.feed(h.m.transport_error(1, udp("127.0.0.1"), ResultKind.CONNECTION_REFUSED, 0.001))
    assert h.reports_of(FailedOver) == [FailedOver(1, 2, ResultKind.CONNECTION_REFUSED)]
    assert h.sent[-1][0] == pytest.approx(0.0)


def test_5xx_without_retry_after_does_not_avoid_the_server():
    h = Harness(machine(phone(*THREE), probe_interval=10)).start()
    h.respond(500, "Server Internal Error")
    assert h.m.slot_status(1, h.now).avoid_until is None
    h.ok()
    assert h.m.probe_at == pytest.approx(h.now + 10)


def test_slot_status_reports_each_set():
    h = Harness(machine(phone(*THREE))).start()
    h.respond(503, headers=[("Retry-After", "60")])
    h.ok(expires_param=900)
    s1, s2 = h.m.slot_status(1, h.now), h.m.slot_status(2, h.now)
    assert (s1.registered, s1.last.kind, s1.last.status, s1.last.retry_after) == (False, ResultKind.SERVER_ERROR, 503, 60)
    assert (s2.registered, s2.target, s2.expires, s2.last.kind) == (True, udp("127.0.0.2"), 900, ResultKind.REGISTERED)
    assert h.m.slot_status(3).last is None


def test_credentials_are_not_reused_when_disabled():
    h = Harness(machine(reuse_credentials=False)).start()
    h.challenge()
    h.ok(expires_param=100)
    h.advance(h.m.refresh_at)
    assert "Authorization" not in h.last().headers
    h.challenge(nonce="n9")
    assert auth_params(h.last().headers.get("Authorization"))["nc"] == "00000001"


def test_resolve_carries_an_explicit_port_and_transport():
    h = Harness(machine(phone(ServerSet("pbx.example.com:5080", "", Transport.TCP)))).start()
    assert h.resolves == [Resolve(1, "pbx.example.com", 5080, Transport.TCP)]
    target = Target("127.0.0.1", 5080, TargetTransport.TCP, "pbx.example.com")
    h.feed(h.m.resolved(1, [target], h.now))
    assert h.connects[-1] == Connect(1, target)
    h.ok()
    assert h.m.active_target == target


def test_states_while_resolving_and_connecting():
    m = machine(phone(ServerSet("pbx.example.com", "", Transport.UDP)))
    h = Harness(m, auto_connect=False)
    assert m.state is RegistrationState.IDLE
    h.start()
    assert m.state is RegistrationState.RESOLVING
    h.feed(m.resolved(1, [udp("127.0.0.1")], h.now))
    assert m.state is RegistrationState.CONNECTING
    h.feed(m.connected(1, udp("127.0.0.1"), *LOCAL, h.now))
    assert m.state is RegistrationState.REGISTERING


def test_empty_resolution_is_a_dns_error():
    h = Harness(machine(phone(ServerSet("pbx.example.com", "", Transport.UDP)))).start()
    h.feed(h.m.resolved(1, [], h.now))
    assert h.reports_of(RegistrationFailed)[0].kind is ResultKind.DNS_ERROR
    assert h.m.state is RegistrationState.FAILED


def test_failed_unregister_in_check_is_reported():
    h = Harness(check(phone(), timers=TransactionTimers(budget=1.0))).start()
    h.ok()
    h.advance(h.now + 1.0)                                     # the un-REGISTER is never answered
    (done,) = h.reports_of(CheckFinished)
    r = done.results[0]
    assert r.kind is ResultKind.REGISTERED
    assert not r.unregister.ok and r.unregister.kind is ResultKind.TIMEOUT


def test_password_is_not_in_any_repr():
    m = machine()
    h = Harness(m).start()
    h.challenge()
    assert PASSWORD not in repr(m.config) and PASSWORD not in repr(m._bindings[1])
    assert all(PASSWORD not in repr(a) for a in h.actions)


def test_last_error_and_last_success_are_kept():
    h = Harness(machine(phone(*THREE))).start()
    assert len(h.m.call_ids) == 3 and h.m.call_id(1) in h.m.call_ids
    h.respond(503, after=0.5)
    h.ok(after=0.25)
    assert h.m.last_error.kind is ResultKind.SERVER_ERROR and h.m.last_error.slot == 1
    assert h.m.last_success_at == pytest.approx(0.75)
    assert h.m.last_rtt == pytest.approx(0.25)


def test_start_after_stop_does_nothing():
    h = Harness(machine())
    h.stop()
    h.start()
    assert h.sent == [] and h.m.state is RegistrationState.STOPPED
    c = Harness(check(phone()))
    c.stop()
    c.start()
    assert c.sent == [] and c.m.finished
    assert [r.kind for r in c.m.results] == [ResultKind.NOT_TRIED]


# --- stale contacts (a monitor taking over a dead one's phone) ---------------------------------------


def test_stale_contacts_are_removed_by_the_first_register_and_then_forgotten():
    stale = "sip:alice@127.0.0.1:40001;transport=udp"
    m = Registration(registration_config(phone(), stale_contacts=(stale,)), rng=random.Random(7))
    h = Harness(m).start()
    first = h.last().headers.values("Contact")
    assert first[0] == "<sip:alice@127.0.0.1:5070;transport=udp>"
    assert first[1:] == [f"<{stale}>;expires=0"]
    h.challenge()  # the authenticated retry still removes it
    assert h.last().headers.values("Contact")[1:] == [f"<{stale}>;expires=0"]
    h.ok(expires_param=120)
    assert h.m.active_contact == "sip:alice@127.0.0.1:5070;transport=udp"
    h.advance(h.m.refresh_at)  # the refresh lists only ours
    assert h.last().headers.values("Contact") == ["<sip:alice@127.0.0.1:5070;transport=udp>"]


def test_stale_contacts_are_bounded_and_must_parse():
    with pytest.raises(ConfigError):
        registration_config(phone(), stale_contacts=("not a uri",))
    with pytest.raises(ConfigError):
        registration_config(phone(), stale_contacts=tuple(f"sip:a@10.0.0.{n}" for n in range(5)))
