"""API: the caller's notifications (the inbox of the home page)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from torreya.api.registry import Endpoints
from torreya.api.schema import Out, Time
from torreya.notifications import service
from torreya.web import require_user

api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


class NotificationOut(Out):
    id: int
    kind: str
    text: str
    link: str | None
    created_at: Time
    read: bool


class Inbox(Out):
    items: list[NotificationOut]
    unread: int


@api.endpoint("GET", "/me/notifications", returns=Inbox,
              summary="My notifications, newest first, in my language",
              summary_zh="我的消息，最新的在前", tag="accounts")
async def my_notifications(request: Request, body: None) -> object:
    user = await require_user(request)
    items = await service.inbox(user)
    return Inbox(items=[NotificationOut(id=n.id, kind=n.kind, text=n.text, link=n.link,
                                        created_at=n.created_at, read=n.read)
                        for n in items],
                 unread=await service.unread_count(user))


@api.endpoint("POST", "/me/notifications/read", status=204, tag="accounts",
              summary="Mark all my notifications read", summary_zh="全部标为已读")
async def read_notifications(request: Request, body: None) -> object:
    await service.mark_read(await require_user(request))
    return Response(status_code=204)
