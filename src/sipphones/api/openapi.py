"""The service's own OpenAPI document: Zoom's published extract, adjusted to what we serve.

Starting from Zoom's document keeps every field name, example and description Zoom's own. The
changes are the documented decisions of this service:

- paths under ``/v2`` (Zoom's ``servers`` entry ends in ``/v2``; ours is the service root);
- ``voice_mail`` required on the legacy create (the seed document wins); ``display_number`` on the
  current set (added by Zoom on 2025-04-24); request bodies marked required (a missing body is a
  400); ``page_size`` larger than 300 is clamped, not refused;
- every status each operation really answers, each error with Zoom's body schema (``ZoomError``)
  and a description of the Zoom codes behind it — including 401/403 on the legacy operations,
  which Zoom's extract omits although Zoom answers them (code 124 is documented for all APIs);
- the ``X-RateLimit-*`` headers, ``Retry-After`` on 429 and Zoom's ``x-zm-trackingid``;
- OpenAPI links from each create to the update and delete of the created phone, so generated
  stateful tests (schemathesis) reach real phones;
- the service's own endpoints: OAuth token, a Zoom-shaped subset of users, health.

``build_document()`` is pure and cached; ``document_bytes()`` is what ``GET /openapi.json`` sends.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import orjson

from sipphones.api.openapi_oauth import oauth_paths
from sipphones.phones import fields

EXTRACT = Path(__file__).with_name("zoom_openapi_extract.json")
MAX_QUERY_INT = 2**31 - 1  # the largest integer query value the endpoints accept (endpoint.int_param)

ERROR_SCHEMA = {
    "type": "object",
    "description": "Zoom's error body. Validation failures (code 300) add one entry per offending field.",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer", "description": "Zoom's error code (124, 200, 300, 1001, 2305, 3306, ...).",
                 "example": 300},
        "message": {"type": "string", "example": "Validation Failed."},
        "errors": {
            "type": "array",
            "items": {"type": "object", "required": ["field", "message"],
                      "properties": {"field": {"type": "string", "example": "user_email"},
                                     "message": {"type": "string"}}},
        },
    },
}

OAUTH_ERROR_SCHEMA = {
    "type": "object",
    "description": "Errors of the OAuth endpoints: Zoom's reason, the RFC 6749 error and Zoom's code (4700-4741).",
    "required": ["code", "message"],
    "properties": {"reason": {"type": "string"}, "error": {"type": "string"}, "code": {"type": "integer"},
                   "message": {"type": "string"}},
}

HEADERS = {
    "X-RateLimit-Category": {
        "description": "Zoom's rate-limit label of the operation.",
        "schema": {"type": "string", "enum": ["Light", "Medium", "Heavy"]},
    },
    "X-RateLimit-Type": {
        "description": "`Daily-limit` on plans with a daily quota (Free), else `QPS`. On a 429: the window "
                       "that refused the request.",
        "schema": {"type": "string", "enum": ["QPS", "Daily-limit"]},
    },
    "X-RateLimit-Limit": {
        "description": "The limit of that window: the daily quota on Free (Light 6000, Medium 2000, Heavy 1000), "
                       "the per-second limit on Pro (Light 30, Medium 20, Heavy 10) and Business (Light 80, "
                       "Medium 60, Heavy 40); on a per-second 429, the per-second limit (Free: 4, 2, 1).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in that window after this one.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Retry-After": {
        "description": "Per-second limit: seconds to wait (`1`). Daily limit: the ISO-8601 UTC time of the next "
                       "reset at 00:00 UTC, as Zoom sends it (e.g. `2026-11-28T00:00:00Z`).",
        "schema": {"type": "string"},
    },
    "x-zm-trackingid": {
        "description": "Zoom's per-response tracking id.",
        "schema": {"type": "string"},
    },
}
RATE_HEADER_NAMES = ("X-RateLimit-Category", "X-RateLimit-Type", "X-RateLimit-Limit", "X-RateLimit-Remaining")

# What the codes behind each status mean, per kind of operation. 401 comes before the rate-limit
# step, so it carries no X-RateLimit-* headers; every later status does (unless the account is
# unlimited).
UNAUTHORIZED = "Unauthorized: missing, invalid or expired access token (code 124)."
TOO_MANY = ("Too Many Requests (code 429): the account's per-second limit or daily quota for this "
            "operation's label is spent. `Retry-After` says when to retry.")
SIP_BAD_REQUEST = ("Bad Request: SIP phone integration is not enabled for the account (code 200); the token "
                   "has none of the operation's scopes (code 4711)")

ERRORS: dict[tuple[str, str], dict[str, str]] = {
    ("get", "/sip_phones"): {
        "400": SIP_BAD_REQUEST + "; invalid `page_size`/`page_number` (code 300 with `errors`); an invalid, "
               "tampered or expired `next_page_token` (code 300).",
        "403": "Forbidden: the app's role lacks SipPhone:Read (code 3306).",
    },
    ("post", "/sip_phones"): {
        "400": SIP_BAD_REQUEST + "; the body is not a JSON object or fails validation (code 300, "
               "\"Validation Failed.\" with `errors`); a SIP phone with the same email exists (code 300).",
        "403": "Forbidden: the app's role lacks SipPhone:Edit (code 3306).",
        "404": "Not Found: `user_email` is not a user of this account (code 1001).",
    },
    ("patch", "/sip_phones/{phoneId}"): {
        "400": SIP_BAD_REQUEST + "; the body is not a JSON object or fails validation (code 300 with `errors`); "
               "no SIP phone with this id on the account (code 300, as Zoom's legacy set answers).",
        "403": "Forbidden: the app's role lacks SipPhone:Edit (code 3336).",
    },
    ("delete", "/sip_phones/{phoneId}"): {
        "400": SIP_BAD_REQUEST + "; no SIP phone with this id on the account (code 300, as Zoom's legacy "
               "set answers).",
        "403": "Forbidden: the app's role lacks SipPhone:Edit (code 3336).",
    },
    ("get", "/sip_phones/phones"): {
        "400": SIP_BAD_REQUEST + "; invalid `page_size` (code 300 with `errors`); an invalid, tampered or "
               "expired `next_page_token` (code 300).",
        "403": "Forbidden: the app's role lacks SipPhone:Read (code 3306).",
    },
    ("post", "/sip_phones/phones"): {
        "400": SIP_BAD_REQUEST + "; the body is not a JSON object or fails validation (code 300, "
               "\"Validation Failed.\" with `errors`); a SIP phone with the same email exists (code 300).",
        "403": "Forbidden: the app's role lacks SipPhone:Edit (code 3306).",
        "404": "Not Found: `user_email` is not a user of this account (code 1001).",
    },
    ("patch", "/sip_phones/phones/{phoneId}"): {
        "400": SIP_BAD_REQUEST + "; the body is not a JSON object or fails validation (code 300 with `errors`).",
        "403": "Forbidden: the app's role lacks SipPhone:Edit (code 3336).",
        "404": "Not Found: no SIP phone with this id on the account (code 2305).",
    },
    ("delete", "/sip_phones/phones/{phoneId}"): {
        "400": SIP_BAD_REQUEST + ".",
        "403": "Forbidden: the app's role lacks SipPhone:Edit (code 3336).",
        "404": "Not Found: no SIP phone with this id on the account (code 2305).",
    },
}

DISPLAY_NUMBER = {"type": "string", "maxLength": fields.BY_NAME["display_number"].max_length,
                  "description": "The number shown for the user when it differs from the SIP user name "
                                 "(added by Zoom on 2025-04-24).",
                  "example": "+15550100"}
# Schemas of the table's fields that Zoom's extract lacks (added to each schema of their shape).
NOT_IN_EXTRACT = {"display_number": DISPLAY_NUMBER}

# Create -> update/delete of the created phone (OpenAPI links; used by stateful test generators).
LINKS = {
    ("post", "/sip_phones"): ("$response.body#/id", ("updateSIPPhone", "deleteSIPPhone")),
    ("post", "/sip_phones/phones"): ("$response.body#/phone_id", ("UpdateSIPPhonePhones", "deleteSIPPhonePhones")),
}


def _header_refs(names) -> dict:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _error(description: str, *, limited: bool = True, schema: str = "ZoomError") -> dict:
    headers = ("x-zm-trackingid", *RATE_HEADER_NAMES) if limited else ("x-zm-trackingid",)
    return {"description": description, "headers": _header_refs(headers),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _too_many() -> dict:
    resp = _error(TOO_MANY)
    resp["headers"].update(_header_refs(("Retry-After",)))
    return resp


def _zoom_text(resp: dict | None) -> str:
    text = (resp or {}).get("description", "").strip()
    return f"\n\nZoom's documentation: {text}" if text else ""


def _patch_sip_operation(method: str, path: str, op: dict) -> None:
    responses = op.setdefault("responses", {})
    for status, text in ERRORS[(method, path)].items():
        responses[status] = _error(text + _zoom_text(responses.get(status)))
    responses["401"] = _error(UNAUTHORIZED + _zoom_text(responses.get("401")), limited=False)
    responses["429"] = _too_many()
    for status, resp in responses.items():
        if status.startswith("2"):
            resp.setdefault("headers", {}).update(_header_refs(("x-zm-trackingid", *RATE_HEADER_NAMES)))
    if (method, path) in LINKS:
        expression, targets = LINKS[(method, path)]
        responses["201"]["links"] = {
            target: {"operationId": target, "parameters": {"phoneId": expression},
                     "description": "The phone just created."}
            for target in targets
        }
    if "requestBody" in op:
        op["requestBody"]["required"] = True
    op["security"] = [{"bearer": []}]
    for p in op.get("parameters", []):
        if p["name"] in ("page_size", "page_number"):
            p["schema"]["minimum"] = 1
        if p["name"] == "page_number":
            p["schema"]["maximum"] = MAX_QUERY_INT
        if p["name"] == "page_size":
            p["schema"].pop("maximum", None)
            p["schema"]["default"] = 30
            p["description"] = (p.get("description", "") + " Default 30, at most 300: larger values are "
                                "served as 300.").strip()


def _json_schema(op: dict, status: str | None = None) -> dict:
    """The JSON schema of an operation's request body (``status`` None) or of one of its responses."""
    holder = op["requestBody"] if status is None else op["responses"][status]
    return holder["content"]["application/json"]["schema"]


