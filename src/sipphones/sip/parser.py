"""SIP message parser: one datagram (``parse_message``) or a byte stream (``StreamParser``).

RFC 3261 §7 (message format), §7.3.1 (folding, repeated headers), §7.5 (leading CRLFs),
§18.3 (framing), §20/§25 (grammar), RFC 5626 §4.4.1 (CRLF keep-alives).

Decisions worth knowing:

* **Line endings.** CRLF is the standard; a bare LF is also accepted as a line end (many test
  tools and some devices send it, and accepting it cannot change how a CRLF message frames).
  A bare CR inside the header section is rejected: it is a classic header-smuggling vector.
  Output (``to_bytes``) always uses CRLF.
* **Folding.** A line starting with SP/HTAB continues the previous header; the line break and the
  whitespace around it become one SP (§7.3.1).
* **Text.** Start line and headers must be UTF-8 (``BadEncoding`` otherwise); the body stays bytes.
* **Validation** (``validate=True``, the default): the headers every transaction needs are
  present and well formed: at least one Via (all Via values parse), exactly one From, To,
  Call-ID and CSeq (which parse), the CSeq method equals the request method, a sip/sips
  Request-URI parses and has no header part, Max-Forwards (if any) is 0-255. With this, the
  transaction and registration layers can read those headers without their own error handling.
* **Errors.** Every malformed input raises a ``ParseError`` subclass; nothing else escapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import (
    BadContentLength, BadEncoding, BadHeader, BadHeaderValue, BadStartLine, BodyTooLarge,
    EmptyMessage, HeaderTooLong, IncompleteMessage, MessageTooLarge, MethodMismatch,
    MissingContentLength, MissingHeader, ParseError, TooManyHeaders, UnsupportedVersion,
)
from .headers import check_via, cseq_parts
from .uri import NameAddr, SipUri, simple_name_addr, parse_uri
from .message import Headers, Request, Response, canonical_name, split_list


@dataclass(frozen=True)
class Limits:
    """Hard bounds so a hostile peer cannot make us buffer or parse without end."""

    max_message_bytes: int = 65536   # whole message: start line, headers, body
    max_headers: int = 128           # header fields (after unfolding)
    max_line_bytes: int = 8192       # start line, or one header field after unfolding
    max_body_bytes: int = 65536      # Content-Length / body size


DEFAULT_LIMITS = Limits()

_HEAD_END = re.compile(rb"\r?\n\r?\n")   # the blank line; _head_end finds it faster


def _head_end(data: bytes | bytearray, start: int) -> tuple[int, int] | None:
    """(start, end) of the first match of ``_HEAD_END`` at or after ``start``, or None.

    Every match holds ``\n\n`` or ``\n\r\n``; the first such newline is found with two plain
    byte searches (a regex search stops at every CR and LF of the headers), and the match
    starts one byte earlier when a CR precedes it.
    """
    a = data.find(b"\n\r\n", start)
    b = data.find(b"\n\n", start)
    if a < 0 and b < 0:
        return None
    if b < 0 or 0 <= a < b:
        q, end = a, a + 3
    else:
        q, end = b, b + 2
    if q > start and data[q - 1] == 13:
        q -= 1
    return q, end
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_NAME_RE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:")
_VERSION_RE = re.compile(r"SIP/([0-9]+)\.([0-9]+)", re.IGNORECASE)
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[^\s<>\"]+")
_STATUS_RE = re.compile(r"[0-9]{3}")
_DIGITS_RE = re.compile(r"[0-9]+")
_SPACE_RE = re.compile(r"\s")


def is_keepalive(data: bytes) -> bool:
    """True for a datagram made only of CR/LF (a UDP keep-alive some phones send)."""
    return bool(data) and not data.strip(b"\r\n")


def _skip_leading_crlf(data: bytes) -> int:
    i, n = 0, len(data)
    while i < n and data[i] in (13, 10):
        if data[i] == 13 and (i + 1 >= n or data[i + 1] != 10):
            break
        i += 1
    return i


def _parse_version(text: str, where: str) -> str:
    if text == "SIP/2.0":
        return text
    m = _VERSION_RE.fullmatch(text)
    if not m:
        raise BadStartLine(f"bad SIP version in {where}")
    if (int(m.group(1)[:4]), int(m.group(2)[:4])) != (2, 0):
        raise UnsupportedVersion(f"unsupported version {text[:20]!r}")
    return "SIP/2.0"


# Raw header name (the text before the first ':', trailing blanks included) -> (name as written,
# canonical name), for names already checked with _NAME_RE. Bounded: a peer inventing names
# only stops the cache from growing, not the parser from working.
_NAME_CACHE: dict[str, tuple[str, str]] = {}
_NAME_CACHE_MAX = 1024


def _parse_head(head: bytes, limits: Limits) -> tuple[Request | Response, int | None]:
    """Parse start line and headers (no trailing blank line). Returns (message, Content-Length)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadEncoding(f"start line/headers are not UTF-8 (byte {e.start})") from None
    if "\r" in text:
        # Every line loses one trailing CR (CRLF endings); any other CR is a bare CR. The usual
        # message, every CR and LF in a CRLF pair, is split at its pairs at once (the same lines).
        lines = text.split("\r\n")
        bare = False
        for line in lines:
            if "\r" in line or "\n" in line:
                bare = True
                break
        if bare:
            if text.endswith("\r"):
                text = text[:-1]
            text = text.replace("\r\n", "\n")
            if "\r" in text:
                raise BadHeader("bare CR inside the header section")
            lines = text.split("\n")
    else:
        lines = text.split("\n")
    start = lines[0]
    if len(start) > limits.max_line_bytes:
        raise HeaderTooLong("start line too long")
    message = _parse_start_line(start)

    # One pass over the lines. A field is checked (length, Content-Length) once the next line
    # shows it is complete (not continued); an error found that way is kept and raised after
    # the loop, so a malformed line further down (the syntax of the lines: folding, names, the
    # number of fields) is reported first, as when the lines were checked before the fields.
    items = message.headers._items   # names below are canonical_name() output
    max_headers = limits.max_headers
    max_line = limits.max_line_bytes
    cache = _NAME_CACHE
    content_length: int | None = None
    field_error: ParseError | None = None
    count = 0
    name = canonical = value = ""
    more: list[str] | None = None   # continuation parts of the current field
    for k in range(1, len(lines)):
        line = lines[k]
        first = line[:1]
        if first == " " or first == "\t":
            if not count:
                raise BadHeader("continuation line before any header")
            if more is None:
                more = [value]
            more.append(line.strip(" \t"))
            continue
        raw, sep, rest = line.partition(":")
        names = cache.get(raw) if sep else None
        if names is None:
            m = _NAME_RE.match(line)
            if not m:
                raise BadHeader(f"malformed header line {line[:40]!r}")
            names = (m.group(1), canonical_name(m.group(1)))
            if len(cache) < _NAME_CACHE_MAX:
                cache[raw] = names
        if count >= max_headers:
            raise TooManyHeaders(f"more than {max_headers} header fields")
        if count and field_error is None:
            if more is None and canonical != "Content-Length" and len(name) + len(value) + 2 <= max_line:
                items.append((canonical, value))   # what _add_field does with such a field
            else:
                field_error, content_length = _add_field(items, name, canonical, value, more, max_line,
                                                         content_length)
        count += 1
        name, canonical, value, more = names[0], names[1], rest.strip(" \t"), None
    if count and field_error is None:
        field_error, content_length = _add_field(items, name, canonical, value, more, max_line, content_length)
    if field_error is not None:
        raise field_error
    return message, content_length


