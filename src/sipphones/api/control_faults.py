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

from sipphones.api.control_support import control_route, emulator_of, json_object
from sipphones.api.responses import empty_response, error_response, json_response
from sipphones.errors import NotFound


@control_route
async def add_rule(request: Request) -> Response:
    rule = emulator_of(request).faults.add(await json_object(request))
    return json_response(rule.as_dict(), 201)


@control_route
async def list_rules(request: Request) -> Response:
    rules = emulator_of(request).faults.list()
    return json_response({"faults": [r.as_dict() for r in rules], "total": len(rules)})


@control_route
async def get_rule(request: Request) -> Response:
    rule_id = request.path_params["rule_id"]
    rule = emulator_of(request).faults.get(rule_id)
    if rule is None:
        return error_response(_no_rule(rule_id))
    return json_response(rule.as_dict())


@control_route
async def remove_rule(request: Request) -> Response:
    rule_id = request.path_params["rule_id"]
    if not emulator_of(request).faults.remove(rule_id):
        return error_response(_no_rule(rule_id))
    return empty_response(204)


@control_route
async def clear_rules(request: Request) -> Response:
    return json_response({"removed": emulator_of(request).faults.clear()})


def _no_rule(rule_id: str) -> NotFound:
    return NotFound(f"No fault rule {rule_id[:64]}.")


routes = [
    Route("/faults", add_rule, methods=["POST"]),
    Route("/faults", list_rules, methods=["GET"]),
    Route("/faults", clear_rules, methods=["DELETE"]),
    Route("/faults/{rule_id}", get_rule, methods=["GET"]),
    Route("/faults/{rule_id}", remove_rule, methods=["DELETE"]),
]
