"""The lexical layer of SIP header values (RFC 3261 §25): character classes, tokens, quoted
strings, %-escaping, ``host[:port]``, generic parameters and delta-seconds. The types built on it
are in ``sipphones.sip.uri`` (URIs, name-addr) and ``sipphones.sip.headers`` (Via, CSeq, ...)."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from collections.abc import Mapping

from .errors import BadHeaderValue, BadUri, SerializeError

__all__ = [
    "Params",
    "TOKEN_CHARS",
    "USER_SAFE",
    "PASSWORD_SAFE",
    "PARAM_SAFE",
    "HNV_SAFE",
    "WS",
    "SCHEME_RE",
    "DIGITS_RE",
    "MAX_DELTA_SECONDS",
    "MAX_CSEQ",
    "is_token",
    "quote",
    "read_quoted",
    "unquote",
    "skip_ws",
    "escape",
    "unescape",
    "parse_hostport",
    "format_host",
    "format_params",
    "QUOTED_PAIR_RE",
    "SIMPLE_PARAMS_RE",
    "parse_params_at",
    "parse_params",
    "parse_delta",
    "parse_delta_seconds",
]

Params = dict[str, "str | None"]

# RFC 3261 §25 character classes.
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TOKEN_CHARS = frozenset(_ALNUM + "-.!%*_+`'~")
_MARK = "-_.!~*'()"
_UNRESERVED = _ALNUM + _MARK
USER_SAFE = frozenset(_UNRESERVED + "&=+$,;?/")
PASSWORD_SAFE = frozenset(_UNRESERVED + "&=+$,")
PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
HNV_SAFE = frozenset(_UNRESERVED + "[]/?:+$")
# A gen-value may be a token or a host (RFC 3261 §25): tokens plus the host punctuation.
_GEN_VALUE_CHARS = TOKEN_CHARS | frozenset("[]:")
WS = " \t"

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
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


def read_quoted(s: str, i: int, header: str | None = None) -> tuple[str, int]:
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
    s = text.strip(WS)
    if not s.startswith('"'):
        return s
    value, end = read_quoted(s, 0)
    if end != len(s):
        raise BadHeaderValue("text after the closing quote")
    return value


def skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in WS:
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
    chars: _charset_re(chars) for chars in (USER_SAFE, PASSWORD_SAFE, PARAM_SAFE, HNV_SAFE, TOKEN_CHARS,
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
QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
SIMPLE_PARAMS_RE = re.compile(r"(?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~\[\]:]+)?)*")


def parse_params_at(s: str, i: int, header: str | None, stop: str = "") -> tuple[Params, int]:
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
            i = skip_ws(s, i)
            if i >= n or s[i] in stop:
                return params, i
            raise BadHeaderValue(f"malformed parameter at {s[i:i + 20]!r}", header)
        name, token_value, quoted_value = m.groups()
        if quoted_value is not None:
            value = QUOTED_PAIR_RE.sub(r"\1", quoted_value) if "\\" in quoted_value else quoted_value
        else:
            value = token_value
        params.setdefault(name.lower(), value)
        i = m.end()


def parse_params(text: str, header: str | None = None) -> Params:
    """Parse ``;a=b;c;d="q v"`` (leading ``;`` required when not empty) into a dict."""
    params, end = parse_params_at(text, 0, header)
    if end != len(text):
        raise BadHeaderValue(f"unexpected {text[end:end + 10]!r}", header)
    return params


def parse_delta(text: str, header: str) -> int:
    t = text.strip(WS)
    if not DIGITS_RE.fullmatch(t):
        raise BadHeaderValue(f"{text[:40]!r} is not a number of seconds", header)
    t = t.lstrip("0") or "0"
    return MAX_DELTA_SECONDS if len(t) > 10 else min(int(t), MAX_DELTA_SECONDS)


def parse_delta_seconds(text: str, header: str = "Expires") -> int:
    """``delta-seconds`` of Expires / Min-Expires; values above 2**32-1 are clamped to it."""
    return parse_delta(text, header)
