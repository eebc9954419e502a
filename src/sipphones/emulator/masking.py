"""What the request journal never keeps: secrets, masked before an exchange is stored.

Masked, whatever the endpoint:

- the headers that carry credentials (``Authorization`` keeps its scheme: ``Bearer ****``,
  ``Basic ****``; cookies; the operator token's header);
- in JSON bodies, at any depth, the value of every member whose name is a secret's: SIP phone
  ``password``, ``client_secret``, ``access_token``, ``refresh_token``, ``id_token``,
  ``code_verifier``, ``secret``, ``token`` (names compared case-insensitively, after JSON
  decoding, so an escaped name such as ``"pass\\u0077ord"`` is masked too);
- in form bodies (the OAuth endpoints) the same fields, plus ``code`` (an authorization code;
  in JSON ``code`` is Zoom's error number and stays);
- in a body that claims to be JSON but does not parse, the same members, found by a pattern on
  the text (best effort: such a body never reached an endpoint as data).

Bodies of any other type are kept as text, as they came: the Zoom endpoints accept none.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

MASK = "****"

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
SECRET_HEADER_NAMES = frozenset(name.encode() for name in SECRET_HEADERS)
SECRET_FIELDS = frozenset({
    "password", "client_secret", "access_token", "refresh_token", "id_token", "code_verifier", "secret", "token",
})
FORM_SECRET_FIELDS = SECRET_FIELDS | {"code"}
MAX_FORM_FIELDS = 100

_SCHEMES = ("bearer", "basic", "digest")
_SCHEME_BYTES = frozenset(s.encode() for s in _SCHEMES)
_MASK_BYTES = MASK.encode()
_MASKED_VALUE = b'"' + _MASK_BYTES + b'"'
# Every secret name contains one of these (in lower case), and so does any escaped name
# (``may_hold_secrets`` spells them out, for speed; tests/emulator/test_masking.py checks the two agree).
MARKERS = (b"password", b"secret", b"token", b"code_verifier", b"\\u")
_SECRET_MEMBER = re.compile(
    r'("(?:' + "|".join(sorted(SECRET_FIELDS)) + r')"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)', re.IGNORECASE)


def mask_header(name: str, value: str) -> str:
    """``value`` as the journal keeps it (``name`` in lower case)."""
    if name not in SECRET_HEADERS:
        return value
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() in _SCHEMES:
        return f"{scheme} {MASK}"
    return MASK


def mask_header_bytes(value: bytes) -> bytes:
    """``mask_header`` on a raw value (of a header named in ``SECRET_HEADER_NAMES``)."""
    scheme, _, rest = value.partition(b" ")
    if rest and scheme.lower() in _SCHEME_BYTES:
        return scheme + b" " + _MASK_BYTES
    return _MASK_BYTES


def may_hold_secrets(raw: bytes, low: bytes | None = None) -> bool:
    """Whether a JSON text may have a secret member: a secret's name in any case, or any ``\\u``
    escape (which could spell one). False means surely none: the text needs no masking."""
    if low is None:
        low = raw.lower()
    return (b"password" in low or b"secret" in low or b"token" in low or b"code_verifier" in low
            or b"\\u" in low)


_SECRET_KEY = re.compile(b'"(?:' + b"|".join(sorted(n.encode() for n in SECRET_FIELDS)) + b')"')
_COLON = re.compile(rb"\s*:")
_SCALAR_VALUE = re.compile(rb'\s*:\s*("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null)')


def mask_json_bytes(raw: bytes, low: bytes | None = None) -> bytes | None:
    """A JSON text with every secret member's value masked, done on the bytes (no decoding), or
    None when this quick way cannot be sure - a secret's name in another case or escaped, a
    secret holding an object or an array: then decode and use ``mask_json``.

    Sound for JSON because a ``"`` inside a string is always escaped: ``"password"`` in the text
    is a whole string, and a string followed by ``:`` is a member's name. ``low``: ``raw.lower()``
    when the caller has it."""
    if low is None:
        low = raw.lower()
    if b"\\u" in low:
        return None
    for marker in MARKERS[:-1]:
        if marker in low and low.count(marker) != raw.count(marker):
            return None
    spans = []
    for key in _SECRET_KEY.finditer(raw):
        value = _SCALAR_VALUE.match(raw, key.end())
        if value is not None:
            spans.append(value.span(1))
        elif _COLON.match(raw, key.end()):
            return None              # a secret member whose value is not a scalar
    if not spans:
        return raw
    out, last = [], 0
    for start, end in spans:
        out += [raw[last:start], _MASKED_VALUE]
        last = end
    out.append(raw[last:])
    return b"".join(out)


def mask_json(document: Any) -> Any:
    """``document`` (decoded JSON, changed in place) with every secret member's value masked.
    Iterative: a deeply nested body cannot exhaust the interpreter's stack."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in SECRET_FIELDS.intersection(node):
                node[key] = MASK
            for key, value in node.items():
                if isinstance(value, (dict, list)):
                    if key.lower() in SECRET_FIELDS:
                        node[key] = MASK
                    else:
                        stack.append(value)
                elif not key.islower() and key.lower() in SECRET_FIELDS:
                    node[key] = MASK
        elif isinstance(node, list):
            stack.extend(item for item in node if isinstance(item, (dict, list)))
    return document


def mask_json_text(text: str) -> str:
    """A JSON-looking text that did not parse, with the secret members it shows masked."""
    return _SECRET_MEMBER.sub(lambda m: f'{m.group(1)}"{MASK}"', text)


def mask_form(text: str) -> dict[str, str | list[str]]:
    """An ``application/x-www-form-urlencoded`` body as a mapping (a repeated field: a list),
    secrets masked; at most ``MAX_FORM_FIELDS`` fields are read."""
    out: dict[str, str | list[str]] = {}
    for key, value in parse_qsl(text, keep_blank_values=True, max_num_fields=None)[:MAX_FORM_FIELDS]:
        if key.lower() in FORM_SECRET_FIELDS:
            value = MASK
        before = out.get(key)
        if before is None:
            out[key] = value
        elif isinstance(before, list):
            before.append(value)
        else:
            out[key] = [before, value]
    return out