def phone_schemas(paths: dict) -> dict[tuple[str, str], dict]:
    """The phone schemas of Zoom's paths (``/sip_phones...``, no ``/v2``), by (shape, use): shape
    ``legacy`` or ``current``; use ``create``, ``update`` (request bodies), ``created``, ``listed``."""
    legacy, legacy_one = paths["/sip_phones"], paths["/sip_phones/{phoneId}"]
    current, current_one = paths["/sip_phones/phones"], paths["/sip_phones/phones/{phoneId}"]
    return {
        ("legacy", "create"): _json_schema(legacy["post"]),
        ("legacy", "update"): _json_schema(legacy_one["patch"]),
        ("legacy", "created"): _json_schema(legacy["post"], "201"),
        ("legacy", "listed"): _json_schema(legacy["get"], "200")["properties"]["phones"]["items"],
        ("current", "create"): _json_schema(current["post"]),
        ("current", "update"): _json_schema(current_one["patch"]),
        ("current", "created"): _json_schema(current["post"], "201"),
        ("current", "listed"): _json_schema(current["get"], "200")["properties"]["phones"]["items"],
    }


def _patch_phone_schemas(doc: dict) -> None:
    """Zoom's phone schemas as the table (``phones.fields``) says: its required fields, its default
    expiry, the fields Zoom's extract lacks."""
    schemas = phone_schemas(doc["paths"])
    schemas["legacy", "create"]["required"] = list(fields.LEGACY_CREATE_REQUIRED)
    schemas["legacy", "update"]["required"] = list(fields.LEGACY_UPDATE_REQUIRED)
    schemas["legacy", "create"]["properties"]["registration_expire_time"].setdefault(
        "default", fields.BY_NAME["registration_expire_time"].default)

    # The current create names the server object as required, and its register server inside it.
    cur_post = schemas["current", "create"]
    required = fields.CURRENT_CREATE_REQUIRED
    cur_post["required"] = sorted({fields.BY_NAME[n].current_path[0] for n in required})
    cur_post["properties"]["server"]["required"] = [
        fields.BY_NAME[n].current_path[1] for n in required if fields.BY_NAME[n].slot == 1]
    for use in ("create", "update", "created", "listed"):
        properties = schemas["current", use]["properties"]
        for f in fields.CURRENT_SHAPE_SCALARS:
            if f.name in NOT_IN_EXTRACT and f.name not in properties:
                properties[f.name] = NOT_IN_EXTRACT[f.name]


