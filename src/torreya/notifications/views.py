"""The resident's inbox."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from torreya.notifications import service
from torreya.templating import render
from torreya.web import require_user


async def inbox_page(request: Request) -> Response:
    """Newest first; opening the inbox marks what it shows as read (the unread ones stand
    out this once)."""
    user = await require_user(request)
    items = await service.inbox(user)
    await service.mark_read(user)
    return render(request, "notifications/inbox.html", {"items": items})


routes = [Route("/inbox", inbox_page, name="inbox")]
