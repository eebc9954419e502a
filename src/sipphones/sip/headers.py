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

import ipaddress
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from collections.abc import Iterable, Mapping

from .errors import BadHeaderValue, BadUri, SerializeError
from .message import Headers, Response, split_list

Params = dict[str, "str | None"]

# RFC 3261 §25 character classes.
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TOKEN_CHARS = frozenset(_ALNUM + "-.!%*_+`'~")
_MARK = "-_.!~*'()"
_UNRESERVED = _ALNUM + _MARK
_USER_SAFE = frozenset(_UNRESERVED + "&=+$,;?/")
_PASSWORD_SAFE = frozenset(_UNRESERVED + "&=+$,")
_PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
_HNV_SAFE = frozenset(_UNRESERVED + "[]/?:+$")
# A gen-value may be a token or a host (RFC 3261 §25): tokens plus the host punctuation.
_GEN_VALUE_CHARS = TOKEN_CHARS | frozenset("[]:")
_WS = " \t"

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?)*\.?")
_IPV4_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
DIGITS_RE = re.compile(r"[0-9]+")
_HEX = "0123456789abcdefABCDEF"
MAX_DELTA_SECONDS = 2**32 - 1   # RFC 3261 §20.19/§20.37: larger values mean this
MAX_CSEQ = 2**31 - 1            # RFC 3261 §8.1.1.5: the sequence number is below 2**31


def is_token(text: str) -> bool:
    return bool(text) and _TOKEN_RE.fullmatch(text) is not None


# --- quoted strings --------------------------------------------------------------------------


_QUOTE_SPECIAL = re.compile(r'["\\\x00-\x08\x0a-\x1f\x7f]')


def quote(text: str) -> str:
    """Return ``text`` as a quoted-string (RFC 3261 §25), escaping ``"``, ``\\`` and controls.

    CR and LF cannot be carried by a quoted-string at all (quoted-pair excludes them), so they
    raise ``SerializeError`` rather than produce a header that ends early.
    """
    # The usual case, nothing to escape: printable ASCII (no control character) without '"' or
    # '\\' is checked by string methods; anything else by the regex.
    if (text.isascii() and text.isprintable() and '"' not in text and "\\" not in text) \
            or not _QUOTE_SPECIAL.search(text):
        return f'"{text}"'
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch in "\r\n":
            raise SerializeError("CR/LF cannot be written in a quoted string")
        if ch in '"\\' or (o < 0x20 and ch != "\t") or o == 0x7F:
            out.append("\\")
        out.append(ch)
    out.append('"')
    return "".join(out)


def _read_quoted(s: str, i: int, header: str | None = None) -> tuple[str, int]:
    """Read the quoted-string starting at ``s[i] == '"'``; return (unescaped text, index after)."""
    n = len(s)
    j = i + 1
    buf: list[str] = []
    while j < n:
        c = s[j]
        if c == "\\":
            if j + 1 >= n or s[j + 1] in "\r\n":
                raise BadHeaderValue("unterminated escape in quoted string", header)
            buf.append(s[j + 1])
            j += 2
        elif c == '"':
            return "".join(buf), j + 1
        elif c in "\r\n":
            raise BadHeaderValue("line break in quoted string", header)
        else:
            buf.append(c)
            j += 1
    raise BadHeaderValue("unterminated quoted string", header)


def unquote(text: str) -> str:
    """Undo ``quote``: ``"a\\"b"`` -> ``a"b``. A value without quotes is returned stripped."""
    s = text.strip(_WS)
    if not s.startswith('"'):
        return s
    value, end = _read_quoted(s, 0)
    if end != len(s):
        raise BadHeaderValue("text after the closing quote")
    return value


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    return i


# --- URI escaping ----------------------------------------------------------------------------


def _charset_re(chars: frozenset[str]) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]*")


def _all_in(text: str, chars: frozenset[str]) -> bool:
    """``all(c in chars for c in text)``, with one regex for the character sets of this module."""
    pattern = _CHARSET_RES.get(chars)
    if pattern is None:
        return all(c in chars for c in text)
    return pattern.fullmatch(text) is not None


