"""Schemathesis hooks (loaded by the CLI through SCHEMATHESIS_HOOKS) for the run of Zoom's extract.

Zoom's extract does not list every status Zoom really answers: the legacy operations document no
401 although code 124 (HTTP 401) is Zoom's answer to a bad token on every API, the legacy DELETE
documents no 400 although an unknown phone id must be refused somehow (this service answers
HTTP 400 + code 300, as Zoom's older documents model it; see the notes, §5), and no operation
documents 403/3306 on the legacy set. ``status_code_conformance`` against the extract would flag
those decisions, not bugs. This check replaces it for that run: a status must be documented by
Zoom's extract or, failing that, by the service's own document for the same operation (where the
decision is written down), and such a response must carry the body the service documents for it.
Anything else — a status neither document lists, or a body outside the service's schema — fails.
"""

from __future__ import annotations

import json

import jsonschema_rs
import schemathesis

from sipphones.api.openapi import build_document

SERVICE_DOCUMENT = build_document()


def _resolve(node: dict) -> dict:
    """Inline the document's local ``$ref``s (the service's error schemas are referenced)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = SERVICE_DOCUMENT
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(target)
        return {k: _resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v) for v in node]
    return node


def service_response(method: str, zoom_path: str, status: int) -> dict | None:
    """The service's documented response for an operation of Zoom's extract (paths under /v2)."""
    operation = SERVICE_DOCUMENT["paths"].get("/v2" + zoom_path, {}).get(method.lower(), {})
    response = operation.get("responses", {}).get(str(status))
    return _resolve(response) if response is not None else None


@schemathesis.check
def zoom_status_or_documented_decision(ctx, response, case):
    sent = (response.request.method or "").upper()
    if sent != case.operation.method.upper():
        # The coverage phase also sends methods the path does not define (e.g. TRACE): that must
        # be a 405 in Zoom's error shape, whatever either document lists for the real method.
        if response.status_code != 405:
            raise AssertionError(f"{sent} {case.operation.path} (undefined method) answered {response.status_code}")
        if sent != "HEAD":
            _check_body(response, SERVICE_DOCUMENT["components"]["schemas"]["ZoomError"])
        return None
    zoom_statuses = set(case.operation.responses.status_codes)
    if str(response.status_code) in zoom_statuses or "default" in zoom_statuses:
        return None
    decision = service_response(case.operation.method, case.operation.path, response.status_code)
    if decision is None:
        raise AssertionError(
            f"{case.operation.method.upper()} {case.operation.path} answered {response.status_code}, documented "
            f"neither by Zoom's extract ({', '.join(sorted(zoom_statuses))}) nor by the service's document")
    schema = decision.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        _check_body(response, schema)
    return None


def _check_body(response, schema: dict) -> None:
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.content[:200]!r}") from None
    errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(body)]
    if errors:
        raise AssertionError(f"{response.status_code} body outside the service's documented schema: {errors}")
