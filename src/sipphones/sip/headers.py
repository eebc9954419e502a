"""Structured header values a REGISTER client reads and writes (RFC 3261 §19.1, §20, §25).

Each type parses from the header *value* (one list element, after ``Headers.values`` split a
comma-separated line) and serializes back with ``str()``. Parsing raises ``BadHeaderValue`` (or its
subclass ``BadUri``) for every malformed input and nothing else, so a transport can catch one
type.

Conventions:

* parameter names are case-insensitive and are stored lower-cased, in a ``dict`` whose value is
  ``None`` for a flag parameter (``;lr``, ``;rport``) and the unquoted text otherwise;
* URI user, password, parameters and headers are stored *unescaped* (``%20`` -> space) and escaped
  again on output, so ``SipUri(user="Jill Chill", host="sip.test")`` prints
  ``sip:Jill%20Chill@sip.test``; escapes that are not valid UTF-8 survive a round trip as
  surrogate escapes;
* IPv6 hosts are stored without brackets (like ``phones.rules.HostPort``) and printed with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Iterable

from .errors import BadHeaderValue, BadUri
from .message import Headers, Response
from .syntax import (
    Params,
    TOKEN_CHARS,
    WS,
    DIGITS_RE,
    MAX_CSEQ,
    read_quoted,
    skip_ws,
    parse_hostport,
    format_host,
    format_params,
    QUOTED_PAIR_RE,
    SIMPLE_PARAMS_RE,
    parse_params_at,
    parse_params,
    parse_delta,
    parse_delta_seconds,
)
from .uri import SipUri, NameAddr, parse_contacts

__all__ = [
    "check_via",
    "Via",
    "parse_vias",
    "CSeq",
    "parse_cseq",
    "cseq_parts",
    "RetryAfter",
    "parse_retry_after",
    "Challenge",
    "parse_challenges",
    "parse_challenge",
    "find_contact",
    "granted_expires",
    "min_expires",
    "retry_after",
]


# --- Via -------------------------------------------------------------------------------------

_VIA_RE = re.compile(
    r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_\-.]+)(?:[ \t]*:[ \t]*([0-9]{1,5}))?"
)


def _via_parts(text: str) -> tuple[re.Match[str], str, int | None, Params]:
    """The checks of ``Via.parse`` (``BadHeaderValue``/``BadUri`` for a malformed value) and what
    it reads: (match of ``_VIA_RE``, host, port, parameters)."""
    m = _VIA_RE.match(text)
    if not m:
        raise BadHeaderValue(f"malformed sent-protocol/sent-by in {text[:60]!r}", "Via")
    port_text = m.group(5)
    host, _ = parse_hostport(m.group(4), "Via")
    port = int(port_text) if port_text else None
    if port is not None and port > 65535:
        raise BadHeaderValue(f"port {port} out of range", "Via")
    params = parse_params(text[m.end():].rstrip(WS), "Via")
    rport = params.get("rport")
    if rport is not None and (not DIGITS_RE.fullmatch(rport) or int(rport[:6]) > 65535):
        raise BadHeaderValue(f"invalid rport {rport!r}", "Via")
    return m, host, port, params


def check_via(text: str) -> None:
    """Raise what ``Via.parse(text)`` raises, without building the ``Via`` (the parser's
    validation of every Via of every message).

    When the parameters are all ``;token`` / ``;token=token-or-host`` (``parse_params``'s fast
    path), the checks of ``_via_parts`` run here in the same order without building the dict:
    only the first ``rport`` (names compared lower-cased, as the dict keeps the first) is read.
    Anything else goes through ``_via_parts``."""
    m = _VIA_RE.match(text)
    if m is not None:
        rest = text[m.end():].rstrip(WS)
        if SIMPLE_PARAMS_RE.fullmatch(rest) is not None:
            port_text = m.group(5)
            parse_hostport(m.group(4), "Via")
            if port_text:
                port = int(port_text)
                if port > 65535:
                    raise BadHeaderValue(f"port {port} out of range", "Via")
            if rest:
                # ASCII (the regex's classes), so the lower-cased text has the same indexes; ';' and
                # '=' only separate (no class holds them): the first ";rport" followed by '=', ';' or
                # the end is the first parameter named rport.
                low = rest.lower()
                n = len(low)
                i = low.find(";rport")
                while i >= 0:
                    j = i + 6
                    if j == n or low[j] == ";":
                        break
                    if low[j] == "=":
                        end = rest.find(";", j)
                        value = rest[j + 1:] if end < 0 else rest[j + 1:end]
                        if not DIGITS_RE.fullmatch(value) or int(value[:6]) > 65535:
                            raise BadHeaderValue(f"invalid rport {value!r}", "Via")
                        break
                    i = low.find(";rport", j)
            return
    _via_parts(text)


@dataclass
class Via:
    """One Via value (RFC 3261 §20.42, RFC 3581 ``rport``)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        m, host, port, params = _via_parts(text)
        name, version, transport = m.group(1), m.group(2), m.group(3)
        return cls(transport=transport.upper(), host=host, port=port, params=params,
                   protocol=f"{name.upper()}/{version}")

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {format_host(self.host)}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def has_rport(self) -> bool:
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """The port filled in by the server (RFC 3581), ``None`` if absent or empty."""
        value = self.params.get("rport")
        return int(value) if value else None