def _ok(description: str, schema: dict | None = None, *, limited: bool = True) -> dict:
    headers = ("x-zm-trackingid", *RATE_HEADER_NAMES) if limited else ("x-zm-trackingid",)
    resp: dict = {"description": description, "headers": _header_refs(headers)}
    if schema is not None:
        resp["content"] = {"application/json": {"schema": schema}}
    return resp


USERS_BAD_REQUEST = ("Bad Request: the token has none of the operation's scopes (code 4711); invalid "
                     "parameters or body (code 300 with `errors`)")

OWN_PATHS = {
    "/v2/users": {
        "get": {
            "tags": ["Users"], "summary": "List users", "operationId": "users",
            "description": "A Zoom-shaped subset of Zoom's List users. Rate-limit label: Medium.",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "page_size", "in": "query",
                 "description": "Default 30, at most 300: larger values are served as 300.",
                 "schema": {"type": "integer", "minimum": 1, "default": 30}},
                {"name": "next_page_token", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _ok("Users.", {
                    "type": "object",
                    "properties": {
                        "next_page_token": {"type": "string"}, "page_count": {"type": "integer"},
                        "page_number": {"type": "integer"}, "page_size": {"type": "integer"},
                        "total_records": {"type": "integer"},
                        "users": {"type": "array", "items": {"$ref": "#/components/schemas/User"}}}}),
                "400": _error(USERS_BAD_REQUEST + "; an invalid or expired `next_page_token` (code 300)."),
                "401": _error(UNAUTHORIZED, limited=False),
                "403": _error("Forbidden: the app's role lacks User:Read (code 3306)."),
                "429": _too_many(),
            },
        },
        "post": {
            "tags": ["Users"], "summary": "Create a user", "operationId": "userCreate",
            "description": "A Zoom-shaped subset of Zoom's Create users. Rate-limit label: Light.",
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["action", "user_info"],
                "properties": {
                    "action": {"type": "string", "enum": ["create", "autoCreate", "custCreate", "ssoCreate"]},
                    "user_info": {"type": "object", "required": ["email", "type"], "properties": {
                        "email": {"type": "string", "format": "email", "maxLength": 64,
                                  "example": "jchill@example.com"},
                        "type": {"type": "integer", "enum": [1, 2, 3, 99]},
                        "first_name": {"type": "string", "maxLength": 64, "example": "Jill"},
                        "last_name": {"type": "string", "maxLength": 64, "example": "Chill"}}}}}}}},
            "responses": {
                "201": _ok("User created.", {
                    "type": "object", "properties": {"id": {"type": "string"}, "first_name": {"type": "string"},
                                                     "last_name": {"type": "string"}, "email": {"type": "string"},
                                                     "type": {"type": "integer"}}}),
                "400": _error(USERS_BAD_REQUEST + "."),
                "401": _error(UNAUTHORIZED, limited=False),
                "403": _error("Forbidden: the app's role lacks User:Edit (code 3306)."),
                "404": _error("Not Found: the account was deleted while the request ran (code 2001)."),
                "409": _error("Conflict: the user is already in the account (code 1005)."),
                "429": _too_many(),
            },
        },
    },
    "/v2/users/{userId}": {
        "delete": {
            "tags": ["Users"], "summary": "Delete a user (and their SIP phones)", "operationId": "userDelete",
            "description": "Rate-limit label: Light.",
            "security": [{"bearer": []}],
            "parameters": [{"name": "userId", "in": "path", "required": True,
                            "description": "The user's id or email address.", "schema": {"type": "string"}}],
            "responses": {"204": _ok("Deleted."),
                          "400": _error(USERS_BAD_REQUEST + "."),
                          "401": _error(UNAUTHORIZED, limited=False),
                          "403": _error("Forbidden: the app's role lacks User:Edit (code 3306)."),
                          "404": _error("Not Found: no such user on the account (code 1001)."),
                          "429": _too_many()},
        }
    },
    "/_sipphones/v1/sip_phones/{phoneId}/check": {
        "post": {
            "tags": ["sipphones extensions"],
            "summary": "Check that a SIP phone registers with its PBX (sipphones extension, not Zoom's API)",
            "description": "Registers the phone once on each configured server set with its stored credentials, "
                           "reports per set what happened, then un-registers. Same token as the SIP phone endpoints, "
                           "with the scope and permission of updating a phone (`sip_phone:write:admin` or "
                           "`sip_phone:update:sip_phone:admin`, and `SipPhone:Edit`): it acts with the phone's "
                           "credentials. Rate-limit label Heavy. HTTP 200 whether or not the phone registered: the "
                           "outcome is `ok` and `servers[].result`.",
            "operationId": "sipphonesCheckPhone",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "phoneId", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "timeout", "in": "query", "required": False,
                 "description": "Time budget per server set, seconds (0.1 to 30, default 5).",
                 "schema": {"type": "number", "minimum": 0.1, "maximum": 30}},
            ],
            "responses": {
                "200": {"description": "The check report.", "headers": _header_refs(("x-zm-trackingid", *RATE_HEADER_NAMES)),
                        "content": {"application/json": {"schema": {
                            "type": "object", "required": ["phone_id", "ok", "servers"],
                            "properties": {
                                "phone_id": {"type": "string"}, "user_email": {"type": "string"},
                                "ok": {"type": "boolean"},
                                "servers": {"type": "array", "items": {"type": "object", "properties": {
                                    "slot": {"type": "integer"}, "result": {"type": "string"},
                                    "address": {"type": "string", "nullable": True},
                                    "transport": {"type": "string", "nullable": True},
                                    "sip_status": {"type": "integer", "nullable": True},
                                    "rtt_ms": {"type": "number", "nullable": True},
                                    "granted_expires": {"type": "integer", "nullable": True}}}}}}}}},
                "400": _error("Validation failed (`timeout`), SIP phone integration disabled (code 200), or the "
                              "token has none of the scopes (code 4711)."),
                "401": _error(UNAUTHORIZED, limited=False),
                "403": _error("Forbidden: the app's role lacks SipPhone:Edit (code 3336)."),
                "404": _error("Not Found: no such SIP phone on this account (code 2305)."),
                "429": _too_many(),
            },
        }
    },
    "/_sipphones/v1/sip_phones/status": {
        "get": {
            "tags": ["sipphones extensions"],
            "summary": "List each SIP phone's registration status (sipphones extension, not Zoom's API)",
            "description": "The account's phones in id order, each with what `sipphones monitor` last recorded for "
                           "it: `state` (`unknown` when no monitor has recorded the phone), the server set, address "
                           "and transport in use, the last error and SIP status, the last success and attempt. "
                           "Same token as the SIP phone endpoints, with the scope and permission of listing phones "
                           "(`sip_phone:read:admin` or `sip_phone:read:list_sip_phones:admin`, and "
                           "`SipPhone:Read`). Rate-limit label Medium.",
            "operationId": "sipphonesListPhoneStatuses",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "state", "in": "query", "required": False,
                 "description": "Only phones in these states, separated by commas (e.g. `failed,invalid`): "
                                "registered, failed, invalid, idle, resolving, connecting, registering, stopping, "
                                "stopped, unknown. At most 200 characters.",
                 "schema": {"type": "string", "maxLength": 200, "example": "failed"}},
                {"name": "page_size", "in": "query", "required": False,
                 "description": "Default 30, at most 300: larger values are served as 300.",
                 "schema": {"type": "integer", "minimum": 1, "default": 30}},
                {"name": "next_page_token", "in": "query", "required": False,
                 "description": "The previous page's `next_page_token` (same `state`; valid 15 minutes).",
                 "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _ok("One page of phones with their registration status.", {
                    "type": "object", "required": ["next_page_token", "page_size", "phones"],
                    "properties": {
                        "next_page_token": {"type": "string", "description": "Empty on the last page."},
                        "page_size": {"type": "integer"},
                        "phones": {"type": "array", "items": {"$ref": "#/components/schemas/PhoneStatus"}}}}),
                "400": _error("SIP phone integration disabled (code 200), the token has none of the scopes (code "
                              "4711), invalid `state` or `page_size` (code 300 with `errors`), an invalid, "
                              "tampered or expired `next_page_token` (code 300)."),
                "401": _error(UNAUTHORIZED, limited=False),
                "403": _error("Forbidden: the app's role lacks SipPhone:Read (code 3306)."),
                "429": _too_many(),
            },
        }
    },
    "/healthz": {
        "get": {
            "tags": ["Service"], "summary": "Liveness and database check", "operationId": "healthz",
            "security": [],
            "responses": {"200": {"description": "Healthy.", "content": {"application/json": {"schema": {
                "type": "object", "required": ["status"],
                "properties": {"status": {"type": "string", "enum": ["ok"]}, "version": {"type": "string"},
                               "database": {"type": "string"}, "rate_limit_storage": {"type": "string"}}}}}},
                          "503": _error("The database does not answer (code 503).", limited=False)},
        }
    },
}

