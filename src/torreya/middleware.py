"""Pure ASGI middleware: security headers, body size limit, language and client address."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from torreya import audit, i18n

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
     b"media-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
     b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(self), geolocation=(self), microphone=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeadersMiddleware:
    """The headers every answer carries; and `Cache-Control: no-store` on every answer for
    a logged-in user (a bearer token, or a page whose login was read): a shared computer's
    browser or a proxy keeps no copy of a resident's balance or a village's roster. Public
    pages and static files keep their own caching."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = list(SECURITY_HEADERS)
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if _for_a_login(scope):
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _for_a_login(scope: Scope) -> bool:
    """Did this request come with a login: a bearer token, or a user read by the page?"""
    state = scope.get("state") or {}
    if state.get("user") is not None or state.get("claims") is not None:
        return True
    return any(k == b"authorization" for k, _ in scope.get("headers", ()))


class PageSessions:
    """Starlette's signed-cookie sessions, for pages only. The API authenticates by bearer
    token and never reads a session, so its requests skip the cookie's parsing and the
    wrapped `send` (the check-in is the hottest request there is)."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.with_sessions = SessionMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
        else:
            await self.with_sessions(scope, receive, send)


class BodyTooLarge(Exception):
    pass


class TrackedSend:
    """`send`, remembering whether the response has started (after that, an error can no
    longer be answered with a response of its own)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


class BodyLimitMiddleware:
    """Refuse bodies over the limit with 413 before the app reads them, and stop a stream
    that lies about its length."""

    DRAIN_BYTES = 64_000_000
    DRAIN_SECONDS = 10.0

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        is_upload = headers.get("content-type", "").startswith("multipart/form-data")
        limit = self.max_upload_bytes if is_upload else self.max_bytes
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._drain(receive)
            await self._refuse(scope, send)
            return
        received = 0
        complete = False

        async def limited_receive() -> Message:
            nonlocal received, complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    raise BodyTooLarge()
            return message

        tracked = TrackedSend(send)
        try:
            await self.app(scope, limited_receive, tracked)
        except BodyTooLarge:
            if not tracked.started:
                if not complete:
                    await self._drain(receive)
                await self._refuse(scope, send)

    async def _drain(self, receive: Receive) -> None:
        """Read (and drop) what the client is still sending, within bounds, before answering.

        Closing while the client is mid-upload makes the kernel reset the connection, and
        the client then sees a reset instead of our 413. Past DRAIN_BYTES or DRAIN_SECONDS
        we answer anyway.
        """
        drained = 0
        try:
            async with asyncio.timeout(self.DRAIN_SECONDS):
                while drained < self.DRAIN_BYTES:
                    message = await receive()
                    if message["type"] != "http.request":
                        return
                    drained += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            return

    async def _refuse(self, scope: Scope, send: Send) -> None:
        message = i18n.gettext("The request is too large.")
        body = json.dumps({"error": {"code": "payload_too_large", "message": message}},
                          ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """The language of the request (cookie, then Accept-Language) and the client address,
    as context variables for templates, error messages and the audit log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookie = None
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "lang":
                cookie = value
        language = i18n.negotiate(cookie, headers.get("accept-language"))
        client = scope.get("client")
        lang_token = i18n.current_language.set(language)
        ip_token = audit.request_ip.set(client[0] if client else "")
        helper_token = audit.acting_helper.set(None)  # set by the login, if a helper's
        try:
            await self.app(scope, receive, send)
        finally:
            i18n.current_language.reset(lang_token)
            audit.request_ip.reset(ip_token)
            audit.acting_helper.reset(helper_token)
