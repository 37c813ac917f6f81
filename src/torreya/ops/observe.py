"""What every request leaves behind for the operator: an `X-Request-ID` on the answer (the
client's own when well formed), the request counted and timed by its route's template
(never the raw path: a poster's token is in its path), and with TORREYA_LOG_FORMAT=json
one log line of it. A contextvar carries the id into every log line the request writes."""

from __future__ import annotations

import contextvars
import itertools
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from torreya.ops import metrics

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("torreya_request_id",
                                                                 default="")
access = logging.getLogger("torreya.access")
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._-]{1,128}")
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")
_TEMPLATES: dict[tuple[str, str], str] = {}


def route_template(scope: Scope) -> str:
    """`/api/v1/events/{id}/checkins`: the route that answered, as written; `unmatched`
    for a path no route serves."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return "unmatched"
    prefix = scope.get("root_path", "") if scope.get("api") is not None else ""
    key = (prefix, path)
    if key not in _TEMPLATES:
        _TEMPLATES[key] = _CONVERTOR.sub(r"{\1}", prefix + path)
    return _TEMPLATES[key]


# A new id: this process's random prefix and a counter (unique, cheap; not a secret).
_PREFIX = uuid.uuid4().hex[:16]
_NEXT = itertools.count(1)


def _new_id() -> str:
    return f"{_PREFIX}{next(_NEXT):016x}"


def _given_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode() if _WELL_FORMED.fullmatch(value) else _new_id()
    return _new_id()


# The labelled series, found once: prometheus_client's labels() checks and locks each time.
_SERIES: dict[tuple[str, str, int], tuple] = {}


def _series(method: str, route: str, status: int) -> tuple:
    key = (method, route, status)
    found = _SERIES.get(key)
    if found is None:
        found = _SERIES[key] = (metrics.HTTP_REQUESTS.labels(method, route, str(status)),
                                metrics.HTTP_DURATION.labels(method, route))
    return found


def _user_id(scope: Scope) -> int | None:
    state = scope.get("state") or {}
    user = state.get("user")
    if user is not None:
        return user.id
    claims = state.get("claims")
    return getattr(claims, "user_id", None)


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, *, log_requests: bool = False) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        rid = _given_id(scope)
        header = (b"x-request-id", rid.encode())
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            took = time.perf_counter() - began
            route, method = route_template(scope), scope["method"]
            count, duration = _series(method, route, status[0])
            count.inc()
            duration.observe(took)
            if self.log_requests:
                access.info("%s %s %s", method, route, status[0], extra={
                    "request_id": rid, "method": method, "route": route,
                    "status": status[0], "duration_ms": round(took * 1000, 1),
                    "user_id": _user_id(scope)})
            request_id.reset(token)