_TIME = {"type": "string", "format": "date-time", "nullable": True,
         "description": "ISO-8601 UTC, e.g. `2026-11-28T00:00:00Z`; null when never."}
PHONE_STATUS_SCHEMA = {
    "type": "object",
    "required": ["phone_id", "user_email", "state", "registered", "server_slot", "server_address", "transport",
                 "last_error", "last_status_code", "last_success_at", "last_attempt_at", "granted_expires",
                 "updated_at"],
    "properties": {
        "phone_id": {"type": "string"},
        "user_email": {"type": "string"},
        "state": {"type": "string", "enum": ["registered", "failed", "invalid", "idle", "resolving", "connecting",
                                             "registering", "stopping", "stopped", "unknown"]},
        "registered": {"type": "boolean"},
        "server_slot": {"type": "integer", "nullable": True, "description": "The server set in use (1-3)."},
        "server_address": {"type": "string", "description": "host:port registered with; empty when none."},
        "transport": {"type": "string", "description": "UDP, TCP or TLS; empty when none."},
        "last_error": {"type": "string", "description": "Why the phone is not registered on its first server set; "
                                                        "empty while it is."},
        "last_status_code": {"type": "integer", "nullable": True, "description": "The last final SIP status."},
        "last_success_at": _TIME,
        "last_attempt_at": _TIME,
        "granted_expires": {"type": "integer", "nullable": True, "description": "Seconds the registrar granted."},
        "updated_at": _TIME,
    },
}