def _add_field(items: list[tuple[str, str]], name: str, canonical: str, value: str, more: list[str] | None,
               max_line: int, content_length: int | None) -> tuple[ParseError | None, int | None]:
    """Check one complete header field and append it to ``items``. Returns (the error found,
    or None; the Content-Length seen so far)."""
    if more is not None:
        value = " ".join(p for p in more if p)
    if len(name) + len(value) + 2 > max_line:
        return HeaderTooLong(f"header {name[:40]!r} too long"), content_length
    if canonical == "Content-Length":
        if not _DIGITS_RE.fullmatch(value):
            return BadContentLength(f"Content-Length {value[:20]!r} is not a non-negative integer"), content_length
        digits = value.lstrip("0") or "0"
        length = int(digits) if len(digits) <= 12 else 10**12
        if content_length is not None and content_length != length:
            return BadContentLength("conflicting Content-Length headers"), content_length
        content_length = length
    items.append((canonical, value))
    return None, content_length


def _parse_start_line(line: str) -> Request | Response:
    if not line:
        raise BadStartLine("empty start line")
    if line[:4].upper() == "SIP/":
        parts = line.split(" ", 2)
        if len(parts) < 2:
            raise BadStartLine("status line needs a version and a status code")
        version = _parse_version(parts[0], "status line")
        code = parts[1]
        if not (len(code) == 3 and code.isascii() and code.isdigit()):   # _STATUS_RE.fullmatch(code)
            raise BadStartLine(f"status code {parts[1][:12]!r} is not 3 digits")
        status = int(parts[1])
        if not 100 <= status <= 699:
            raise BadStartLine(f"status code {status} is not 100-699")
        reason = parts[2] if len(parts) == 3 else ""
        return Response(status=status, reason=reason, headers=Headers(), version=version)
    parts = line.split(" ")
    if len(parts) != 3:
        raise BadStartLine("request line must be 'METHOD URI SIP/2.0' with single spaces")
    method, uri, version_text = parts
    if not _TOKEN_RE.fullmatch(method):
        raise BadStartLine(f"invalid method {method[:20]!r}")
    if not _URI_RE.fullmatch(uri):
        raise BadStartLine(f"invalid Request-URI {uri[:60]!r}")
    version = _parse_version(version_text, "request line")
    return Request(method=method, uri=uri, headers=Headers(), version=version)


