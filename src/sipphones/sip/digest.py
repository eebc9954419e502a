"""Digest authentication client for SIP (RFC 2617, RFC 7616, RFC 8760; RFC 3261 §22).

Three layers, each usable alone:

* ``DigestChallenge`` -- one parsed ``Digest`` challenge of a WWW-Authenticate (401) or
  Proxy-Authenticate (407) header, with the algorithm spelled canonically.
* ``digest_response`` / ``build_authorization`` -- pure functions: the ``response=`` hash and the
  complete Authorization / Proxy-Authorization header value. No randomness inside: the cnonce is
  an argument.
* ``DigestClient`` -- the small stateful helper the registration machine uses: it remembers the
  challenge per realm and the nonce count, answers a 401/407, and pre-authorizes later requests
  (refreshes) with the same nonce and ``nc`` = 2, 3, ... The cnonce comes from an injected
  ``cnonce_factory`` (sans-IO: the caller decides where randomness comes from).

Algorithms: MD5, MD5-sess, SHA-256, SHA-256-sess, SHA-512-256, SHA-512-256-sess (SHA-512/256 of
FIPS 180-4, ``hashlib.new("sha512_256")``; left out of ``SUPPORTED_ALGORITHMS`` if the local
OpenSSL lacks it). ``qop=auth`` and ``auth-int``; no qop at all (RFC 2069 compatibility);
``opaque`` echoed; ``userhash`` (RFC 7616 §3.4.4). ``stale=true`` is exposed so the caller can
retry with the new nonce without counting a failure.

Choosing among several challenges: RFC 8760 §2.4 says a UAC should use the topmost challenge it
supports for a realm "unless a local policy dictates otherwise". Our default local policy is
``"strongest"`` (SHA-512-256 > SHA-256 > MD5, a plain algorithm before its -sess variant, ties
in server order) so a server listing MD5 first for old phones still gets SHA-256 from us;
``policy="first"`` gives the RFC's server-order behaviour.

Never log a password or an HA1: ``DigestClient`` keeps the password out of its repr.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Literal
from collections.abc import Callable

from .errors import BadHeaderValue, DigestError
from .headers import Challenge, parse_challenges
from .syntax import quote
from .message import Request, Response

# Canonical algorithm spelling -> hashlib name.
_HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
# Higher is stronger (RFC 8760 lists SHA-512-256, SHA-256, MD5 in that order of preference).
_STRENGTH = {"SHA-512-256": 30, "SHA-256": 20, "MD5": 10}


def _hash_available(name: str) -> bool:
    try:
        hashlib.new(name)
    except (ValueError, TypeError):
        return False
    return True


SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(
    name for base, hname in _HASHES.items() if _hash_available(hname)
    for name in (base, f"{base}-sess")
)


def canonical_algorithm(text: str | None) -> str:
    """``md5`` -> ``MD5``, ``sha-256-SESS`` -> ``SHA-256-sess``; absent means MD5 (RFC 2617).

    Unknown algorithms keep their spelling (upper-cased) so errors can name them.
    """
    if text is None or not text.strip():
        return "MD5"
    value = text.strip().upper()
    sess = value.endswith("-SESS")
    base = value[:-5] if sess else value
    return f"{base}-sess" if sess else base


def _base(algorithm: str) -> str:
    return algorithm[:-5] if algorithm.endswith("-sess") else algorithm


# Canonical base algorithm -> hash constructor (the named constructors are faster than new()).
_CONSTRUCTORS: dict[str, Callable[[bytes], "hashlib._Hash"]] = {
    "MD5": hashlib.md5, "SHA-256": hashlib.sha256,
    "SHA-512-256": lambda data: hashlib.new("sha512_256", data),
}


def _h(algorithm: str, data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _CONSTRUCTORS[_base(algorithm)](data).hexdigest()


# Its ``__init__`` is the one ``@dataclass`` would generate, spelled out so that mypyc compiles it
# (see "outputs" in sipphones.sip.registration; tests/sip/test_native_init.py checks it).
@dataclass(frozen=True)
class DigestChallenge:
    """One Digest challenge. ``proxy`` is True for Proxy-Authenticate (answer with
    Proxy-Authorization), False for WWW-Authenticate (answer with Authorization)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()          # offered qop values, lower-cased; () = RFC 2069 style
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False
    charset: str | None = None
    domain: str | None = None
    proxy: bool = False

    def __init__(self, realm: str, nonce: str, algorithm: str = "MD5", qop: tuple[str, ...] = (),
                 opaque: str | None = None, stale: bool = False, userhash: bool = False,
                 charset: str | None = None, domain: str | None = None, proxy: bool = False) -> None:
        object.__setattr__(self, "realm", realm)
        object.__setattr__(self, "nonce", nonce)
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "qop", qop)
        object.__setattr__(self, "opaque", opaque)
        object.__setattr__(self, "stale", stale)
        object.__setattr__(self, "userhash", userhash)
        object.__setattr__(self, "charset", charset)
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "proxy", proxy)

    @classmethod
    def from_challenge(cls, challenge: Challenge, *, proxy: bool = False) -> DigestChallenge:
        if challenge.scheme.lower() != "digest":
            raise DigestError(f"not a Digest challenge: {challenge.scheme}")
        params = challenge.params   # names are lower-cased by the parser
        realm = params.get("realm")
        nonce = params.get("nonce")
        if realm is None or nonce is None:
            raise DigestError("Digest challenge without realm or nonce")
        qop_text = params.get("qop") or ""
        if qop_text == "auth":   # the usual offer
            qop: tuple[str, ...] = ("auth",)
        else:
            qop = tuple(q.strip().lower() for q in qop_text.split(",") if q.strip())
        stale = params.get("stale")
        userhash = params.get("userhash")
        algorithm = canonical_algorithm(params.get("algorithm"))
        opaque, charset, domain = params.get("opaque"), params.get("charset"), params.get("domain")
        is_stale = stale is not None and stale.strip().lower() == "true"
        hashes_user = userhash is not None and userhash.strip().lower() == "true"
        # A native call when the class is DigestChallenge itself (``cls(...)`` goes through the
        # generic one); the same arguments either way.
        if cls is DigestChallenge:
            return DigestChallenge(realm=realm, nonce=nonce, algorithm=algorithm, qop=qop, opaque=opaque,
                                   stale=is_stale, userhash=hashes_user, charset=charset, domain=domain, proxy=proxy)
        return cls(realm=realm, nonce=nonce, algorithm=algorithm, qop=qop, opaque=opaque,
                   stale=is_stale, userhash=hashes_user, charset=charset, domain=domain, proxy=proxy)

    @classmethod
    def parse(cls, value: str, *, proxy: bool = False) -> DigestChallenge:
        """The first Digest challenge of a header value; ``DigestError`` if there is none."""
        try:
            challenges = parse_challenges(value, "Proxy-Authenticate" if proxy else "WWW-Authenticate")
        except BadHeaderValue as e:
            raise DigestError(f"unreadable challenge: {e}") from None
        for c in challenges:
            if c.scheme.lower() == "digest":
                return cls.from_challenge(c, proxy=proxy)
        raise DigestError("no Digest challenge")

    @property
    def supported(self) -> bool:
        """True when we can answer it: known algorithm, and a usable qop (or none offered)."""
        if self.algorithm not in SUPPORTED_ALGORITHMS:
            return False
        if self.qop and "auth" not in self.qop and "auth-int" not in self.qop:
            return False
        if self.algorithm.endswith("-sess") and not self.qop:
            return False   # -sess needs the cnonce, which is only sent with a qop
        return True

    @property
    def strength(self) -> int:
        """Rank for the "strongest" policy; a -sess variant ranks just below its plain form."""
        base = _base(self.algorithm)
        return _STRENGTH.get(base, 0) - (1 if self.algorithm.endswith("-sess") else 0)

    @property
    def header_name(self) -> str:
        """The request header that answers this challenge."""
        return "Proxy-Authorization" if self.proxy else "Authorization"

    def unsupported_reason(self) -> str | None:
        if self.algorithm not in SUPPORTED_ALGORITHMS:
            return f"unsupported algorithm {self.algorithm}"
        if self.qop and "auth" not in self.qop and "auth-int" not in self.qop:
            return f"unsupported qop {','.join(self.qop)}"
        if self.algorithm.endswith("-sess") and not self.qop:
            return f"{self.algorithm} without qop cannot be answered"
        return None


