"""``next_page_token``: an opaque, signed, expiring keyset cursor.

The token carries the account, the query it belongs to (search key), the id of the last phone
served and an expiry (Zoom: 15 minutes). A token that was altered, belongs to another account or
query, or has expired is rejected as a whole (HTTP 400), never silently restarted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Callable
from json.encoder import encode_basestring_ascii as _json_str  # what json.dumps uses for str

from sipphones.errors import InvalidPageToken


@dataclass(frozen=True)
class Cursor:
    after_id: str
    page_number: int  # the page number this token leads to (legacy responses echo it)


_FINGERPRINTS_MAX = 4096


class PageTokens:
    def __init__(self, key: bytes, ttl: int = 900, clock: Callable[[], float] = time.time):
        """``clock``: the service's clock (``time.time``, or the emulator's ``Clock.now``): callers
        read ``now`` from it for ``issue`` and ``read``."""
        self._key = key
        self.clock = clock
        self._mac = hmac.new(key, digestmod=hashlib.sha256)  # keyed once; copied for each token
        self.ttl = ttl
        self._fingerprints: dict[tuple[str, str | None], str] = {}

    def _sig(self, payload: bytes) -> str:
        mac = self._mac.copy()
        mac.update(payload)
        return base64.urlsafe_b64encode(mac.digest()[:18]).decode()

    def _query_fp(self, account_id: str, search: str | None) -> str:
        key = (account_id, search)
        fp = self._fingerprints.get(key)
        if fp is None:  # a pure function of its arguments: remembered (bounded)
            fp = hashlib.sha256(f"{account_id}\x00{(search or '').strip().lower()}".encode()).hexdigest()[:16]
            if len(self._fingerprints) >= _FINGERPRINTS_MAX:
                self._fingerprints.clear()
            self._fingerprints[key] = fp
        return fp

    def issue(self, *, account_id: str, search: str | None, after_id: str, page_number: int, now: float) -> str:
        fp = self._query_fp(account_id, search)
        expires = round(now + self.ttl, 3)
        if type(after_id) is str and type(page_number) is int and type(expires) is float and expires - expires == 0:
            # Exactly what json.dumps writes for this dict (its own string encoder, int and float
            # reprs), without the general encoder's per-call set-up; a list page issues one per call.
            payload = f'{{"a":{_json_str(after_id)},"n":{page_number},"q":"{fp}","e":{expires!r}}}'.encode()
        else:
            payload = json.dumps({"a": after_id, "n": page_number, "q": fp, "e": expires}, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._sig(payload)}"

    def read(self, token: str, *, account_id: str, search: str | None, now: float) -> Cursor:
        # Anything a client can type must end in InvalidPageToken (HTTP 400), never in a crash:
        # non-ASCII text, bad base64, or a well-signed payload of an unexpected shape.
        try:
            body, sig = token.split(".", 1)
            payload = base64.urlsafe_b64decode(body.encode("ascii") + b"=" * (-len(body) % 4))
            canonical = base64.urlsafe_b64encode(payload).decode().rstrip("=") == body  # one spelling per token
            signed = canonical and hmac.compare_digest(sig.encode("ascii"), self._sig(payload).encode("ascii"))
        except (ValueError, TypeError):  # UnicodeEncodeError and binascii.Error are ValueErrors
            raise InvalidPageToken() from None
        if not signed:
            raise InvalidPageToken()
        try:
            data = json.loads(payload)
            fingerprint, expires = data["q"], float(data["e"])
            cursor = Cursor(after_id=str(data["a"]), page_number=int(data["n"]))
        except (ValueError, TypeError, KeyError):
            raise InvalidPageToken() from None
        if fingerprint != self._query_fp(account_id, search):
            raise InvalidPageToken("The next page token does not belong to this query: repeat the same query parameters.")
        if now > expires:
            raise InvalidPageToken(f"The next page token has expired (tokens live {_duration(self.ttl)}).")
        return cursor


def _duration(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