def parse_vias(headers: Headers) -> list[Via]:
    """Every Via value in order (topmost first), across repeated and comma-joined lines."""
    return [Via.parse(v) for v in headers.values("Via")]


# --- CSeq ------------------------------------------------------------------------------------

_CSEQ_RE = re.compile(r"[ \t]*([0-9]+)[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*")


# Its ``__init__`` is the one ``@dataclass`` would generate, spelled out so that mypyc compiles it
# (see "outputs" in sipphones.sip.registration; tests/sip/test_native_init.py checks it).
@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    def __init__(self, number: int, method: str) -> None:
        object.__setattr__(self, "number", number)
        object.__setattr__(self, "method", method)

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(text: str) -> CSeq:
    """``CSeq: 1 REGISTER``; the number must be below 2**31 (RFC 3261 §8.1.1.5)."""
    number, method = cseq_parts(text)
    return CSeq(number, method)


# CSeq value -> cseq_parts(value) for the values read before ("1 REGISTER", "2 REGISTER", ...: the
# same few for every phone of a fleet). Bounded: cleared when full.
_CSEQ_PARTS: dict[str, tuple[int, str]] = {}
_CSEQ_PARTS_MAX = 1024


def cseq_parts(text: str) -> tuple[int, str]:
    """``parse_cseq`` as (number, method), without the ``CSeq`` object; the same errors."""
    parts = _CSEQ_PARTS.get(text)
    if parts is not None:
        return parts
    parts = _cseq_parts(text)
    if len(_CSEQ_PARTS) >= _CSEQ_PARTS_MAX:
        _CSEQ_PARTS.clear()
    _CSEQ_PARTS[text] = parts
    return parts


def _cseq_parts(text: str) -> tuple[int, str]:
    m = _CSEQ_RE.fullmatch(text)
    if not m:
        raise BadHeaderValue(f"malformed {text[:40]!r}", "CSeq")
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > 10 or int(digits) > MAX_CSEQ:
        raise BadHeaderValue("sequence number is not below 2**31", "CSeq")
    return int(digits), m.group(2)


# --- Retry-After -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryAfter:
    """``Retry-After: 120 (comment);duration=3600`` (RFC 3261 §20.33)."""

    seconds: int
    comment: str | None = None
    params: Params = field(default_factory=dict, hash=False)

    @property
    def duration(self) -> int | None:
        value = self.params.get("duration")
        return None if value is None else parse_delta(value, "Retry-After duration")


def _read_comment(s: str, i: int) -> tuple[str, int]:
    """Read a (possibly nested) comment starting at ``s[i] == '('``; return its inner text."""
    depth, j, n, buf = 0, i, len(s), []
    while j < n:
        c = s[j]
        if c == "\\" and j + 1 < n:
            buf.append(s[j + 1])
            j += 2
            continue
        if c == "(":
            depth += 1
            if depth > 1:
                buf.append(c)
        elif c == ")":
            depth -= 1
            if depth == 0:
                return "".join(buf), j + 1
            buf.append(c)
        else:
            buf.append(c)
        j += 1
    raise BadHeaderValue("unterminated comment", "Retry-After")


