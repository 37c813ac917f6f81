"""The API's router finds a path without parameters by the path itself: it must answer as
Starlette's ordered matching would, 405s included."""

from __future__ import annotations

import re

import httpx
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Match, Mount

from torreya.api.registry import ApiRouter, Endpoints, api_routes
from torreya.api.schema import Out
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


async def test_an_answer_is_its_endpoints_model_or_nothing():
    """Answers are built from the `returns` models (issue 27): a handler answering with
    another model fails loudly rather than sending what the document does not promise."""
    class Promised(Out):
        n: int

    class Other(BaseModel):
        n: int

    api = Endpoints()

    @api.endpoint("GET", "/right", returns=Promised, auth=False, status=201, summary="")
    async def right(request: Request, body: None) -> object:
        return Promised(n=1)

    @api.endpoint("GET", "/wrong", returns=Promised, auth=False, summary="")
    async def wrong(request: Request, body: None) -> object:
        return Other(n=1)

    app = Starlette(routes=[Mount("/api", routes=api_routes(api))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app,
                                                               raise_app_exceptions=False),
                                 base_url="http://t") as client:
        answer = await client.get("/api/right")
        assert answer.status_code == 201 and answer.json() == {"n": 1}
        assert answer.headers["content-type"] == "application/json"
        assert (await client.get("/api/wrong")).status_code == 500


def test_a_path_with_parameters_finds_the_route_ordered_matching_finds():
    """Only the routes that begin as the path does are tried (/villages/… among the
    /villages/… routes): for every route's path, with its parameters filled, each method,
    and paths no route has, the choice is ordered matching's own, 405s and misses
    included."""
    router = ApiRouter(API)
    paths = [re.sub(r"{[^}]+}", fill, route.path) for route in router.routes
             for fill in ("7", "V8X2")]
    paths += ["/villages/7", "/villages/7/nothing", "/villages", "/nothing/7", "/", "",
              "/villages/x/leaderboard", "/me/../villages/7/leaderboard"]
    assert any("{" in route.path for route in router.routes)
    tried = 0
    for path in paths:
        assert "{" not in path, path
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            scope = {"type": "http", "path": path, "root_path": "", "method": method}
            assert router.route_for(scope)[0] is _ordered(router.routes, path, method), \
                (path, method)
            tried += 1
    assert tried > 400
