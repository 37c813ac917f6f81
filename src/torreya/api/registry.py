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

from torreya import idempotency
from torreya.validation import Field, parse_json, read_json
from torreya.web import require_user

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
    # Honours an Idempotency-Key header (torreya.idempotency): a retry replays the answer.
    idempotent: bool = False


ENDPOINTS: list[Endpoint] = []


def endpoint(method: str, path: str, *, summary: str, body: Sequence[Field] = (),
             auth: bool = True, status: int = 200, errors: Sequence[str] = (), tag: str = "",
             query: Sequence[Field] = (), returns: str = "",
             idempotent: bool = False) -> Callable[[Handler], Handler]:
    """Register an API handler `async def h(request, body) -> Response` under /api/v1.

    The caller is authenticated before the body is read (401 before 422). With
    `idempotent`, a request carrying an Idempotency-Key runs once per key.
    """
    scope = f"{method} {path}"

    def register(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            user = await require_user(request) if auth else None
            data = await read_json(request, body) if body else {}
            raw_key = request.headers.get("idempotency-key")
            if not idempotent or raw_key is None or user is None:
                return await handler(request, data)
            return await _run_once(request, user.id, scope, raw_key, data,
                                   lambda: handler(request, data))

        run.__name__ = handler.__name__
        ENDPOINTS.append(Endpoint(method, path, run, summary, tuple(body), auth, status,
                                  tuple(errors), tag, tuple(query), returns, idempotent))
        return handler

    return register


async def _run_once(request: Request, user_id: int, scope: str, raw_key: str, data: dict,
                    call: Callable[[], Awaitable[Response]]) -> Response:
    async def respond() -> tuple[int, str]:
        response = await call()
        return response.status_code, bytes(response.body).decode()

    # The whole body as sent (lists read by handlers themselves included), not only the
    # declared fields: another `village_ids` is another request.
    raw = await request.body()
    sent = parse_json(raw) if raw else data
    outcome = await idempotency.once(
        user_id=user_id, scope=scope, key=idempotency.clean_key(raw_key),
        fingerprint=idempotency.fingerprint(request.method, request.url.path, sent),
        run=respond)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return Response(outcome.body, status_code=outcome.status, headers=headers,
                    media_type="application/json")


def json(data: object, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def api_routes() -> list[Route]:
    from torreya.api import (  # noqa: F401  (importing them registers their endpoints)
        accounts,
        boards,
        checkins,
        community,
        notifications,
        openapi,
        patrols,
        rewards,
        trust,
        webhooks,
    )

    return [Route(e.path, e.handler, methods=[e.method]) for e in ENDPOINTS]