def choose_qop(challenge: DigestChallenge, *, prefer_auth_int: bool = False) -> str | None:
    """``auth`` if offered (else ``auth-int``); ``None`` when the challenge offers no qop."""
    if not challenge.qop:
        return None
    order = ("auth-int", "auth") if prefer_auth_int else ("auth", "auth-int")
    for q in order:
        if q in challenge.qop:
            return q
    raise DigestError(f"unsupported qop {','.join(challenge.qop)}")


def digest_response(*, algorithm: str, username: str, realm: str, password: str, nonce: str,
                    method: str, uri: str, qop: str | None = None, nc: int | None = None,
                    cnonce: str | None = None, body: bytes = b"") -> str:
    """The ``response=`` value (RFC 2617 §3.2.2, RFC 7616 §3.4.1-3.4.3).

    HA1 = H(username:realm:password), for -sess H(HA1:nonce:cnonce);
    HA2 = H(method:uri), for auth-int H(method:uri:H(body));
    response = H(HA1:nonce:nc:cnonce:qop:HA2), or H(HA1:nonce:HA2) without qop.
    ``username`` is the real name even when userhash is used.
    """
    algorithm = canonical_algorithm(algorithm)
    _check_response_args(algorithm, qop, nc, cnonce)
    return _response(algorithm, _h(algorithm, f"{username}:{realm}:{password}"), nonce, method, uri,
                     qop, nc, cnonce, body)


