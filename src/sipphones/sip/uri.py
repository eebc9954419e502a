"""SIP URIs and name-addr values (To, From, Contact; RFC 3261 §19.1, §20.10, §25), on the lexical
layer of ``sipphones.sip.syntax``; see ``sipphones.sip.headers`` for the conventions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from collections.abc import Iterable

from .errors import BadHeaderValue, BadUri
from .message import Headers, split_list
from .syntax import (
    Params,
    USER_SAFE,
    PASSWORD_SAFE,
    PARAM_SAFE,
    HNV_SAFE,
    WS,
    SCHEME_RE,
    is_token,
    quote,
    read_quoted,
    skip_ws,
    escape,
    unescape,
    parse_hostport,
    format_host,
    format_params,
    parse_params_at,
    parse_delta,
)

__all__ = [
    "AbsoluteUri",
    "SipUri",
    "parse_uri",
    "NameAddr",
    "simple_name_addr",
    "parse_name_addrs",
    "parse_contacts",
]


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
        if not sep or not SCHEME_RE.fullmatch(scheme) or not rest:
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
            user = unescape(u, USER_SAFE, "user part")
            if colon:
                password = unescape(pw, PASSWORD_SAFE, "password")
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
                key = unescape(name, PARAM_SAFE, "URI parameter").lower()
                if eq and not value:
                    raise BadUri(f"URI parameter {key!r} has an empty value")
                params.setdefault(key, unescape(value, PARAM_SAFE, "URI parameter") if eq else None)
        headers: dict[str, str] = {}
        if qmark:
            for item in header_text.split("&"):
                name, eq, value = item.partition("=")
                if not name or not eq:
                    raise BadUri("URI header must be name=value")
                headers[unescape(name, HNV_SAFE, "URI header")] = unescape(value, HNV_SAFE, "URI header")
        return cls(host=host, user=user, port=port, scheme=scheme, password=password,
                   params=params, headers=headers)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, USER_SAFE))
            if self.password is not None:
                out.append(":" + escape(self.password, PASSWORD_SAFE))
            out.append("@")
        out.append(format_host(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params.items():
            out.append(";" + escape(name, PARAM_SAFE))
            if value is not None:
                out.append("=" + escape(value, PARAM_SAFE))
        if self.headers:
            out.append("?" + "&".join(f"{escape(k, HNV_SAFE)}={escape(v, HNV_SAFE)}"
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
        s = text.strip(WS)
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
            display, i = read_quoted(s, 0, header)
            i = skip_ws(s, i)
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
            while j < n and s[j] not in ";" + WS:
                j += 1
            uri_text = s[i:j]
            if any(c in uri_text for c in ",?<>\""):
                raise BadHeaderValue("a URI with ',', '?' or '<' must be enclosed in <>", header)
            i = j
        try:
            uri = parse_uri(uri_text)
        except BadUri as e:
            raise BadUri(str(e), header) from None
        params, end = parse_params_at(s, i, header)
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
        return parse_delta(value, "Contact expires")

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
