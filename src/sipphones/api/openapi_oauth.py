"""The OpenAPI description of the OAuth endpoints (``api.oauth``, ``api.oauth_user``) and of Zoom's
"Get a user" (``GET /v2/users/{userId}``, ``me`` included), merged into the served document by
``api.openapi.build_document`` (which hands in its response builders)."""

from __future__ import annotations

from typing import Callable

_TOKEN_FIELDS = {
    "grant_type": {"type": "string", "enum": ["account_credentials", "authorization_code", "refresh_token"]},
    "account_id": {"type": "string", "description": "account_credentials: the app's account."},
    "code": {"type": "string", "description": "authorization_code: the code of the redirect."},
    "redirect_uri": {"type": "string", "description": "authorization_code: the URI of the authorization."},
    "code_verifier": {"type": "string", "description": "authorization_code: the PKCE verifier (RFC 7636)."},
    "refresh_token": {"type": "string", "description": "refresh_token: the latest refresh token."},
    "client_id": {"type": "string", "description": "A public client (no Basic header): its client id."},
}
_TOKEN_ANSWER = {
    "type": "object", "required": ["access_token", "token_type", "expires_in", "scope"],
    "properties": {"access_token": {"type": "string"}, "token_type": {"type": "string"},
                   "refresh_token": {"type": "string",
                                     "description": "User-managed apps: the next refresh token (rotated)."},
                   "expires_in": {"type": "integer"},
                   "scope": {"type": "string", "description": "Space-separated scopes."},
                   "api_url": {"type": "string"}},
}
_GRANT_ERRORS = ("Missing credentials or grant type (4706), unsupported grant type or one the app's type does not "
                 "use (4705), missing or wrong account_id or parameter (4700), redirect URI mismatch (4709), an "
                 "invalid, used or foreign code or a wrong PKCE verifier (4734), an expired code (4733), an "
                 "unknown, rotated-out or expired refresh token (4711, `Invalid Token!`), a revoked grant (4741).")
_AUTHORIZE_PARAMS = [
    ("response_type", True, "Always `code`."),
    ("client_id", True, "A user-managed app's client id."),
    ("redirect_uri", True, "One of the app's redirect URIs, exactly."),
    ("state", False, "Returned with the code (at most 1024 characters)."),
    ("code_challenge", False, "PKCE (RFC 7636); required for a public client."),
    ("code_challenge_method", False, "`S256` or `plain` (the default, as Zoom)."),
    ("scope", False, "Space-separated: some of the app's scopes (default: all of them)."),
    ("login_hint", False, "sipphones: the email or id of the user of the app's account who signs in. Without it "
                          "a page lists the account's users."),
    ("consent", False, "sipphones: `deny` answers `error=access_denied`."),
]


