"""Typed errors of the sans-IO SIP core.

Every malformed input that reaches the parser or a structured-header parser ends as a
``ParseError`` subclass and never as any other exception type (``IndexError``,
``UnicodeDecodeError``...). Callers can therefore write ``except ParseError`` at a transport
boundary and know that nothing else escapes from bad bytes off the wire. ``ParseError`` is also a
``ValueError`` so generic code that validates input keeps working.

``DigestError`` is separate on purpose: a challenge we cannot answer (unknown algorithm, no usable
``qop``) is not a syntax problem, and the registration machine reports it differently ("cannot
authenticate" rather than "garbage from the server").
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every error raised by ``sipphones.sip``."""


# --- parsing ---------------------------------------------------------------------------------


class ParseError(SipError, ValueError):
    """Malformed SIP input. The message says what is wrong, never echoes secrets."""


class EmptyMessage(ParseError):
    """Only whitespace / CRLFs (e.g. a UDP keep-alive datagram): nothing to parse."""


class IncompleteMessage(ParseError):
    """The data ends before the message does (no blank line after the headers, or a body
    shorter than its Content-Length)."""


class MessageTooLarge(ParseError):
    """The message (or one of its parts) is larger than ``Limits`` allows."""


class BodyTooLarge(MessageTooLarge):
    """The body (by Content-Length) is larger than ``Limits.max_body_bytes``."""


class HeaderTooLong(MessageTooLarge):
    """The start line or one (unfolded) header field is longer than ``Limits.max_line_bytes``."""


class TooManyHeaders(ParseError):
    """More header fields than ``Limits.max_headers``."""


class BadEncoding(ParseError):
    """The start line or headers are not valid UTF-8 (RFC 3261 §7: SIP text is UTF-8)."""


class BadStartLine(ParseError):
    """The Request-Line or Status-Line is malformed (RFC 3261 §7.1, §7.2)."""


class UnsupportedVersion(BadStartLine):
    """A SIP version other than SIP/2.0."""


class BadHeader(ParseError):
    """A header line is malformed: no colon, an invalid name, a stray CR, a continuation line
    with no header before it."""


class BadHeaderValue(ParseError):
    """A structured header value (URI, Via, CSeq, challenge...) does not parse."""

    def __init__(self, message: str, header: str | None = None):
        self.header = header
        super().__init__(f"{header}: {message}" if header else message)


class BadUri(BadHeaderValue):
    """A SIP or absolute URI does not parse (RFC 3261 §19.1, §25)."""


class MissingHeader(ParseError):
    """A header every SIP message needs (Via, From, To, Call-ID, CSeq) is absent or repeated."""


class MethodMismatch(ParseError):
    """The CSeq method of a request differs from its Request-Line method (RFC 3261 §8.1.1.5)."""


class BadContentLength(ParseError):
    """Content-Length is not a non-negative integer, or several disagree."""


class MissingContentLength(BadContentLength):
    """A message on a stream transport without Content-Length (RFC 3261 §18.3)."""


# --- building --------------------------------------------------------------------------------


class SerializeError(SipError, ValueError):
    """A value cannot be written into a SIP message (e.g. CR/LF inside a header value, which
    would let it inject headers)."""


# --- digest ----------------------------------------------------------------------------------


class DigestError(SipError):
    """A challenge we cannot answer: no Digest challenge, an unsupported algorithm or qop,
    a challenge without realm or nonce."""
