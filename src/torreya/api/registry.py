"""How an API endpoint is declared: its method, path, body and errors, once.

Each API module lists its endpoints (`api = Endpoints()`, then `@api.endpoint(...)`), and
torreya/routes.py gathers the modules' lists into the one table (as polar's api.py
includes its routers). The same declaration builds the Starlette route, validates the
body, serialises the answer (the handler returns its `returns` model, filled) and writes
the OpenAPI document, so the document cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

from torreya import idempotency
from torreya.api.schema import body_required, validate_model
from torreya.errors import DomainError
from torreya.validation import parse_json, read_json
from torreya.web import bearer_claims, require_user

# A handler answers with its endpoint's `returns` model, filled (the declared status, the
# model's JSON), or with a Response of its own (a redirect, a file, a 204).
Handler = Callable[..., Awaitable[BaseModel | Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    # 中文 for the partners who read it (the document's description).
    summary_zh: str = ""
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    # The response body's model (None: no body, as a 204).
    returns: type[BaseModel] | None = None
    # True: the caller's user is read before the handler runs. "token": only the bearer
    # token is checked (signature, expiry) and its claims are `request.state.claims`; the
    # handler reads the user itself (the express check-in checks it in its one statement).
    auth: bool | Literal["token"] = True
    status: int = 200
    errors: Sequence[str] = ()
    tag: str = ""
    # Honours an Idempotency-Key header (torreya.idempotency): a retry replays the answer.
    idempotent: bool = False
    # OpenAPI links from the answer to the next step:
    # {name: (operationId, {"parameters" or "requestBody": {target: "$response.body#/…"}})}.
    links: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    description: str = ""


class Endpoints(list[Endpoint]):
    """One API module's endpoints, in the order it declares them."""

    def endpoint(self, method: str, path: str, *, summary: str, summary_zh: str = "",
                 body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
                 returns: type[BaseModel] | None = None,
                 auth: bool | Literal["token"] = True, status: int = 200,
                 errors: Sequence[str] = (), tag: str = "", idempotent: bool = False,
                 links: dict[str, tuple[str, dict[str, str]]] | None = None,
                 description: str = "") -> Callable[[Handler], Handler]:
        """Declare an API handler `async def h(request, body)` under /api/v1; `body` is the
        validated `body` model (None without one), the query's model is
        `request.state.query`. It answers with its `returns` model, filled (sent with
        `status`), or a Response of its own.

        The caller is authenticated before the body is read (401 before 422; with
        `auth="token"`, a body refused is first checked against the whole login). With
        `idempotent`, a request carrying an Idempotency-Key runs once per key.
        """
        return _declare(self, method, path, summary=summary, summary_zh=summary_zh,
                        body=body, query=query, returns=returns, auth=auth, status=status,
                        errors=errors, tag=tag, idempotent=idempotent, links=links,
                        description=description)


def _declare(into: list[Endpoint], method: str, path: str, *, summary: str, summary_zh: str,
             body: type[BaseModel] | None, query: type[BaseModel] | None,
             returns: type[BaseModel] | None, auth: bool | Literal["token"], status: int,
             errors: Sequence[str], tag: str, idempotent: bool,
             links: dict[str, tuple[str, dict[str, str]]] | None,
             description: str) -> Callable[[Handler], Handler]:
    scope = f"{method} {path}"
    # A body whose fields are all optional may be left out (once, not per request).
    optional = body is not None and not body_required(body)

    def register(handler: Handler) -> Handler:
        async def answer(request: Request, data: Any) -> Response:
            result = await handler(request, data)
            if isinstance(result, Response):
                return result
            if returns is None or not isinstance(result, returns):
                raise TypeError(f"{scope} answers with {type(result).__name__}, "
                                f"not its {returns and returns.__name__}")
            return Response(result.__pydantic_serializer__.to_json(result),
                            status_code=status, media_type="application/json")

        async def run(request: Request) -> Response:
            user = None
            if auth == "token":
                request.state.claims = bearer_claims(request)
            elif auth:
                user = await require_user(request)
            try:
                if query is not None:
                    request.state.query = validate_model(query, dict(request.query_params))
                data: Any = None
                if body is not None:
                    raw = await read_json(request, optional=optional)
                    data = validate_model(body, raw)
            except DomainError:
                if auth == "token":  # an ended login is told so before a bad body
                    await require_user(request)
                raise
            raw_key = request.headers.get("idempotency-key")
            if not idempotent or raw_key is None or user is None:
                return await answer(request, data)
            return await _run_once(request, user.id, scope, raw_key, data,
                                   lambda: answer(request, data))

        run.__name__ = handler.__name__
        into.append(Endpoint(method, path, run, summary, summary_zh, body, query, returns,
                             auth, status, tuple(errors), tag, idempotent, dict(links or {}),
                             description))
        return handler

    return register