# One regex per character set of this module (keyed by the frozenset itself).
_CHARSET_RES: dict[frozenset[str], re.Pattern[str]] = {
    chars: _charset_re(chars) for chars in (_USER_SAFE, _PASSWORD_SAFE, _PARAM_SAFE, _HNV_SAFE, TOKEN_CHARS,
                                            _GEN_VALUE_CHARS)
}


def escape(text: str, safe: frozenset[str]) -> str:
    """Percent-encode every character of ``text`` outside ``safe`` (as UTF-8 bytes)."""
    if _all_in(text, safe):
        return text
    out = []
    for b in text.encode("utf-8", "surrogateescape"):
        c = chr(b)
        out.append(c if b < 0x80 and c in safe else f"%{b:02X}")
    return "".join(out)


def unescape(text: str, allowed: frozenset[str] | None = None, what: str = "URI") -> str:
    """Decode ``%HH`` escapes; reject characters outside ``allowed`` (when given).

    Bytes that are not valid UTF-8 decode to surrogate escapes so ``escape`` restores them.
    """
    if "%" not in text:
        if allowed is not None and not _all_in(text, allowed):
            for c in text:
                if c not in allowed:
                    raise BadUri(f"character {c!r} not allowed in {what}")
        return text
    raw = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "%":
            h = text[i + 1:i + 3]
            if len(h) != 2 or h[0] not in _HEX or h[1] not in _HEX:
                raise BadUri(f"invalid escape {text[i:i + 3]!r} in {what}")
            raw.append(int(h, 16))
            i += 3
            continue
        if allowed is not None and c not in allowed:
            raise BadUri(f"character {c!r} not allowed in {what}")
        raw.extend(c.encode("utf-8", "surrogateescape"))
        i += 1
    return raw.decode("utf-8", "surrogateescape")


# --- hosts -----------------------------------------------------------------------------------


def parse_hostport(text: str, header: str | None = None) -> tuple[str, int | None]:
    """``host[:port]`` with host = hostname / IPv4 / ``[IPv6]``. Returns (host without brackets, port)."""
    return _parse_hostport(text, header)


