"""The control plane's fault rule routes (under ``/_sipphones/v1``, operator token checked by the
mount, ``sipphones.api.control``); what a rule does: ``sipphones.emulator.faults``.

- ``POST /faults`` with a rule ``{"method", "path", "account_id", "action", "status",
  "retry_after", "probability", "delay_ms", "delay_max_ms", "times", "code", "message"}`` ->
  201 with the rule and its ``id``;
- ``GET /faults`` -> ``{"faults": [...], "total": N}``, in the order they are tried;
- ``GET /faults/{id}`` -> one rule; ``DELETE /faults/{id}`` -> 204 (404 when there is none);
- ``DELETE /faults`` -> ``{"removed": N}``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sipphones.api.control import json_object
from sipphones.api.state import app_state
from sipphones.api.responses import empty_response, error_response, json_response
from sipphones.errors import NotFound


async def add_rule(request: Request) -> Response:
    rule = app_state(request).emulator.faults.add(await json_object(request))
    return json_response(rule.as_dict(), 201)


async def list_rules(request: Request) -> Response:
    rules = app_state(request).emulator.faults.list()
    return json_response({"faults": [r.as_dict() for r in rules], "total": len(rules)})


async def get_rule(request: Request) -> Response:
    rule_id = request.path_params["rule_id"]
    rule = app_state(request).emulator.faults.get(rule_id)
    if rule is None:
        return error_response(_no_rule(rule_id))
    return json_response(rule.as_dict())


async def remove_rule(request: Request) -> Response:
    rule_id = request.path_params["rule_id"]
    if not app_state(request).emulator.faults.remove(rule_id):
        return error_response(_no_rule(rule_id))
    return empty_response(204)


async def clear_rules(request: Request) -> Response:
    return json_response({"removed": app_state(request).emulator.faults.clear()})


def _no_rule(rule_id: str) -> NotFound:
    return NotFound(f"No fault rule {rule_id[:64]}.")


routes = [
    Route("/faults", add_rule, methods=["POST"]),
    Route("/faults", list_rules, methods=["GET"]),
    Route("/faults", clear_rules, methods=["DELETE"]),
    Route("/faults/{rule_id}", get_rule, methods=["GET"]),
    Route("/faults/{rule_id}", remove_rule, methods=["DELETE"]),
]