async def _run_once(request: Request, user_id: int, scope: str, raw_key: str, data: Any,
                    call: Callable[[], Awaitable[Response]]) -> Response:
    async def respond() -> tuple[int, str]:
        response = await call()
        return response.status_code, bytes(response.body).decode()

    # The whole body as sent, fields the model ignores included: another body is another
    # request.
    raw = await request.body()
    sent = parse_json(raw) if raw else {}
    outcome = await idempotency.once(
        user_id=user_id, scope=scope, key=idempotency.clean_key(raw_key),
        fingerprint=idempotency.fingerprint(request.method, request.url.path, sent),
        run=respond)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return Response(outcome.body, status_code=outcome.status, headers=headers,
                    media_type="application/json")


def json(data: object, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def api_routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    # One route per path, whatever its methods, so a 405's Allow header names them all.
    by_path: dict[str, dict[str, Handler]] = {}
    for e in endpoints:
        by_path.setdefault(e.path, {})[e.method] = e.handler
    return [Route(path, _dispatch(handlers), methods=list(handlers))
            for path, handlers in by_path.items()]


class ApiRouter(Router):
    """The API's router: a request for a path without parameters (/checkins, /me,
    /auth/token …) finds its route by the path itself; the rest are tried in order, as
    Starlette's router does, but only the routes that begin as the path does (/villages/…
    among the /villages/… routes). Matching each route's pattern in turn was a tenth of a
    check-in's time, and a fifth of a board's. The answer is the same: a path is looked up
    only when no route with parameters could also match it, and a route whose first part
    is a parameter is tried for every path, in its place."""

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        self.endpoints = tuple(endpoints)  # what the OpenAPI document describes
        routes = api_routes(self.endpoints)
        super().__init__(routes=routes)
        patterned = [r for r in routes if r.param_convertors]
        self.exact = {r.path: r for r in routes if not r.param_convertors
                      and not any(p.path_regex.match(r.path) for p in patterned)}
        heads = {_head(r.path) for r in routes} - {None}
        self.by_head = {head: tuple(r for r in routes if _head(r.path) in (head, None))
                        for head in heads}
        self.any_head = tuple(r for r in routes if _head(r.path) is None)

    def route_for(self, scope: Scope) -> tuple[BaseRoute | None, dict]:
        """The route ordered matching would hand an HTTP request to (FULL, else the first
        PARTIAL: another method, answered 405) and its scope; None when no route would."""
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        route = self.exact.get(path)
        match, child_scope = route.matches(scope) if route else (Match.NONE, {})
        if match is not Match.NONE:
            return route, child_scope
        partial: tuple[BaseRoute | None, dict] = (None, {})
        for candidate in self.by_head.get(_head(path), self.any_head):
            match, child_scope = candidate.matches(scope)
            if match is Match.FULL:
                return candidate, child_scope
            if match is Match.PARTIAL and partial[0] is None:
                partial = (candidate, child_scope)
        return partial

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["api"] = self
        route = None
        if scope["type"] == "http":
            route, child_scope = self.route_for(scope)
        if route is None:  # no route: Starlette's own answer (a redirect, a 404)
            await super().app(scope, receive, send)
            return
        # FULL, or PARTIAL for another method (its handle answers 405)
        scope["router"] = self
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)


def _head(path: str) -> str | None:
    """A path's first part (/villages/3/leaderboard → villages); None for a route's that is
    a parameter, which any path's may match."""
    head = path.split("/", 2)[1] if path.startswith("/") else path
    return None if "{" in head else head


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    if len(handlers) == 1:
        return next(iter(handlers.values()))

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    dispatch.__name__ = "_".join(h.__name__ for h in handlers.values())
    return dispatch
