"""The API's router finds a path without parameters by the path itself: it must answer as
Starlette's ordered matching would, 405s included."""

from __future__ import annotations

from starlette.routing import Match

from torreya.api.registry import ApiRouter
from torreya.routes import API


def _ordered(routes, path: str, method: str):
    scope = {"type": "http", "path": path, "root_path": "", "method": method}
    partial = None
    for route in routes:
        match, _child = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def test_every_path_looked_up_is_the_route_ordered_matching_finds():
    router = ApiRouter(API)
    assert "/checkins" in router.exact and "/me" in router.exact
    for path, route in router.exact.items():
        for method in ("GET", "POST", "DELETE"):
            assert _ordered(router.routes, path, method) is route, (path, method)


async def test_a_looked_up_path_answers_405_with_its_methods(client):
    answer = await client.get("/api/v1/checkins")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json()["error"]["code"] == "method_not_allowed"
    assert (await client.get("/api/v1/nothing-here")).status_code == 404
