"""Zoom's error contract, in one place.

Every failure the service reports to an API client is one of these typed exceptions. The HTTP
layer turns them into Zoom's body ``{"code": int, "message": str[, "errors": [...]]}`` with the
HTTP status carried here; nothing else in the code base invents error codes or texts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ZoomError(Exception):
    """Base of every error that is answered in Zoom's shape."""

    status: int = 400
    code: int = 300
    message: str = "Bad Request"

    def __init__(self, message: str | None = None, *, status: int | None = None, code: int | None = None):
        if message is not None:
            self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        super().__init__(self.message)

    def body(self) -> dict:
        return {"code": self.code, "message": self.message}

    def headers(self) -> dict[str, str]:
        return {}


class ValidationFailed(ZoomError):
    """HTTP 400, code 300, with one entry per offending field."""

    status = 400
    code = 300
    message = "Validation Failed."

    def __init__(self, errors: list[FieldError]):
        super().__init__()
        self.errors = list(errors)

    def body(self) -> dict:
        return {"code": self.code, "message": self.message, "errors": [e.as_dict() for e in self.errors]}


class BadRequest(ZoomError):
    """A request that is malformed as a whole (not one field): HTTP 400, code 300."""

    status = 400
    code = 300


# --- authentication / authorisation -----------------------------------------------------------

class InvalidAccessToken(ZoomError):
    status = 401
    code = 124
    message = "Invalid access token."


class AccessTokenExpired(InvalidAccessToken):
    message = "Access token is expired."


class MissingScopes(ZoomError):
    """The token is valid but carries none of the scopes the operation accepts (Zoom code 4711)."""

    status = 400
    code = 4711

    def __init__(self, scopes: list[str]):
        super().__init__(f"Invalid access token, does not contain scopes:[{', '.join(scopes)}].")
        self.scopes = scopes


class NoPermission(ZoomError):
    """HTTP 403: the app's role lacks the operation's permission (3306 list/create and the users
    endpoints, 3336 update/delete/check)."""

    status = 403
    message = "No permission."

    def __init__(self, code: int):
        super().__init__(code=code)


# --- account / resource state -----------------------------------------------------------------

class SipIntegrationDisabled(ZoomError):
    status = 400
    code = 200

    LEGACY = "Permission missing: Enable SIP Phone Integration by contacting a Zoom Admin first."
    CURRENT = "Permission missing. Enable SIP phone integration by contacting a Zoom admin first."

    def __init__(self, legacy: bool):
        super().__init__(self.LEGACY if legacy else self.CURRENT)


class DuplicatePhoneEmail(ZoomError):
    status = 400
    code = 300

    def __init__(self, legacy: bool):
        super().__init__(
            "SIP Phone with the same email already exists." if legacy
            else "SIP phone with the same email already exists."
        )


class UserNotFound(ZoomError):
    status = 404
    code = 1001

    def __init__(self, user: str):
        super().__init__(f"User {user} not exist or not belong to this account.")


class AccountNotFound(ZoomError):
    """The caller's account is gone (deleted while its request ran): Zoom's answer for an
    account that does not exist."""

    status = 404
    code = 2001

    def __init__(self, account_id: str):
        super().__init__(f"Account does not exist: {account_id}.")


class UserAlreadyExists(ZoomError):
    status = 409
    code = 1005

    def __init__(self, email: str):
        super().__init__(f"User already in the account: {email}")


class PhoneNotFound(ZoomError):
    """Current set: HTTP 404, code 2305."""

    status = 404
    code = 2305

    def __init__(self, phone_id: str):
        super().__init__(f"SIP phone does not exist: {phone_id}.")


class LegacyPhoneNotFound(ZoomError):
    """Legacy set: HTTP 400, code 300 (Zoom's older documents model it this way)."""

    status = 400
    code = 300

    def __init__(self, phone_id: str):
        super().__init__(f"SIP phone not found: {phone_id}.")


class InvalidPageToken(ZoomError):
    status = 400
    code = 300

    def __init__(self, reason: str = "The next page token is invalid or expired."):
        super().__init__(reason)


class NotFound(ZoomError):
    """An unknown route: Zoom answers 404 with its own shape."""

    status = 404
    code = 404
    message = "Not Found."


class MethodNotAllowed(ZoomError):
    status = 405
    code = 405
    message = "Method not allowed."


class RateLimited(ZoomError):
    status = 429
    code = 429

    PER_SECOND = "You have reached the maximum per-second rate limit for this API. Try again later."
    DAILY = (
        "You have reached the maximum daily rate limit for this API. "
        "Refer to the response header for details on when you can make another request."
    )

    def __init__(self, daily: bool, headers: dict[str, str]):
        super().__init__(self.DAILY if daily else self.PER_SECOND)
        self._headers = headers

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


# --- the HTTP surface: what the server refuses before a request reaches an endpoint ------------

class PayloadTooLarge(ZoomError):
    """A request body over its limit (Zoom documents no answer for it: 413 in its shape). The
    connection is closed after the answer: the rest of the body is never read."""

    status = 413
    code = 413

    def __init__(self, limit: int):
        super().__init__(f"Request Entity Too Large: the body may have at most {limit} bytes.")

    def headers(self) -> dict[str, str]:
        return {"connection": "close"}


class HeadTooLarge(ZoomError):
    status = 431
    code = 431

    def __init__(self, limit: int):
        super().__init__(f"Request Header Fields Too Large: the request line and headers may have at most "
                         f"{limit} bytes.")


class InvalidHttpRequest(ZoomError):
    status = 400
    code = 400
    message = "Invalid HTTP request."


class RequestTimeout(ZoomError):
    status = 408
    code = 408
    message = "Request Timeout: the request head was not received in time."


class ClientGone(ZoomError):
    """The client closed its connection before its request was read: the answer goes nowhere."""

    status = 400
    code = 400
    message = "The client closed the connection before the request was complete."


class TooManyConnections(ZoomError):
    status = 503
    code = 503
    message = "Service Unavailable: too many open connections. Try again later."


class InternalError(ZoomError):
    status = 500
    code = 500
    message = "Internal server error."


# --- OAuth token endpoint (codes 4700-4717) ---------------------------------------------------

class OAuthError(ZoomError):
    """Errors of the OAuth endpoints (``/oauth/token``, ``/oauth/authorize``, ``/oauth/revoke``).
    Zoom answers them with ``reason`` and an RFC 6749 ``error`` (``invalid_client`` for client
    credentials, ``invalid_grant`` for a bad code or refresh token, else ``invalid_request``);
    this service adds Zoom's error code from its OAuth table and the message again."""

    status = 400

    def __init__(self, code: int, message: str, status: int = 400, error: str | None = None):
        super().__init__(message, status=status, code=code)
        self.error = error or ("invalid_client" if code in (4702, 4704) else "invalid_request")

    def body(self) -> dict:
        return {"reason": self.message, "error": self.error, "code": self.code, "message": self.message}


class InvalidGrant(OAuthError):
    """A code or refresh token that cannot be used (RFC 6749 ``invalid_grant``), HTTP 400."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message, error="invalid_grant")
