"""The installable staff scanner that works without signal (issue 15), its service worker,
and the page a phone shows when a request could not reach us."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from torreya.checkins import offline
from torreya.checkins.views import _event_for
from torreya.errors import DomainError, UnauthenticatedError
from torreya.models import Role
from torreya.security import csrf_ok
from torreya.settings import resource_dir
from torreya.templating import render
from torreya.validation import read_json
from torreya.web import CsrfError, LoginRequired, require_user


async def scanner(request: Request) -> Response:
    """Open once with signal: the page, the town's keys, the revocation list and the event
    stay on the phone (service worker, IndexedDB), and scanning works without signal."""
    _user, event, village = await _event_for(request, Role.STAFF)
    return render(request, "checkins/scan_offline.html", {"event": event, "village": village})


async def _staff(request: Request):
    try:
        return await require_user(request, Role.STAFF)
    except LoginRequired:
        raise UnauthenticatedError() from None


def _error(error: DomainError) -> JSONResponse:
    return JSONResponse({"error": {"code": error.code, "message": error.text(),
                                   "field": error.field}}, status_code=error.status)


async def kit(request: Request) -> Response:
    try:
        user = await _staff(request)
        data = await offline.kit(request.app.state.settings, staff=user,
                                 event_id=request.path_params["id"])
    except DomainError as error:
        return _error(error)
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


async def sync(request: Request) -> Response:
    """The page's sync: the same service as the API's, with the session and a CSRF header."""
    try:
        user = await _staff(request)
        if not csrf_ok(request, request.headers.get("x-csrf-token")):
            raise CsrfError()
        scans = offline.read_batch(await read_json(request))
        results = await offline.sync(request.app.state.settings, staff=user,
                                     event_id=request.path_params["id"], scans=scans)
    except DomainError as error:
        return _error(error)
    return JSONResponse({"results": results})


async def service_worker(request: Request) -> Response:
    """Served from the root so that it may look after every page (scope "/")."""
    return FileResponse(resource_dir("static") / "js" / "sw.js", media_type="text/javascript",
                        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})


async def no_signal(request: Request) -> Response:
    """What the service worker shows when a page could not be reached (kept in its cache:
    rendered for nobody in particular)."""
    request.state.user = None
    return render(request, "offline.html")


routes = [
    Route("/events/{id:id}/scan/offline", scanner, name="offline_scanner"),
    Route("/events/{id:id}/offline-kit.json", kit, name="offline_kit"),
    Route("/events/{id:id}/offline-scans", sync, methods=["POST"], name="offline_sync"),
    Route("/sw.js", service_worker, name="service_worker"),
    Route("/offline", no_signal, name="offline"),
]
