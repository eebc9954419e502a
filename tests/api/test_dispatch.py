"""The direct dispatcher picks exactly the endpoint Starlette's router would pick, or leaves the
request to Starlette: compared route by route with Starlette's own matching, on the real routes."""

from __future__ import annotations

import pytest
from starlette.routing import Match

from sipphones.api import check, meta, oauth, sip_phones, users
from sipphones.api.dispatch import RouteTable

DIRECT = [*oauth.routes, *sip_phones.routes, *users.routes]
ALL_ROUTES = [*DIRECT, *meta.routes, *check.routes]

PATHS = [
    "/oauth/token", "/oauth/token/", "/oauth",
    "/v2/sip_phones", "/v2/sip_phones/", "/v2/sip_phones/phones", "/v2/sip_phones/phones/",
    "/v2/sip_phones/abc", "/v2/sip_phones/phones/abc", "/v2/sip_phones/phones/abc/", "/v2/sip_phones/abc/check",
    "/v2/sip_phones/phones/abc/def", "/v2/sip_phones//x", "/v2/sip_phones/%20", "/v2/sip_phones/caf\u00e9",
    "/v2/users", "/v2/users/", "/v2/users/u1", "/v2/users/u1/x", "/v2/usersx",
    "/healthz", "/docs", "/openapi.json", "/", "", "/v2", "/v2/sip_phones/phones/phones",
]
METHODS = ["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"]


def starlette_choice(method: str, path: str):
    """What Starlette's router serves: the first full match, if it is one of the direct routes."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in ALL_ROUTES:
        match, child = route.matches(scope)
        if match is Match.FULL:
            if route in DIRECT and method != "HEAD":
                return route.endpoint, child["path_params"]
            return None
    return None


@pytest.mark.parametrize("method", METHODS)
def test_table_matches_starlette_router(method):
    table = RouteTable(DIRECT)
    for path in PATHS:
        assert table.find(method, path) == starlette_choice(method, path), (method, path)


def test_every_direct_route_is_reachable():
    table = RouteTable(DIRECT)
    for route in DIRECT:
        path = route.path.replace("{phone_id}", "p1").replace("{user_id}", "u1")
        for method in route.methods - {"HEAD"}:
            found = table.find(method, path)
            assert found is not None and found[0] is route.endpoint, (method, path)