def _single(values: list[str], name: str) -> str:
    if len(values) != 1:
        raise MissingHeader(f"{name}: expected exactly one, found {len(values)}")
    return values[0]


def validate(message: Request | Response) -> None:
    """Check what every SIP message needs (see the module docstring); raise ``ParseError``."""
    # One pass over the lines, remembering what the checks below need; the checks then run in
    # a fixed order (Via, From, To, Call-ID, CSeq, Max-Forwards), whatever the header order.
    via_lines: list[str] = []
    from_values: list[str] = []
    to_values: list[str] = []
    call_ids: list[str] = []
    cseqs: list[str] = []
    max_forwards: list[str] = []
    for name, value in message.headers._items:   # names are canonical_name() output
        if name == "Via":
            via_lines.append(value)
        elif name == "From":
            from_values.append(value)
        elif name == "To":
            to_values.append(value)
        elif name == "Call-ID":
            call_ids.append(value)
        elif name == "CSeq":
            cseqs.append(value)
        elif name == "Max-Forwards":
            max_forwards.append(value)
    vias: list[str] = []
    for line in via_lines:
        vias.extend(split_list(line))
    if not vias:
        raise MissingHeader("Via: missing")
    for via in vias:
        check_via(via)
    for name, values in (("From", from_values), ("To", to_values)):
        value = _single(values, name)
        if not simple_name_addr(value):   # the common form is checked by one regex
            NameAddr.parse(value, name)
    call_id = _single(call_ids, "Call-ID")
    if not call_id or call_id.split() != [call_id]:   # _SPACE_RE.search: split() cuts at the same characters
        raise BadHeaderValue("Call-ID must be one word", "Call-ID")
    _, cseq_method = cseq_parts(_single(cseqs, "CSeq"))
    if max_forwards:
        if len(max_forwards) > 1:
            raise BadHeaderValue("repeated", "Max-Forwards")
        value = max_forwards[0]
        if not _DIGITS_RE.fullmatch(value) or len(value) > 8 or int(value) > 255:
            raise BadHeaderValue(f"{value[:12]!r} is not 0-255", "Max-Forwards")
    if isinstance(message, Request):
        if cseq_method != message.method:
            raise MethodMismatch(f"CSeq method {cseq_method!r} differs from {message.method!r}")
        uri = parse_uri(message.uri)
        if isinstance(uri, SipUri) and uri.headers:
            raise BadStartLine("a Request-URI must not carry URI headers (RFC 3261 §19.1.5)")


