"""The API's one table: each endpoint declares its method, path, body and errors once.

The same declaration builds the Starlette route, validates the body and writes the
OpenAPI document, so the document cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from torreya.validation import Field, read_json

Handler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    body: Sequence[Field] = ()
    auth: bool = True
    status: int = 200
    errors: Sequence[str] = ()
    tag: str = ""
    query: Sequence[Field] = field(default_factory=tuple)
    # The response's fields for the OpenAPI document: "id:int name village_id:int? items:list"
    # (type string unless named; "?" allows null).
    returns: str = ""


ENDPOINTS: list[Endpoint] = []


def endpoint(method: str, path: str, *, summary: str, body: Sequence[Field] = (),
             auth: bool = True, status: int = 200, errors: Sequence[str] = (), tag: str = "",
             query: Sequence[Field] = (), returns: str = "") -> Callable[[Handler], Handler]:
    """Register an API handler `async def h(request, body) -> Response` under /api/v1."""

    def register(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            data = await read_json(request, body) if body else {}
            return await handler(request, data)

        run.__name__ = handler.__name__
        ENDPOINTS.append(Endpoint(method, path, run, summary, tuple(body), auth, status,
                                  tuple(errors), tag, tuple(query), returns))
        return handler

    return register


def json(data: object, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def api_routes() -> list[Route]:
    from torreya.api import (  # noqa: F401  (importing them registers their endpoints)
        accounts,
        boards,
        checkins,
        community,
        openapi,
        patrols,
        rewards,
    )

    return [Route(e.path, e.handler, methods=[e.method]) for e in ENDPOINTS]