def _check_response_args(algorithm: str, qop: str | None, nc: int | None, cnonce: str | None) -> None:
    if _base(algorithm) not in _HASHES or algorithm not in SUPPORTED_ALGORITHMS:
        raise DigestError(f"unsupported algorithm {algorithm}")
    if qop is not None and qop not in ("auth", "auth-int"):
        raise DigestError(f"unsupported qop {qop}")
    if qop is not None and (cnonce is None or nc is None):
        raise ValueError("cnonce and nc are required with a qop")
    if algorithm.endswith("-sess") and cnonce is None:
        raise ValueError(f"{algorithm} needs a cnonce")


# (algorithm, method, uri) -> H(method:uri): the same for every REGISTER of a phone (and of a
# fleet that shares a Request-URI). Bounded: cleared when full.
_HA2: dict[tuple[str, str, str], str] = {}
_HA2_MAX = 1024


def _ha2(algorithm: str, method: str, uri: str) -> str:
    """``_h(algorithm, f"{method}:{uri}")``, remembered."""
    key = (algorithm, method, uri)
    ha2 = _HA2.get(key)
    if ha2 is None:
        if len(_HA2) >= _HA2_MAX:
            _HA2.clear()
        ha2 = _HA2[key] = _h(algorithm, f"{method}:{uri}")
    return ha2