USER_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
                   "display_name": {"type": "string"}, "email": {"type": "string"}, "type": {"type": "integer"},
                   "status": {"type": "string"}, "user_created_at": {"type": "string"},
                   "account_id": {"type": "string", "description": "Get a user only."}},
}


@functools.lru_cache(maxsize=1)
def build_document(extra_paths_json: str = "{}") -> dict:
    """The document served at /openapi.json (``extra_paths_json``: more paths, e.g. extensions)."""
    zoom = json.loads(EXTRACT.read_text())
    _patch_phone_schemas(zoom)
    doc = {
        "openapi": "3.0.3",
        "info": {
            "title": "sipphones: Zoom-compatible SIP Phone API",
            "version": "2.0.0",
            "description": "Zoom's SIP Phone (Phone System Integration) API as served by sipphones: both endpoint "
                           "sets (legacy `/v2/sip_phones` and current `/v2/sip_phones/phones`), Server-to-Server "
                           "OAuth, Zoom's error bodies and rate limits.\n\nRate limits are per account and per "
                           "label (lists: Medium; create, update, delete: Light), from Zoom's table: Free 4/s and "
                           "6,000/day Light, 2/s and 2,000/day Medium (daily quotas reset at 00:00 UTC); Pro 30/s "
                           "Light, 20/s Medium; Business 80/s Light, 60/s Medium.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": "SIP Phone"}, {"name": "OAuth"}, {"name": "Users"}, {"name": "Service"}],
        "paths": {},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "An access token from POST /oauth/token."},
                "basic": {"type": "http", "scheme": "basic", "description": "client_id:client_secret of an app."},
            },
            "schemas": {"ZoomError": ERROR_SCHEMA, "OAuthError": OAUTH_ERROR_SCHEMA, "User": USER_SCHEMA,
                        "PhoneStatus": PHONE_STATUS_SCHEMA},
            "headers": copy.deepcopy(HEADERS),
        },
    }
    for path, ops in zoom["paths"].items():
        new_ops = {}
        for method, op in ops.items():
            op = copy.deepcopy(op)
            _patch_sip_operation(method, path, op)
            new_ops[method] = op
        doc["paths"]["/v2" + path] = new_ops
    doc["paths"].update(copy.deepcopy(OWN_PATHS))
    for path, ops in oauth_paths(_ok, _error, _too_many, UNAUTHORIZED).items():
        doc["paths"].setdefault(path, {}).update(ops)
    doc["paths"].update(json.loads(extra_paths_json))
    return doc


@functools.lru_cache(maxsize=1)
def document_bytes() -> bytes:
    return orjson.dumps(build_document())
