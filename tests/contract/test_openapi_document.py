"""/openapi.json, /docs and /healthz as served by a real server process."""

from __future__ import annotations

import json
import re
import time

import httpx
import jsonschema_rs
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from sipphones.accounts.models import Plan
from sipphones.api.app import create_app
from sipphones.api.openapi import EXTRACT
from tests.servers import Admin, get_token

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def document(contract_server) -> dict:
    r = httpx.get(f"{contract_server.base_url}/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def _resolve(doc: dict, node):
    if isinstance(node, dict):
        if "$ref" in node:
            target = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(doc, target)
        return {k: _resolve(doc, v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(doc, v) for v in node]
    return node


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_document_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    validate(document)  # raises with the offending location


SERVICE_PAGES = {"/", "/openapi.json", "/docs", "/docs/init.js"}  # the document, its viewer and the way there


def _console_page(path: str) -> bool:
    """The admin console's HTML pages (sipphones.console): for browsers, not part of the API."""
    return path == "/console" or path.startswith("/console/")


def test_every_route_is_documented_and_every_documented_operation_is_served(document):
    app = create_app(run_migrations=False)
    served = {(m.lower(), _template(r.path)) for r in app.routes
              if isinstance(r, Route) and r.path not in SERVICE_PAGES and not _console_page(r.path)
              for m in r.methods if m != "HEAD"}
    documented = {(m, _template(p)) for p, ops in document["paths"].items() for m in ops if m in METHODS}
    assert served == documented


def _properties(schema: dict, prefix: str = "") -> dict[str, str | None]:
    """Every property path of a schema with its type (objects and array items included)."""
    out: dict[str, str | None] = {}
    for name, prop in (schema.get("properties") or {}).items():
        out[prefix + name] = prop.get("type")
        if prop.get("type") == "object":
            out.update(_properties(prop, f"{prefix}{name}."))
        if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
            out.update(_properties(prop["items"], f"{prefix}{name}[]."))
    return out


def test_zoom_field_names_and_operation_ids_are_kept(document):
    zoom = json.loads(EXTRACT.read_text())
    checked = 0
    for path, ops in zoom["paths"].items():
        for method, op in ops.items():
            ours = document["paths"]["/v2" + path][method]
            assert ours["operationId"] == op["operationId"]
            assert [p["name"] for p in ours.get("parameters", [])] == [p["name"] for p in op.get("parameters", [])]
            pairs = []
            if "requestBody" in op:
                pairs.append((op["requestBody"]["content"]["application/json"]["schema"],
                              ours["requestBody"]["content"]["application/json"]["schema"]))
            for status, resp in op["responses"].items():
                if "content" in resp:
                    mine = ours["responses"][status]["content"]["application/json"]["schema"]
                    pairs.append((resp["content"]["application/json"]["schema"], _resolve(document, mine)))
            for theirs, mine in pairs:
                zoom_fields, our_fields = _properties(theirs), _properties(mine)
                missing = {f: t for f, t in zoom_fields.items() if our_fields.get(f, "absent") != t}
                assert not missing, f"{method.upper()} {path}: fields differ from Zoom's: {missing}"
                checked += len(zoom_fields)
    assert checked > 100  # the extract's phone objects really were compared


def test_every_error_status_has_zooms_error_body(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                schema = _resolve(document, resp["content"]["application/json"]["schema"])
                assert {"code", "message"} <= set(schema["required"]), (method, path, status)
                assert schema["properties"]["code"]["type"] == "integer"


def test_sip_phone_operations_document_auth_and_rate_limit_answers(document):
    for path, ops in document["paths"].items():
        if not path.startswith("/v2/"):
            continue
        for method, op in ops.items():
            assert {"400", "401", "429"} <= set(op["responses"]), (method, path)
            assert "Retry-After" in op["responses"]["429"]["headers"]
            ok = next(r for s, r in op["responses"].items() if s.startswith("2"))
            assert {"X-RateLimit-Category", "X-RateLimit-Type", "X-RateLimit-Limit",
                    "X-RateLimit-Remaining"} <= set(ok["headers"])


def _header_schema(document: dict, response: dict, name: str) -> dict:
    return _resolve(document, response["headers"][name])["schema"]


def test_a_real_429_matches_the_documented_body_and_headers(document, contract_server):
    """Schemathesis runs with an unlimited account and never sees a 429: check one here."""
    admin = Admin(contract_server.database_url, contract_server.data_dir)
    creds = admin.account(plan=Plan.FREE, unlimited=False, name="Free account")
    with contract_server.client() as c:
        c.headers["Authorization"] = f"Bearer {get_token(c, creds)}"
        responses = [c.get("/v2/sip_phones/phones") for _ in range(6)]  # Medium on Free: 2/s
    refused = [r for r in responses if r.status_code == 429]
    assert refused, [r.status_code for r in responses]
    spec = document["paths"]["/v2/sip_phones/phones"]["get"]["responses"]
    for r, status in ((refused[0], "429"), (responses[0], "200")):
        body_schema = _resolve(document, spec[status]["content"]["application/json"]["schema"])
        errors = [e.message for e in jsonschema_rs.validator_for(body_schema).iter_errors(r.json())]
        assert not errors, errors
        for name in spec[status]["headers"]:
            if name == "Retry-After" or name.startswith("X-RateLimit-"):
                assert name.lower() in r.headers, (status, name)
            if name in r.headers:
                schema = _header_schema(document, spec[status], name)
                value = int(r.headers[name]) if schema["type"] == "integer" else r.headers[name]
                errs = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(value)]
                assert not errs, (status, name, r.headers[name], errs)


def test_healthz(contract_server):
    r = httpx.get(f"{contract_server.base_url}/healthz", timeout=5)
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["database"] == "sqlite"
    assert r.json()["rate_limit_storage"] == "memory"


def test_docs_page_is_served_locally(contract_server):
    with contract_server.client() as c:
        page = c.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets and all(a.startswith("/") for a in assets), assets  # no CDN, no other host
        for asset in assets:
            r = c.get(asset)
            assert r.status_code == 200, asset
            assert len(r.content) > 0


@pytest.mark.browser
def test_docs_page_renders_every_operation_in_a_browser(contract_server, document):
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda req: requested.append(req.url))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(f"{contract_server.base_url}/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            deadline = time.monotonic() + 10
            expected = sum(1 for ops in document["paths"].values() for m in ops if m in METHODS)
            while page.locator(".opblock").count() < expected and time.monotonic() < deadline:
                page.wait_for_timeout(50)
            assert page.locator(".opblock").count() == expected
        finally:
            browser.close()
    assert not problems, problems
    assert requested and all(u.startswith(contract_server.base_url + "/") for u in requested), requested
    assert f"{contract_server.base_url}/openapi.json" in requested