@lru_cache(maxsize=4096)   # the same few registrar and local addresses come in every message
def _parse_hostport(text: str, header: str | None) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise BadUri("unclosed '[' in host", header)
        host, rest = text[1:end], text[end + 1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise BadUri(f"invalid IPv6 reference [{host}]", header) from None
    else:
        host, sep, port_text = text.partition(":")
        rest = sep + port_text
        if _IPV4_RE.fullmatch(host):
            if any(int(octet) > 255 for octet in host.split(".")):
                raise BadUri(f"invalid IPv4 address {host!r}", header)
        elif not _HOSTNAME_RE.fullmatch(host) or len(host) > 255:
            raise BadUri(f"invalid host {host!r}", header)
    port = None
    if rest:
        if not rest.startswith(":") or not DIGITS_RE.fullmatch(rest[1:]) or len(rest) > 6:
            raise BadUri(f"invalid port in {text!r}", header)
        port = int(rest[1:])
        if port > 65535:
            raise BadUri(f"port {port} out of range", header)
    return host, port


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --- parameters ------------------------------------------------------------------------------


def _format_gen_value(value: str) -> str:
    if value and _all_in(value, _GEN_VALUE_CHARS):
        return value
    return quote(value)


def format_params(params: Mapping[str, str | None]) -> str:
    """``{"tag": "x", "lr": None}`` -> ``;tag=x;lr``; values that are not token/host are quoted."""
    out = []
    for name, value in params.items():
        if not is_token(name):
            raise SerializeError(f"invalid parameter name {name!r}")
        out.append(f";{name}" if value is None else f";{name}={_format_gen_value(value)}")
    return "".join(out)


_PARAM_RE = re.compile(
    r"[ \t]*;[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)"                 # ; name
    r"(?:[ \t]*=[ \t]*(?:([A-Za-z0-9\-.!%*_+`'~\[\]:]+)"      # = token-or-host
    r'|"([^"\\\r\n]*+(?:\\[^\r\n][^"\\\r\n]*+)*+)"))?'                      # = quoted-string
)
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
SIMPLE_PARAMS_RE = re.compile(r"(?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~\[\]:]+)?)*")


def _parse_params_at(s: str, i: int, header: str | None, stop: str = "") -> tuple[Params, int]:
    """Parse ``*( SEMI generic-param )`` from ``s[i:]`` (LWS allowed around ``;`` and ``=``).

    Stops at the end or at a character of ``stop`` (outside quotes); returns (params, index).
    """
    n = len(s)
    value: str | None
    simple = SIMPLE_PARAMS_RE.match(s, i)
    if simple.end() == n:  # type: ignore[union-attr]  # the pattern matches the empty string
        # Fast path: only ``;token`` / ``;token=token-or-host`` up to the end, no blanks or quotes
        # (what the loop below would read the same way).
        params: Params = {}
        if i < n:
            for part in s[i + 1:].split(";"):
                name, eq, value = part.partition("=")
                params.setdefault(name.lower(), value if eq else None)
        return params, n
    params = {}
    match = _PARAM_RE.match
    while True:
        m = match(s, i)
        if m is None:
            i = _skip_ws(s, i)
            if i >= n or s[i] in stop:
                return params, i
            raise BadHeaderValue(f"malformed parameter at {s[i:i + 20]!r}", header)
        name, token_value, quoted_value = m.groups()
        if quoted_value is not None:
            value = _QUOTED_PAIR_RE.sub(r"\1", quoted_value) if "\\" in quoted_value else quoted_value
        else:
            value = token_value
        params.setdefault(name.lower(), value)
        i = m.end()


def parse_params(text: str, header: str | None = None) -> Params:
    """Parse ``;a=b;c;d="q v"`` (leading ``;`` required when not empty) into a dict."""
    params, end = _parse_params_at(text, 0, header)
    if end != len(text):
        raise BadHeaderValue(f"unexpected {text[end:end + 10]!r}", header)
    return params


def _parse_delta(text: str, header: str) -> int:
    t = text.strip(_WS)
    if not DIGITS_RE.fullmatch(t):
        raise BadHeaderValue(f"{text[:40]!r} is not a number of seconds", header)
    t = t.lstrip("0") or "0"
    return MAX_DELTA_SECONDS if len(t) > 10 else min(int(t), MAX_DELTA_SECONDS)


def parse_delta_seconds(text: str, header: str = "Expires") -> int:
    """``delta-seconds`` of Expires / Min-Expires; values above 2**32-1 are clamped to it."""
    return _parse_delta(text, header)


# --- URIs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbsoluteUri:
    """A URI of a scheme other than sip/sips (``tel:``, ``urn:``...), kept as text."""

    text: str

    @property
    def scheme(self) -> str:
        return self.text.split(":", 1)[0].lower()

    @classmethod
    def parse(cls, text: str) -> AbsoluteUri:
        scheme, sep, rest = text.partition(":")
        if not sep or not _SCHEME_RE.fullmatch(scheme) or not rest:
            raise BadUri(f"not an absolute URI: {text[:60]!r}")
        for c in rest:
            if c.isspace() or c in '<>"' or ord(c) < 0x20 or ord(c) == 0x7F:
                raise BadUri(f"character {c!r} not allowed in URI")
        return cls(text)

    def __str__(self) -> str:
        return self.text


# Its ``__init__`` is the one ``@dataclass`` would generate, spelled out so that mypyc compiles it
# (see "outputs" in sipphones.sip.registration; tests/sip/test_native_init.py checks it);
# None for a field with a default factory stands for a new, empty dict.
@dataclass(frozen=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1).

    ``user``/``password``/params/headers hold unescaped text; ``str()`` escapes what must be
    escaped, so a user name with spaces or non-ASCII letters is safe to pass in directly.
    Dataclass equality is structural; use ``equivalent`` for the RFC 3261 §19.1.4 comparison.
    """

    host: str
    user: str | None = None
    port: int | None = None
    scheme: str = "sip"
    password: str | None = None
    params: Params = field(default_factory=dict, hash=False)
    headers: dict[str, str] = field(default_factory=dict, hash=False)

    def __init__(self, host: str, user: str | None = None, port: int | None = None, scheme: str = "sip",
                 password: str | None = None, params: Params | None = None,
                 headers: dict[str, str] | None = None) -> None:
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "password", password)
        object.__setattr__(self, "params", dict() if params is None else params)
        object.__setattr__(self, "headers", dict() if headers is None else headers)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a sip/sips URI; raise ``BadUri`` for anything else or anything malformed."""
        scheme, sep, rest = text.partition(":")
        scheme = scheme.lower()
        if not sep or scheme not in ("sip", "sips"):
            raise BadUri(f"not a sip/sips URI: {text[:60]!r}")
        user = password = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1:]
            u, colon, pw = userinfo.partition(":")
            if not u:
                raise BadUri("empty user part")
            user = unescape(u, _USER_SAFE, "user part")
            if colon:
                password = unescape(pw, _PASSWORD_SAFE, "password")
        hostport, qmark, header_text = rest.partition("?")
        hostport, semi, param_text = hostport.partition(";")
        if not hostport:
            raise BadUri("no host")
        host, port = parse_hostport(hostport)
        params: Params = {}
        if semi:
            for item in param_text.split(";"):
                name, eq, value = item.partition("=")
                if not name:
                    raise BadUri("empty URI parameter")
                key = unescape(name, _PARAM_SAFE, "URI parameter").lower()
                if eq and not value:
                    raise BadUri(f"URI parameter {key!r} has an empty value")
                params.setdefault(key, unescape(value, _PARAM_SAFE, "URI parameter") if eq else None)
        headers: dict[str, str] = {}
        if qmark:
            for item in header_text.split("&"):
                name, eq, value = item.partition("=")
                if not name or not eq:
                    raise BadUri("URI header must be name=value")
                headers[unescape(name, _HNV_SAFE, "URI header")] = unescape(value, _HNV_SAFE, "URI header")
        return cls(host=host, user=user, port=port, scheme=scheme, password=password,
                   params=params, headers=headers)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                out.append(":" + escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(format_host(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params.items():
            out.append(";" + escape(name, _PARAM_SAFE))
            if value is not None:
                out.append("=" + escape(value, _PARAM_SAFE))
        if self.headers:
            out.append("?" + "&".join(f"{escape(k, _HNV_SAFE)}={escape(v, _HNV_SAFE)}"
                                      for k, v in self.headers.items()))
        return "".join(out)

    @property
    def hostport(self) -> str:
        return format_host(self.host) + ("" if self.port is None else f":{self.port}")

    def replace(self, **changes) -> SipUri:
        return replace(self, **changes)

    def equivalent(self, other: SipUri | AbsoluteUri | None) -> bool:
        """RFC 3261 §19.1.4 comparison.

        Scheme, host and parameter names compare case-insensitively, user and password
        case-sensitively (after unescaping); a missing port differs from an explicit one;
        ``user``, ``ttl``, ``method``, ``maddr`` and ``transport`` must agree when either side
        has them, other parameters only when both have them; headers must all match.
        """
        if other is self:
            return True
        if not isinstance(other, SipUri):
            return False
        if (self.scheme.lower() != other.scheme.lower() or self.user != other.user
                or self.password != other.password or self.port != other.port
                or self.host.lower() != other.host.lower()):
            return False
        for name in ("user", "ttl", "method", "maddr", "transport"):
            if _lower(self.params.get(name, "")) != _lower(other.params.get(name, "")):
                return False
        for name in self.params.keys() & other.params.keys():
            if _lower(self.params[name]) != _lower(other.params[name]):
                return False
        return {k.lower(): v for k, v in self.headers.items()} == {k.lower(): v for k, v in other.headers.items()}


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def parse_uri(text: str) -> SipUri | AbsoluteUri:
    """A sip/sips URI as ``SipUri``, any other scheme as ``AbsoluteUri``."""
    head = text[:5].lower()
    if head.startswith("sip:") or head == "sips:":
        return SipUri.parse(text)
    return AbsoluteUri.parse(text)


# --- name-addr (To, From, Contact) ------------------------------------------------------------


@dataclass
class NameAddr:
    """A To/From/Contact value: ``"Display" <uri>;param=value`` or the ``*`` Contact.

    ``params`` are the header parameters (``tag``, ``expires``, ``q``...), not the URI's.
    For the unbracketed addr-spec form, RFC 3261 §20 says everything after ``;`` belongs to
    the header, which is what the parser does. ``str()`` always writes the bracketed form.
    """

    uri: SipUri | AbsoluteUri | None
    display_name: str | None = None
    params: Params = field(default_factory=dict)
    wildcard: bool = False

    @classmethod
    def parse(cls, text: str, header: str | None = None) -> NameAddr:
        s = text.strip(_WS)
        if s == "*":
            return cls(uri=None, wildcard=True)
        if not s:
            raise BadHeaderValue("empty address", header)
        display: str | None = None
        i = 0
        n = len(s)
        if s[0] == "<":
            pass   # no display name (the usual case): the URI starts right here
        elif s[0] == '"':
            display, i = _read_quoted(s, 0, header)
            i = _skip_ws(s, i)
            if i >= n or s[i] != "<":
                raise BadHeaderValue("quoted display name must be followed by <URI>", header)
        else:
            lt = s.find("<")
            cut = min((p for p in (s.find(";"), s.find('"')) if p >= 0), default=n)
            if 0 <= lt < cut:
                words = s[:lt].split()
                if any(not is_token(w) for w in words):
                    raise BadHeaderValue("display name must be a quoted string or tokens", header)
                display = " ".join(words) if words else None
                i = lt
        if i < n and s[i] == "<":
            end = s.find(">", i)
            if end < 0:
                raise BadHeaderValue("missing '>'", header)
            uri_text = s[i + 1:end]
            i = end + 1
        else:
            j = i
            while j < n and s[j] not in ";" + _WS:
                j += 1
            uri_text = s[i:j]
            if any(c in uri_text for c in ",?<>\""):
                raise BadHeaderValue("a URI with ',', '?' or '<' must be enclosed in <>", header)
            i = j
        try:
            uri = parse_uri(uri_text)
        except BadUri as e:
            raise BadUri(str(e), header) from None
        params, end = _parse_params_at(s, i, header)
        if end != n:
            raise BadHeaderValue(f"unexpected {s[end:end + 10]!r}", header)
        return cls(uri=uri, display_name=display, params=params)

    def __str__(self) -> str:
        if self.wildcard:
            return "*"
        name = f"{quote(self.display_name)} " if self.display_name else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        """The ``expires`` parameter in seconds, ``None`` when absent."""
        value = self.params.get("expires")
        if value is None:
            return None
        return _parse_delta(value, "Contact expires")

    @property
    def q(self) -> float | None:
        value = self.params.get("q")
        if value is None:
            return None
        if not re.fullmatch(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?", value):
            raise BadHeaderValue(f"invalid q value {value!r}", "Contact")
        return float(value)


# A conservative subset of name-addr for validation (To/From of nearly every message):
# ``<sip:user@host[:port][;uri-params]>[;params]`` with plain characters only. Everything it
# matches NameAddr.parse accepts (the host is a name with a letter, '_' or '-', or an IPv4
# address with octets up to 255; port and host length are checked by simple_name_addr);
# anything else is parsed in full.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01][0-9][0-9]|[0-9][0-9]?)"
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?"
_SIMPLE_HEAD = (
    r"<[Ss][Ii][Pp][Ss]?:(?:[A-Za-z0-9\-_.!~*'()&=+$,]+@)?"
    rf"((?=[0-9.]*[A-Za-z_\-]){_LABEL}(?:\.{_LABEL})*\.?|{_OCTET}(?:\.{_OCTET}){{3}})"
    r"(?::([0-9]{1,5}))?"
    r"(?:;[A-Za-z0-9\-_.!~*'()]+(?:=[A-Za-z0-9\-_.!~*'()]+)?)*>"
)
_SIMPLE_TAIL = r"(?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~\[\]:]+)?)*"
_SIMPLE_NAME_ADDR_RE = re.compile(_SIMPLE_HEAD + _SIMPLE_TAIL)
# The two parts of the subset, read separately (see simple_name_addr). The tail's quantifiers
# are possessive: ';' and '=' are outside its character classes, so it never backtracks anyway.
_SIMPLE_HEAD_RE = re.compile(_SIMPLE_HEAD)
_SIMPLE_TAIL_RE = re.compile(r"(?:;[A-Za-z0-9\-.!%*_+`'~]++(?:=[A-Za-z0-9\-.!%*_+`'~\[\]:]++)?)*+")
# "<uri>" part -> whether it is in the subset (with the host length and port checks). The From
# and To of a phone's messages share it (its AoR), and every message repeats it: bounded, cleared
# when full.
_SIMPLE_HEADS: dict[str, bool] = {}
_SIMPLE_HEADS_MAX = 4096


def simple_name_addr(text: str) -> bool:
    """True when ``text`` is in the subset above, i.e. ``NameAddr.parse(text)`` cannot fail.

    No character class of the ``<...>`` part holds ``>``, so the subset's ``>`` is the first one
    in ``text``: the text matches when what precedes it (with it) matches ``_SIMPLE_HEAD``, with
    the host and port checks, and what follows matches ``_SIMPLE_TAIL``. The first part's answer
    is remembered per text (see ``_SIMPLE_HEADS``)."""
    end = text.find(">")
    if end < 0 or _SIMPLE_TAIL_RE.fullmatch(text, end + 1) is None:
        return False
    head = text[:end + 1]
    ok = _SIMPLE_HEADS.get(head)
    if ok is None:
        m = _SIMPLE_HEAD_RE.fullmatch(head)
        if m is None:
            ok = False
        else:
            port = m.group(2)
            ok = len(m.group(1)) <= 255 and (port is None or int(port) <= 65535)
        if len(_SIMPLE_HEADS) >= _SIMPLE_HEADS_MAX:
            _SIMPLE_HEADS.clear()
        _SIMPLE_HEADS[head] = ok
    return ok


def parse_name_addrs(values: Iterable[str], header: str | None = None) -> list[NameAddr]:
    """Parse header lines of a list header (Contact): each line may hold several addresses."""
    out: list[NameAddr] = []
    for line in values:
        for item in split_list(line):
            out.append(NameAddr.parse(item, header))
    return out


def parse_contacts(headers: Headers) -> list[NameAddr]:
    return parse_name_addrs(headers.get_all("Contact"), "Contact")


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
    params = parse_params(text[m.end():].rstrip(_WS), "Via")
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
        rest = text[m.end():].rstrip(_WS)
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
        return None if value is None else _parse_delta(value, "Retry-After duration")


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
    seconds = _parse_delta(m.group(1), "Retry-After")
    i = _skip_ws(text, m.end())
    comment = None
    if i < len(text) and text[i] == "(":
        comment, i = _read_comment(text, i)
    params, end = _parse_params_at(text, i, "Retry-After")
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
        after = _skip_ws(s, m68.end())
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
            value = _QUOTED_PAIR_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
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
        while i < n and (s[i] in _WS or s[i] == ","):
            i += 1
        if i >= n:
            break
        j = i
        while j < n and s[j] in TOKEN_CHARS:
            j += 1
        if j == i:
            raise BadHeaderValue(f"expected a token at {s[i:i + 10]!r}", header)
        word = s[i:j]
        k = _skip_ws(s, j)
        if k < n and s[k] == "=":
            # auth-param = token BWS "=" BWS ( token / quoted-string ), of the current challenge
            if not out:
                raise BadHeaderValue("parameter before any auth scheme", header)
            if out[-1][2] is not None:
                raise BadHeaderValue("parameters after a token68", header)
            k = _skip_ws(s, k + 1)
            if k < n and s[k] == '"':
                value, k = _read_quoted(s, k, header)
            else:
                m = k
                while m < n and s[m] not in _WS and s[m] != ",":
                    m += 1
                value = s[k:m]
                k = m
            out[-1][1].setdefault(word.lower(), value)
            i = _skip_ws(s, k)
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
                after = _skip_ws(s, m68.end())
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