def oauth_paths(ok: Callable[..., dict], error: Callable[..., dict], too_many: Callable[[], dict],
                unauthorized: str) -> dict:
    form = {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": _TOKEN_FIELDS}}}
    return {
        "/oauth/token": {"post": {
            "tags": ["OAuth"],
            "summary": "Get an access token (Server-to-Server or user-managed app)",
            "description": "HTTP Basic client credentials (a public client sends `client_id` instead). "
                           "`grant_type=account_credentials&account_id=...` (Server-to-Server apps); "
                           "`authorization_code` with `code`, `redirect_uri` and `code_verifier` (PKCE), or "
                           "`refresh_token` (user-managed apps: each refresh returns a new refresh token and the "
                           "old one stops working). Parameters in the form body or the query string. An access "
                           "token lives 3600 s and carries the scopes granted.",
            "operationId": "getAccessToken",
            "security": [{"basic": []}],
            "parameters": [{"name": name, "in": "query", "required": False, "schema": schema}
                           for name, schema in _TOKEN_FIELDS.items() if name in ("grant_type", "account_id")],
            "requestBody": {"required": False, "content": form},
            "responses": {
                "200": ok("A bearer token (and a refresh token for a user-managed app).", _TOKEN_ANSWER,
                          limited=False),
                "400": error(_GRANT_ERRORS, limited=False, schema="OAuthError"),
                "401": error("Invalid client credentials (4702, 4704) or disabled app (4717).",
                             limited=False, schema="OAuthError"),
            },
        }},
        "/oauth/authorize": {"get": {
            "tags": ["OAuth"],
            "summary": "Authorize a user-managed app (sign-in and consent, emulated)",
            "description": "The user named by `login_hint` signs in and consents at once: the answer redirects "
                           "to `redirect_uri` with `code` (good once, for 5 minutes) and `state`. Errors after "
                           "the client and redirect URI are known good go back the same way as `error` and "
                           "`error_description`; before, they are answered here (400).",
            "operationId": "oauthAuthorize",
            "security": [],
            "parameters": [{"name": name, "in": "query", "required": required, "description": text,
                            "schema": {"type": "string"}} for name, required, text in _AUTHORIZE_PARAMS],
            "responses": {
                "302": {"description": "Back to the app: `code` and `state`, or `error`.",
                        "headers": {"Location": {"schema": {"type": "string"}}}},
                "200": {"description": "The sign-in page (no `login_hint`): the account's users to choose from.",
                        "content": {"text/html": {"schema": {"type": "string"}}}},
                "400": error("Unknown client (4702), redirect URI not registered (4709), disabled app (4717), "
                             "no such user or a bad parameter (4700).", limited=False, schema="OAuthError"),
                "403": error("Password-less sign-in is off on this server (4700): it is on in emulator mode or "
                             "with SIPPHONES_OAUTH_EMULATED_SIGN_IN=1.", limited=False, schema="OAuthError"),
                "429": error("The app has 10,000 codes issued within the last hour (4732).", limited=False,
                             schema="OAuthError"),
            },
        }},
        "/oauth/revoke": {"post": {
            "tags": ["OAuth"],
            "summary": "Revoke a user-managed app's grant",
            "description": "`token` (form body or query): an access or refresh token of the calling app. The "
                           "user's authorization ends: every access and refresh token of it stops working. A "
                           "token the service does not know is answered as revoked (RFC 7009).",
            "operationId": "oauthRevoke",
            "security": [{"basic": []}],
            "requestBody": {"required": False, "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object", "properties": {"token": {"type": "string"}, "client_id": {"type": "string"}}}}}},
            "responses": {
                "200": ok("Revoked.", {"type": "object", "properties": {"status": {"type": "string"}}},
                          limited=False),
                "400": error("Missing credentials (4706) or token (4700), a token of another app (4702), a "
                             "Server-to-Server app (4705).", limited=False, schema="OAuthError"),
                "401": error("Invalid client credentials (4702, 4704) or disabled app (4717).",
                             limited=False, schema="OAuthError"),
            },
        }},
        "/v2/users/{userId}": {"get": {
            "tags": ["Users"], "summary": "Get a user", "operationId": "user",
            "description": "`me`: the user a user-managed app's token acts as (scope `user:read` or "
                           "`user:read:user` is enough). Another user (id or email): `user:read:admin` or "
                           "`user:read:user:admin` and the role permission User:Read. Rate-limit label: Light.",
            "security": [{"bearer": []}],
            "parameters": [{"name": "userId", "in": "path", "required": True,
                            "description": "`me`, or the user's id or email address.", "schema": {"type": "string"}}],
            "responses": {
                "200": ok("The user.", {"$ref": "#/components/schemas/User"}),
                "400": error("Bad Request: the token has none of the operation's scopes (code 4711)."),
                "401": error(unauthorized, limited=False),
                "403": error("Forbidden: the app's role lacks User:Read (code 3306)."),
                "404": error("Not Found: no such user on the account, or `me` with an account-level token "
                             "(code 1001)."),
                "429": too_many(),
            },
        }},
    }
