"""The client's exceptions: one small hierarchy, as httpx has.

``SipPhonesError`` is the base of everything the client raises on purpose:

- ``ConfigurationError``: a missing credential or an unusable option (nothing was sent);
- ``TransportError``: the service could not be reached or did not answer in time (after the
  retries that were safe to make); ``__cause__`` is httpx's exception;
- ``ZoomAPIError``: the service answered with an error in Zoom's shape
  ``{"code": ..., "message": ..., "errors": [{"field", "message"}]}``:
  - ``AuthenticationError``: the token endpoint refused the credentials, or a fresh token was
    rejected too (HTTP 401, code 124);
  - ``RateLimitError``: HTTP 429 once the retries are used up (or when ``Retry-After`` asks for
    a longer wait than the client is allowed to make); ``retry_after`` says how long, in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuthenticationError", "ConfigurationError", "FieldError", "RateLimitError", "SipPhonesError", "TransportError",
    "ZoomAPIError",
]


class SipPhonesError(Exception):
    """Base of every error of ``sipphones.client``."""


class ConfigurationError(SipPhonesError, ValueError):
    """A credential or an option is missing or unusable; no request was made."""


class TransportError(SipPhonesError):
    """No usable answer from the service (connection refused, timeout, broken connection, an
    oversized answer). ``maybe_delivered``: False when the request certainly never reached the
    service (it could not connect), True when it may have been carried out."""

    def __init__(self, message: str, *, maybe_delivered: bool):
        self.maybe_delivered = maybe_delivered
        super().__init__(message)


@dataclass(frozen=True)
class FieldError:
    """One failing field of a validation error (HTTP 400, code 300)."""

    field: str
    message: str


class ZoomAPIError(SipPhonesError):
    """The service answered with an error: HTTP ``status_code``, Zoom's ``code`` and ``message``
    (``code`` is None when the body was not Zoom's JSON), the field errors, and Zoom's
    ``x-zm-trackingid`` (quote it to Zoom's support). ``retry_after``: the seconds the answer's
    ``Retry-After`` asked to wait (429, 503), else None."""

    def __init__(self, status_code: int, code: int | None, message: str, errors: tuple[FieldError, ...] = (),
                 tracking_id: str | None = None, retry_after: float | None = None):
        self.retry_after = retry_after
        self.status_code = status_code
        self.code = code
        self.message = message
        self.errors = tuple(errors)
        self.tracking_id = tracking_id
        super().__init__(self.describe())

    def describe(self) -> str:
        """One sentence: status, code, message and every field error."""
        head = f"HTTP {self.status_code}" + (f", code {self.code}" if self.code is not None else "")
        text = f"{head}: {self.message}"
        if self.errors:
            text += " " + "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        return text


class AuthenticationError(ZoomAPIError):
    """The credentials were refused by the token endpoint, or the service rejected a fresh token."""


class RateLimitError(ZoomAPIError):
    """HTTP 429 after the retries; ``retry_after``: seconds the service asked to wait (None if it
    did not say)."""