def parse_retry_after(text: str) -> RetryAfter:
    m = re.match(r"[ \t]*([0-9]+)", text)
    if not m:
        raise BadHeaderValue(f"malformed {text[:40]!r}", "Retry-After")
    seconds = parse_delta(m.group(1), "Retry-After")
    i = skip_ws(text, m.end())
    comment = None
    if i < len(text) and text[i] == "(":
        comment, i = _read_comment(text, i)
    params, end = parse_params_at(text, i, "Retry-After")
    if end != len(text):
        raise BadHeaderValue(f"unexpected {text[end:end + 10]!r}", "Retry-After")
    if "duration" in params:
        value = params["duration"]
        if value is None or not DIGITS_RE.fullmatch(value):
            raise BadHeaderValue("duration must be a number of seconds", "Retry-After")
    return RetryAfter(seconds, comment, params)


# --- WWW-Authenticate / Proxy-Authenticate ---------------------------------------------------

_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


# Its ``__init__`` is the one ``@dataclass`` would generate, spelled out so that mypyc compiles it
# (see "outputs" in sipphones.sip.registration; tests/sip/test_native_init.py checks it);
# None for a field with a default factory stands for a new, empty dict.
@dataclass(frozen=True)
class Challenge:
    """One auth challenge (RFC 7235 §2.1): a scheme and its parameters (lower-cased names,
    unquoted values), or a token68 blob for schemes that use one."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict, hash=False)
    token68: str | None = None

    def __init__(self, scheme: str, params: dict[str, str] | None = None, token68: str | None = None) -> None:
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "params", dict() if params is None else params)
        object.__setattr__(self, "token68", token68)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name.lower(), default)


_TOKEN_CLASS = r"[A-Za-z0-9\-.!%*_+`'~]"
_CHALLENGE_SCHEME_RE = re.compile(rf"[ \t,]*({_TOKEN_CLASS}+)[ \t]+")
_AUTH_PARAM_RE = re.compile(
    rf"({_TOKEN_CLASS}+)[ \t]*=[ \t]*"
    r'(?:"([^"\\\r\n]*+(?:\\[^\r\n][^"\\\r\n]*+)*+)"|([^ \t,"][^ \t,]*)?)'
    r"[ \t]*(?:\Z|,[ \t,]*)"
)


def _parse_one_challenge(s: str) -> Challenge | None:
    """The common case ``Scheme name=value, name="value", ...`` (one challenge, parameters only)
    read with regexes; ``None`` for anything else, which the tokenizer below then reads (with the
    same result for this case: the regexes follow its rules)."""
    m = _CHALLENGE_SCHEME_RE.match(s)
    if m is None:
        return None
    i, n = m.end(), len(s)
    m68 = _TOKEN68_RE.match(s, i)
    if m68 is not None:
        after = skip_ws(s, m68.end())
        if after >= n or s[after] == ",":
            return None   # a token68, not parameters
    params: dict[str, str] = {}
    match = _AUTH_PARAM_RE.match
    while i < n:
        p = match(s, i)
        if p is None:
            return None
        name, quoted, plain = p.groups()
        if quoted is not None:
            value = QUOTED_PAIR_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            value = plain or ""
        params.setdefault(name.lower(), value)
        i = p.end()
    if not params:
        return None
    return Challenge(m.group(1), params, None)


def parse_challenges(text: str, header: str = "WWW-Authenticate") -> list[Challenge]:
    """Every challenge in one header value; RFC 7235 allows several, comma-separated.

    Quoted values may hold commas and ``\\`` escapes; unquoted values run to the next comma or
    blank (lenient with servers that leave a nonce with ``/`` or ``=`` unquoted). The same
    syntax is used by Authorization values, so this also reads what the digest client wrote.
    A repeated parameter keeps its first value.
    """
    fast = _parse_one_challenge(text)
    if fast is not None:
        return [fast]
    out: list[tuple[str, dict[str, str], str | None]] = []
    s = text
    n = len(s)
    i = 0
    while True:
        while i < n and (s[i] in WS or s[i] == ","):
            i += 1
        if i >= n:
            break
        j = i
        while j < n and s[j] in TOKEN_CHARS:
            j += 1
        if j == i:
            raise BadHeaderValue(f"expected a token at {s[i:i + 10]!r}", header)
        word = s[i:j]
        k = skip_ws(s, j)
        if k < n and s[k] == "=":
            # auth-param = token BWS "=" BWS ( token / quoted-string ), of the current challenge
            if not out:
                raise BadHeaderValue("parameter before any auth scheme", header)
            if out[-1][2] is not None:
                raise BadHeaderValue("parameters after a token68", header)
            k = skip_ws(s, k + 1)
            if k < n and s[k] == '"':
                value, k = read_quoted(s, k, header)
            else:
                m = k
                while m < n and s[m] not in WS and s[m] != ",":
                    m += 1
                value = s[k:m]
                k = m
            out[-1][1].setdefault(word.lower(), value)
            i = skip_ws(s, k)
            if i < n and s[i] != ",":
                raise BadHeaderValue(f"expected ',' at {s[i:i + 10]!r}", header)
            continue
        # A new challenge: auth-scheme [ 1*SP ( token68 / #auth-param ) ]. The text after the
        # scheme is a token68 only when it stands alone up to the next comma ("Basic abc==");
        # "realm=..." followed by a value is the first auth-param instead.
        token68 = None
        if k > j and k < n:
            m68 = _TOKEN68_RE.match(s, k)
            if m68:
                after = skip_ws(s, m68.end())
                if after >= n or s[after] == ",":
                    token68 = m68.group(0)
                    k = after
        elif k < n and s[k] != ",":
            raise BadHeaderValue(f"expected a blank after scheme {word!r}", header)
        out.append((word, {}, token68))
        i = k
    if not out:
        raise BadHeaderValue("no challenge", header)
    return [Challenge(scheme, params, t68) for scheme, params, t68 in out]


def parse_challenge(text: str, header: str = "WWW-Authenticate") -> Challenge:
    """The first challenge of a header value (see ``parse_challenges`` for all of them)."""
    return parse_challenges(text, header)[0]


# --- REGISTER response helpers (RFC 3261 §10.2.4) ---------------------------------------------


def find_contact(contacts: Iterable[NameAddr], ours: SipUri) -> NameAddr | None:
    """The Contact entry whose URI is equivalent (§19.1.4) to ``ours``, or ``None``."""
    for contact in contacts:
        if not contact.wildcard and isinstance(contact.uri, SipUri) and ours.equivalent(contact.uri):
            return contact
    return None


def granted_expires(response: Response, ours: SipUri) -> int | None:
    """Seconds the registrar granted to our binding in a 2xx to REGISTER (RFC 3261 §10.2.4).

    The ``expires`` parameter of the Contact matching ``ours`` wins; otherwise the ``Expires``
    header. ``None`` means no binding of ours is in effect: the response lists other Contacts
    but not ours, or it carries no expiry at all. Raises ``BadHeaderValue`` for malformed
    Contact/Expires values.
    """
    contacts = parse_contacts(response.headers)
    mine = find_contact(contacts, ours)
    if mine is not None and mine.expires is not None:
        return mine.expires
    if mine is None and contacts:
        return None
    expires = response.headers.get("Expires")
    return None if expires is None else parse_delta_seconds(expires, "Expires")


def min_expires(response: Response) -> int | None:
    """The ``Min-Expires`` of a 423 (RFC 3261 §20.23), ``None`` if absent."""
    value = response.headers.get("Min-Expires")
    return None if value is None else parse_delta_seconds(value, "Min-Expires")


def retry_after(response: Response) -> RetryAfter | None:
    value = response.headers.get("Retry-After")
    return None if value is None else parse_retry_after(value)
