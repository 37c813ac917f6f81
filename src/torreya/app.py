"""create_app(): routes, middleware, lifespan, the one error handler."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from tortoise.contrib.starlette import RegisterTortoise

from torreya.boards.queries import forget_boards
from torreya.checkins.events import forget_events
from torreya.db import after_failover, close_replica, configure_replica, is_unavailable
from torreya.errors import DomainError, NotFoundError, UnavailableError
from torreya.housekeeping import housekeeping
from torreya.integrity import devices
from torreya.ledger import batch as ledger_batch
from torreya.middleware import (
    BodyLimitMiddleware,
    BodyTooLarge,
    PageSessions,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    TrackedSend,
)
from torreya.ops import metrics, stalls
from torreya.ops.observe import ObserveMiddleware, route_template
from torreya.outbox import worker
from torreya.routes import build_routes
from torreya.settings import Settings
from torreya.templating import render
from torreya.trust import sealing
from torreya.web import LoginRequired, login_redirect

log = logging.getLogger("torreya")


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path.endswith(".json")


def error_response(request: Request, error: DomainError,
                   headers: Mapping[str, str] | None = None) -> Response:
    message = error.text()
    if wants_json(request):
        body: dict = {"code": error.code, "message": message}
        if error.field:
            body["field"] = error.field
        if getattr(error, "details", None):
            body["details"] = error.details
        return JSONResponse({"error": body}, status_code=error.status, headers=headers)
    response = render(request, "errors/error.html", {"message": message, "code": error.code},
                      status=error.status)
    response.headers.update(headers or {})
    return response


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return error_response(request, exc)


async def login_required(request: Request, exc: Exception) -> Response:
    return login_redirect(request)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(request, NotFoundError())
    if exc.status_code == 405:
        return error_response(request, DomainError("This method is not allowed here.",
                                                   code="method_not_allowed", status=405),
                              headers=exc.headers)
    return error_response(request, DomainError(str(exc.detail), code="http_error",
                                               status=exc.status_code), headers=exc.headers)


class FaultBarrier:
    """The innermost middleware: every exception a handler did not turn into an answer
    becomes one here, and never reaches the server. (An exception that escapes to uvicorn
    after Starlette's own 500 has been sent makes it drop the keep-alive connection, so
    clients saw resets instead of the JSON.)

    The database unreachable or out of time → 503 `unavailable` with Retry-After: the
    transaction was rolled back, nothing changed. Anything else → 500 `server_error`,
    logged with its traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except BodyTooLarge:
            raise  # answered 413 by BodyLimitMiddleware, further out
        except ClientDisconnect:
            return  # the client left mid-request: nobody to answer, nothing to log
        except Exception as exc:
            if tracked.started:
                raise
            request = Request(scope)
            headers = None
            if is_unavailable(exc):
                metrics.DB_UNAVAILABLE.inc()
                await after_failover(exc)
                log.warning("database unavailable on %s: %r", route_template(scope), exc)
                error: DomainError = UnavailableError()
                headers = {"Retry-After": str(UnavailableError.retry_after)}
            else:
                log.exception("unhandled error on %s", route_template(scope), exc_info=exc)
                error = DomainError("Something went wrong on our side. Please try again.",
                                    code="server_error", status=500)
            try:
                response = error_response(request, error, headers)
            except Exception:  # the error page itself failed: answer in plain JSON
                response = JSONResponse({"error": {"code": error.code, "message": error.code}},
                                        status_code=error.status, headers=headers)
            await response(scope, receive, send)


def settle_heap() -> None:
    """Python's cycle collector, set for a long-running server once start-up is done: what
    start-up built (modules, models, routes, templates: most of the heap) is frozen out of
    its scans, and the youngest generation is collected every 20,000 allocations instead of
    700. Before, a full collection walked the whole start-up heap, about 60 ms every few
    seconds under load, with every request waiting (docs/benchmarks.md)."""
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    sealing.configure(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        forget_events()
        forget_boards()
        ledger_batch.forget()
        devices.forget()
        configure_replica(settings)
        async with RegisterTortoise(app, config=settings.tortoise_config()):
            settle_heap()
            stall_watch = stalls.watch(settings.STALL_MS)
            stop = asyncio.Event()
            # residents' check-in devices, noted in this process, written every few seconds
            tasks = [asyncio.create_task(devices.run(stop))]
            if settings.RUN_WORKER:  # else `torreya worker` runs both (README)
                tasks.append(asyncio.create_task(housekeeping(settings)))
                tasks.append(asyncio.create_task(worker.run(settings, stop=stop)))
            try:
                yield
            finally:
                if stall_watch is not None:
                    stall_watch.stop()
                await close_replica()
                stop.set()
                with contextlib.suppress(Exception):  # the last devices noted, written
                    await asyncio.wait_for(tasks[0], 5)
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    middleware = [
        Middleware(ObserveMiddleware, log_requests=settings.LOG_FORMAT == "json"),
        Middleware(RequestContextMiddleware),
        Middleware(SecurityHeadersMiddleware, hsts=settings.secure_cookies),
        Middleware(BodyLimitMiddleware, max_bytes=settings.MAX_BODY_BYTES,
                   max_upload_bytes=settings.MAX_UPLOAD_BYTES),
        Middleware(PageSessions, secret_key=settings.SECRET_KEY, session_cookie="torreya",
                   max_age=max(settings.RESIDENT_SESSION_SECONDS,
                               settings.STAFF_SESSION_SECONDS), same_site="lax",
                   https_only=settings.secure_cookies),
        Middleware(FaultBarrier),
    ]
    app = Starlette(
        debug=False,
        routes=build_routes(),
        middleware=middleware,
        exception_handlers={
            DomainError: domain_error,
            LoginRequired: login_required,
            HTTPException: http_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
