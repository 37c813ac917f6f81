"""API: the caller's notifications (the inbox of the home page)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from torreya.api.registry import endpoint, json
from torreya.notifications import service
from torreya.web import require_user


@endpoint("GET", "/me/notifications", returns="items:list unread:int",
          summary="My notifications, newest first, in my language", tag="accounts")
async def my_notifications(request: Request, body: dict) -> object:
    user = await require_user(request)
    items = await service.inbox(user)
    return json({"items": [{"id": n.id, "kind": n.kind, "text": n.text, "link": n.link,
                            "created_at": n.created_at.isoformat(), "read": n.read}
                           for n in items],
                 "unread": await service.unread_count(user)})


@endpoint("POST", "/me/notifications/read", status=204, tag="accounts",
          summary="Mark all my notifications read")
async def read_notifications(request: Request, body: dict) -> object:
    await service.mark_read(await require_user(request))
    return Response(status_code=204)