def _finish(message: Request | Response, body: bytes, validate_message: bool) -> Request | Response:
    message.body = body
    if validate_message:
        validate(message)
    return message


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS, *, validate: bool = True) -> Request | Response:
    """Parse one complete message from a datagram (UDP).

    Leading CRLFs are skipped. Without Content-Length the body is the rest of the datagram;
    with it, bytes beyond the body are discarded and a shorter datagram is an
    ``IncompleteMessage`` (RFC 3261 §18.3). A datagram of only CR/LF raises ``EmptyMessage``
    (see ``is_keepalive`` to drop those before parsing).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("parse_message needs bytes")
    data = bytes(data)
    if len(data) > limits.max_message_bytes:
        raise MessageTooLarge(f"message of {len(data)} bytes exceeds {limits.max_message_bytes}")
    start = _skip_leading_crlf(data)
    if start == len(data):
        raise EmptyMessage("no message in the datagram")
    found = _head_end(data, start)
    if found is None:
        raise IncompleteMessage("no blank line after the headers")
    message, content_length = _parse_head(data[start:found[0]], limits)
    rest = data[found[1]:]
    if content_length is None:
        body = rest
    else:
        if content_length > limits.max_body_bytes:
            raise BodyTooLarge(f"Content-Length {content_length} exceeds {limits.max_body_bytes}")
        if content_length > len(rest):
            raise IncompleteMessage(f"Content-Length {content_length} but only {len(rest)} body bytes")
        body = rest[:content_length]
    if len(body) > limits.max_body_bytes:
        raise BodyTooLarge(f"body of {len(body)} bytes exceeds {limits.max_body_bytes}")
    return _finish(message, body, validate)


class StreamParser:
    """Incremental parser for TCP/TLS: ``feed`` bytes as they arrive, get complete messages.

    Framing is by Content-Length, which is therefore mandatory (``MissingContentLength``,
    RFC 3261 §18.3). Between messages, RFC 5626 §4.4.1 keep-alives are consumed and counted:
    a double CRLF is a *ping* (the transport must answer with one CRLF: see ``take_pings``),
    a single CRLF is a *pong*. A lone CRLF at the end of the data is counted as a pong at once
    (so a client waiting for its pong is not delayed); if a second CRLF follows in the next
    chunk, a ping is counted too.

    Any error breaks the stream (its framing can no longer be trusted): ``feed`` raises the
    ``ParseError``, the exception's ``messages`` attribute holds the messages completed earlier
    in the same call, and every later ``feed`` raises the same error again. Close the connection.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *, validate: bool = True):
        self.limits = limits
        self.validate = validate
        self.pings = 0            # double-CRLF pings seen (cumulative)
        self.pongs = 0            # single-CRLF pongs seen (cumulative)
        self._untaken_pings = 0
        self._buf = bytearray()
        self._scan_from = 0       # where to resume looking for the end of the headers
        self._pending: tuple[Request | Response, int, int] | None = None  # message, body start, length
        self._half_ping = False   # the last thing consumed was a lone CRLF at the end of the data
        self._error: ParseError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buf)

    def take_pings(self) -> int:
        """Pings received since the last call: answer each with a single CRLF."""
        n, self._untaken_pings = self._untaken_pings, 0
        return n

    def feed(self, data: bytes) -> list[Request | Response]:
        if self._error is not None:
            self._error.messages = []  # type: ignore[attr-defined]
            raise self._error
        self._buf += data
        out: list[Request | Response] = []
        try:
            while True:
                message = self._next()
                if message is None:
                    return out
                out.append(message)
        except ParseError as e:
            e.messages = out  # type: ignore[attr-defined]
            self._error = e
            self._buf.clear()
            raise

    def _consume_keepalives(self) -> None:
        """Drop CRLF keep-alives from the front of the buffer, counting pings and pongs."""
        buf = self._buf
        i, n = 0, len(buf)
        while i < n:
            if buf[i] == 10:                            # bare LF between messages: tolerated
                i += 1
                self._half_ping = False
                continue
            if buf[i] != 13 or i + 1 >= n or buf[i + 1] != 10:
                break                                   # message bytes, or "\r" awaiting its LF
            rest = n - i
            if self._half_ping and i == 0:              # 2nd CRLF of a ping split over chunks
                self._count_ping()
                i += 2
            elif rest >= 4 and buf[i + 2] == 13 and buf[i + 3] == 10:
                self._count_ping()
                i += 4
            elif rest == 2:                             # lone CRLF at the end: a pong, now
                self.pongs += 1
                i += 2
                del buf[:i]
                self._half_ping = True
                return
            elif rest == 3 and buf[i + 2] == 13:
                break                                   # "\r\n\r": a ping or a pong? wait
            else:
                self.pongs += 1                         # CRLF followed by other data
                i += 2
        if i:
            del buf[:i]
            self._half_ping = False
        elif buf and buf[0] != 13:
            self._half_ping = False

    def _count_ping(self) -> None:
        self.pings += 1
        self._untaken_pings += 1
        self._half_ping = False

    def _next(self) -> Request | Response | None:
        limits = self.limits
        if self._pending is None:
            self._consume_keepalives()
            if not self._buf or self._buf in (b"\r", b"\r\n\r"):
                return None
            found = _head_end(self._buf, max(0, self._scan_from - 3))
            if found is None:
                self._scan_from = len(self._buf)
                if len(self._buf) > limits.max_message_bytes:
                    raise MessageTooLarge(f"no end of headers within {limits.max_message_bytes} bytes")
                return None
            self._scan_from = 0
            head_start, head_end = found
            if head_end > limits.max_message_bytes:
                raise MessageTooLarge(f"headers exceed {limits.max_message_bytes} bytes")
            message, content_length = _parse_head(bytes(self._buf[:head_start]), limits)
            if content_length is None:
                raise MissingContentLength("Content-Length is required on stream transports")
            if content_length > limits.max_body_bytes:
                raise BodyTooLarge(f"Content-Length {content_length} exceeds {limits.max_body_bytes}")
            if head_end + content_length > limits.max_message_bytes:
                raise MessageTooLarge(f"message exceeds {limits.max_message_bytes} bytes")
            self._pending = (message, head_end, content_length)
        message, body_start, length = self._pending
        if len(self._buf) < body_start + length:
            return None
        body = bytes(self._buf[body_start:body_start + length])
        del self._buf[:body_start + length]
        self._pending = None
        return _finish(message, body, self.validate)


__all__ = [
    "Limits", "DEFAULT_LIMITS", "parse_message", "StreamParser", "validate", "is_keepalive",
    "split_list",
]