def _response(algorithm: str, ha1: str, nonce: str, method: str, uri: str, qop: str | None,
              nc: int | None, cnonce: str | None, body: bytes) -> str:
    """``digest_response`` from HA1 = H(username:realm:password), arguments already checked."""
    if algorithm.endswith("-sess"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = _h(algorithm, f"{method}:{uri}:{_h(algorithm, body)}")
    else:
        ha2 = _ha2(algorithm, method, uri)
    if qop is None:
        return _h(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")


def build_authorization(challenge: DigestChallenge, *, username: str, password: str, method: str,
                        uri: str, cnonce: str | None = None, nc: int = 1, body: bytes = b"",
                        qop: str | None | Literal["auto"] = "auto") -> str:
    """The complete Authorization / Proxy-Authorization header value for ``challenge``.

    ``uri`` must be the Request-URI exactly as sent (RFC 3261 §22.4). ``qop="auto"`` picks
    ``choose_qop``. ``username``, ``realm``, ``nonce``, ``uri``, ``response``, ``cnonce`` and
    ``opaque`` are quoted; ``algorithm``, ``qop``, ``nc`` and ``userhash`` are not (RFC 2617 §3.2.2,
    RFC 7616 §3.4).
    """
    return _authorization(challenge, username=username, method=method, uri=uri, cnonce=cnonce, nc=nc,
                          body=body, qop=qop,
                          ha1=lambda: _h(challenge.algorithm, f"{username}:{challenge.realm}:{password}"))


def _authorization(challenge: DigestChallenge, *, username: str, method: str, uri: str, cnonce: str | None,
                   nc: int, body: bytes, qop: str | None | Literal["auto"],
                   ha1: Callable[[], str]) -> str:
    """``build_authorization`` with HA1 = H(username:realm:password) from ``ha1()`` (the client
    keeps it per realm instead of hashing the password again for every request)."""
    reason = challenge.unsupported_reason()
    if reason:
        raise DigestError(reason)
    if qop == "auto":
        qop = choose_qop(challenge)
    elif qop is not None and qop not in challenge.qop:
        raise DigestError(f"qop {qop} was not offered")
    if not 1 <= nc <= 0xFFFFFFFF:
        raise ValueError("nc must fit in 8 hex digits")
    if (qop is not None or challenge.algorithm.endswith("-sess")) and not cnonce:
        raise ValueError("a cnonce is required with a qop")
    algorithm = canonical_algorithm(challenge.algorithm)
    nc_arg = nc if qop else None
    _check_response_args(algorithm, qop, nc_arg, cnonce)
    response = _response(algorithm, ha1(), challenge.nonce, method, uri, qop, nc_arg, cnonce, body)
    shown_user = _h(challenge.algorithm, f"{username}:{challenge.realm}") if challenge.userhash else username
    parts = [
        f"username={quote(shown_user)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f'response="{response}"',   # a hex digest: quote() would add nothing but the quotes
        f"algorithm={challenge.algorithm}",
    ]
    if qop is not None:
        parts += [f"cnonce={quote(cnonce or '')}", f"qop={qop}", f"nc={nc:08x}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote(challenge.opaque)}")
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


def challenges_in(response: Response) -> list[DigestChallenge]:
    """Every Digest challenge of a response, WWW-Authenticate first, in header order.

    Unreadable header values and non-Digest schemes are skipped; unsupported Digest
    challenges are included (check ``supported``).
    """
    out: list[DigestChallenge] = []
    for name, proxy in (("WWW-Authenticate", False), ("Proxy-Authenticate", True)):
        for value in response.headers.get_all(name):
            try:
                parsed = parse_challenges(value, name)
            except BadHeaderValue:
                continue
            for c in parsed:
                if c.scheme.lower() != "digest":
                    continue
                try:
                    out.append(DigestChallenge.from_challenge(c, proxy=proxy))
                except DigestError:
                    continue
    return out


def select_challenges(challenges: list[DigestChallenge],
                      policy: Literal["strongest", "first"] = "strongest") -> list[DigestChallenge]:
    """One supported challenge per (header kind, realm), by ``policy`` (see module docstring).

    Raises ``DigestError`` if some realm offers nothing we support (answering only part of
    the realms would fail anyway) or if there is no challenge at all.
    """
    if not challenges:
        raise DigestError("no Digest challenge in the response")
    if len(challenges) == 1 and challenges[0].supported:   # the usual case: one group, one choice
        return [challenges[0]]
    groups: dict[tuple[bool, str], list[DigestChallenge]] = {}
    for c in challenges:
        groups.setdefault((c.proxy, c.realm), []).append(c)
    chosen: list[DigestChallenge] = []
    for (_, realm), group in groups.items():
        usable = [c for c in group if c.supported]
        if not usable:
            reasons = sorted({c.unsupported_reason() or "" for c in group})
            raise DigestError(f"realm {realm!r}: " + "; ".join(reasons))
        if policy == "strongest":
            best = max(usable, key=lambda c: c.strength)   # max keeps the first of equals
        else:
            best = usable[0]
        chosen.append(best)
    return chosen


# Its ``__init__`` is the one ``@dataclass`` would generate, spelled out so that mypyc compiles it
# (see "outputs" in sipphones.sip.registration; tests/sip/test_native_init.py checks it).
@dataclass(frozen=True)
class ChallengeResult:
    """What ``DigestClient.handle_challenge`` learned from a 401/407.

    ``stale``: a chosen challenge says stale=true: the previous credentials were right but the
    nonce expired; retry with the new nonce without counting a failure.
    ``repeated``: a realm we had already answered is challenged again *without* stale: the
    credentials we sent were refused (after a pre-authorized refresh this can also just mean
    the server wants a fresh nonce: one retry is reasonable; after a direct answer to a
    challenge it means wrong credentials).
    """

    challenges: tuple[DigestChallenge, ...]
    stale: bool
    repeated: bool

    def __init__(self, challenges: tuple[DigestChallenge, ...], stale: bool, repeated: bool) -> None:
        object.__setattr__(self, "challenges", challenges)
        object.__setattr__(self, "stale", stale)
        object.__setattr__(self, "repeated", repeated)

    @property
    def realms(self) -> tuple[str, ...]:
        return tuple(c.realm for c in self.challenges)


# Its ``__init__`` is the one ``@dataclass`` would generate, spelled out so that mypyc compiles it
# (see "outputs" in sipphones.sip.registration; tests/sip/test_native_init.py checks it).
@dataclass
class _Session:
    challenge: DigestChallenge
    nc: int = 0                          # last nonce count used with this nonce
    sess_cnonce: str | None = None       # -sess: the cnonce fixed into HA1 for this nonce

    def __init__(self, challenge: DigestChallenge, nc: int = 0, sess_cnonce: str | None = None) -> None:
        self.challenge = challenge
        self.nc = nc
        self.sess_cnonce = sess_cnonce


class DigestClient:
    """Answers 401/407 challenges and pre-authorizes later requests for one set of credentials.

    Typical use by a registration machine::

        client = DigestClient(auth_name, password, cnonce_factory=lambda: os.urandom(8).hex())
        ...  # 401 arrives
        result = client.handle_challenge(response)    # DigestError if we cannot answer
        client.authorize(next_register)               # adds Authorization, nc=00000001
        ...  # later refresh
        client.authorize(refresh_register)            # same nonce, nc=00000002

    ``authorize`` adds one header per remembered (kind, realm). A new challenge of one kind
    (WWW or Proxy) replaces every remembered challenge of that kind; ``forget`` drops all
    (e.g. when failing over to another server). The nonce count restarts at 1 for a new
    nonce and continues if the server repeats the same nonce.
    """

    def __init__(self, username: str, password: str, *, cnonce_factory: Callable[[], str],
                 policy: Literal["strongest", "first"] = "strongest", prefer_auth_int: bool = False):
        self.username = username
        self._password = password
        self._cnonce = cnonce_factory
        self.policy = policy
        self.prefer_auth_int = prefer_auth_int
        self._sessions: dict[tuple[bool, str], _Session] = {}
        self._ha1: dict[tuple[str, str], str] = {}   # (algorithm, realm) -> HA1; never shown

    def __repr__(self) -> str:
        return f"DigestClient(username={self.username!r}, realms={[r for _, r in self._sessions]!r})"

    @property
    def challenged(self) -> bool:
        """True once a challenge is remembered (requests can be pre-authorized)."""
        return bool(self._sessions)

    @property
    def challenges(self) -> tuple[DigestChallenge, ...]:
        return tuple(s.challenge for s in self._sessions.values())

    def forget(self) -> None:
        self._sessions.clear()

    def handle_challenge(self, response: Response) -> ChallengeResult:
        """Remember the challenges of a 401/407; raise ``DigestError`` if none can be answered."""
        chosen = select_challenges(challenges_in(response), self.policy)
        stale = any(c.stale for c in chosen)
        repeated = False
        kinds = {c.proxy for c in chosen}
        old = self._sessions
        new: dict[tuple[bool, str], _Session] = {k: s for k, s in old.items() if k[0] not in kinds}
        for c in chosen:
            key = (c.proxy, c.realm)
            prev = old.get(key)
            if prev is not None and prev.nc > 0 and not c.stale:
                repeated = True
            if prev is not None and prev.challenge.nonce == c.nonce and prev.challenge.algorithm == c.algorithm:
                new[key] = _Session(c, prev.nc, prev.sess_cnonce)
            else:
                new[key] = _Session(c)
        self._sessions = new
        return ChallengeResult(tuple(chosen), stale, repeated)

    def authorization_headers(self, method: str, uri: str, body: bytes = b"") -> list[tuple[str, str]]:
        """(header name, value) for every remembered challenge; each call uses the next nc."""
        out = []
        for session in self._sessions.values():
            c = session.challenge
            qop = choose_qop(c, prefer_auth_int=self.prefer_auth_int)
            cnonce = None
            if qop is not None:
                if c.algorithm.endswith("-sess"):
                    if session.sess_cnonce is None:
                        session.sess_cnonce = self._cnonce()
                    cnonce = session.sess_cnonce
                else:
                    cnonce = self._cnonce()
            session.nc += 1
            value = _authorization(c, username=self.username, method=method, uri=uri, cnonce=cnonce,
                                   nc=session.nc, body=body, qop=qop, ha1=partial(self._ha1_for, c))
            out.append((c.header_name, value))
        return out

    def _ha1_for(self, challenge: DigestChallenge) -> str:
        """H(username:realm:password) for the challenge's realm and hash, computed once."""
        key = (_base(challenge.algorithm), challenge.realm)
        ha1 = self._ha1.get(key)
        if ha1 is None:
            if len(self._ha1) >= 16:   # a server inventing realms cannot make this grow
                self._ha1.clear()
            ha1 = self._ha1[key] = _h(challenge.algorithm, f"{self.username}:{challenge.realm}:{self._password}")
        return ha1

    def authorize(self, request: Request) -> Request:
        """Replace the request's Authorization/Proxy-Authorization with fresh credentials
        (digest ``uri`` = its Request-URI, ``auth-int`` over its body); returns the request."""
        request.headers.remove("Authorization")
        request.headers.remove("Proxy-Authorization")
        for name, value in self.authorization_headers(request.method, request.uri, request.body):
            request.headers.add(name, value)
        return request
