"""The service's own OpenAPI document: Zoom's published extract, adjusted to what we serve.

Starting from Zoom's document keeps every field name and description Zoom's own. The changes are
the documented decisions of this service: paths under ``/v2``; ``voice_mail`` required on the
legacy create (the seed document wins); ``display_number`` (added by Zoom in April 2025); the
error responses we answer, each with Zoom's error body schema; and the service's own endpoints
(OAuth token, users, health, the registration-check extension).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

EXTRACT = Path(__file__).with_name("zoom_openapi_extract.json")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "required": ["field", "message"],
                      "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
}


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ZoomError"}}}}


_STATUS_TEXT = {
    "400": "Bad Request: validation failed (code 300), SIP phone integration disabled (code 200), "
           "duplicate email (300), unknown legacy phone (300), token lacks a scope (4711), bad next_page_token (300).",
    "401": "Unauthorized: invalid or expired access token (code 124).",
    "403": "Forbidden: the app's role lacks the SipPhone permission (code 3306 or 3336).",
    "404": "Not Found: unknown user (code 1001) or unknown phone (code 2305).",
    "409": "Conflict: the user already exists (code 1005).",
    "429": "Too Many Requests: per-second or daily rate limit (code 429), with Retry-After.",
    "500": "Internal error (code 500).",
}

DISPLAY_NUMBER = {"type": "string", "maxLength": 64,
                  "description": "The number shown for the user when it differs from the SIP user name (added by Zoom on 2025-04-24).",
                  "example": "+15550100"}

RATE_HEADERS = {
    name: {"schema": {"type": "string"}, "description": desc} for name, desc in (
        ("X-RateLimit-Category", "Zoom's rate-limit label: Light or Medium."),
        ("X-RateLimit-Type", "QPS or Daily-limit."),
        ("X-RateLimit-Limit", "The limit of that window."),
        ("X-RateLimit-Remaining", "Requests left in that window."),
    )
}


def _patch_operation(method: str, op: dict, current: bool) -> None:
    responses = op.setdefault("responses", {})
    for status in ("400", "401", "403", "429"):
        responses[status] = _error(_STATUS_TEXT[status])
    if method in ("patch", "delete") or (method == "post"):
        responses["404"] = _error(_STATUS_TEXT["404"])
    for code, resp in responses.items():
        if code.startswith("2"):
            resp.setdefault("headers", {}).update(RATE_HEADERS)
    op["security"] = [{"bearer": []}]
    for p in op.get("parameters", []):
        if p["name"] == "page_size":
            p["schema"]["minimum"] = 1
        if p["name"] == "page_number":
            p["schema"]["minimum"] = 1


def _patch_phone_schemas(doc: dict) -> None:
    paths = doc["paths"]
    legacy_body = paths["/sip_phones"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    if "voice_mail" not in legacy_body["required"]:
        legacy_body["required"].append("voice_mail")
    legacy_body["properties"]["registration_expire_time"].setdefault("default", 60)

    cur_post = paths["/sip_phones/phones"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    cur_post.setdefault("required", [])
    if "server" not in cur_post["required"]:
        cur_post["required"].append("server")
    cur_post["properties"]["server"]["required"] = ["register_server"]
    cur_post["properties"]["display_number"] = DISPLAY_NUMBER
    paths["/sip_phones/phones/{phoneId}"]["patch"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"]["display_number"] = DISPLAY_NUMBER
    created = paths["/sip_phones/phones"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    created["properties"]["display_number"] = DISPLAY_NUMBER
    listed = paths["/sip_phones/phones"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    listed["properties"]["phones"]["items"]["properties"]["display_number"] = DISPLAY_NUMBER


OWN_PATHS = {
    "/oauth/token": {
        "post": {
            "tags": ["OAuth"],
            "summary": "Get an access token (Server-to-Server OAuth)",
            "description": "HTTP Basic client credentials; `grant_type=account_credentials&account_id=...` "
                           "in the form body or the query string.",
            "operationId": "getAccessToken",
            "security": [{"basic": []}],
            "parameters": [
                {"name": "grant_type", "in": "query", "required": False, "schema": {"type": "string", "enum": ["account_credentials"]}},
                {"name": "account_id", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            "requestBody": {"required": False, "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object",
                "properties": {"grant_type": {"type": "string", "enum": ["account_credentials"]},
                               "account_id": {"type": "string"}}}}}},
            "responses": {
                "200": {"description": "A bearer token.", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["access_token", "token_type", "expires_in", "scope"],
                    "properties": {"access_token": {"type": "string"}, "token_type": {"type": "string"},
                                   "expires_in": {"type": "integer"}, "scope": {"type": "string"},
                                   "api_url": {"type": "string"}}}}}},
                "400": _error("Missing or unsupported grant type, missing credentials or account (codes 4700-4706)."),
                "401": _error("Invalid client credentials or disabled app (codes 4702, 4704, 4717)."),
            },
        }
    },
    "/v2/users": {
        "get": {
            "tags": ["Users"], "summary": "List users", "operationId": "users",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 30}},
                {"name": "next_page_token", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "Users.", "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {
                        "next_page_token": {"type": "string"}, "page_count": {"type": "integer"},
                        "page_number": {"type": "integer"}, "page_size": {"type": "integer"},
                        "total_records": {"type": "integer"},
                        "users": {"type": "array", "items": {"$ref": "#/components/schemas/User"}}}}}}},
                **{s: _error(_STATUS_TEXT[s]) for s in ("400", "401", "429")},
            },
        },
        "post": {
            "tags": ["Users"], "summary": "Create a user", "operationId": "userCreate",
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["action", "user_info"],
                "properties": {
                    "action": {"type": "string", "enum": ["create", "autoCreate", "custCreate", "ssoCreate"]},
                    "user_info": {"type": "object", "required": ["email", "type"], "properties": {
                        "email": {"type": "string", "format": "email", "maxLength": 64},
                        "type": {"type": "integer", "enum": [1, 2, 3, 99]},
                        "first_name": {"type": "string", "maxLength": 64},
                        "last_name": {"type": "string", "maxLength": 64}}}}}}}},
            "responses": {
                "201": {"description": "User created.", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"id": {"type": "string"}, "first_name": {"type": "string"},
                                                     "last_name": {"type": "string"}, "email": {"type": "string"},
                                                     "type": {"type": "integer"}}}}}},
                **{s: _error(_STATUS_TEXT[s]) for s in ("400", "401", "409", "429")},
            },
        },
    },
    "/v2/users/{userId}": {
        "delete": {
            "tags": ["Users"], "summary": "Delete a user (and their SIP phones)", "operationId": "userDelete",
            "security": [{"bearer": []}],
            "parameters": [{"name": "userId", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"204": {"description": "Deleted."},
                          **{s: _error(_STATUS_TEXT[s]) for s in ("400", "401", "404", "429")}},
        }
    },
    "/healthz": {
        "get": {
            "tags": ["Service"], "summary": "Liveness and database check", "operationId": "healthz",
            "security": [],
            "responses": {"200": {"description": "Healthy.", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"status": {"type": "string"}, "version": {"type": "string"},
                                                 "database": {"type": "string"}}}}}},
                          "503": _error("The database does not answer.")},
        }
    },
}

USER_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
                   "display_name": {"type": "string"}, "email": {"type": "string"}, "type": {"type": "integer"},
                   "status": {"type": "string"}, "user_created_at": {"type": "string"}},
}


@functools.lru_cache(maxsize=1)
def build_document(extra_paths_json: str = "{}") -> dict:
    zoom = json.loads(EXTRACT.read_text())
    _patch_phone_schemas(zoom)
    doc = {
        "openapi": "3.0.3",
        "info": {
            "title": "sipphones: Zoom-compatible SIP Phone API",
            "version": "2.0.0",
            "description": "Zoom's SIP Phone (Phone System Integration) API as served by sipphones. Both endpoint sets "
                           "(legacy /v2/sip_phones and current /v2/sip_phones/phones), Server-to-Server OAuth, "
                           "Zoom's error bodies and rate limits.",
        },
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "basic": {"type": "http", "scheme": "basic"},
            },
            "schemas": {"ZoomError": ERROR_SCHEMA, "User": USER_SCHEMA},
        },
    }
    for path, ops in zoom["paths"].items():
        new_ops = {}
        for method, op in ops.items():
            op = copy.deepcopy(op)
            _patch_operation(method, op, current=path.startswith("/sip_phones/phones"))
            new_ops[method] = op
        doc["paths"]["/v2" + path] = new_ops
    doc["paths"].update(copy.deepcopy(OWN_PATHS))
    doc["paths"].update(json.loads(extra_paths_json))
    return doc
