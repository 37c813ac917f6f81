"""API: a town's webhooks, their delivery log, redelivery (SPEC §5.1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from starlette.requests import Request

from torreya.accounts.permissions import require_town
from torreya.api.registry import Endpoints
from torreya.api.schema import Body, Bool, Out, Text, Time
from torreya.models import Role
from torreya.outbox import webhooks as service
from torreya.outbox.service import EVENT_TYPES
from torreya.web import confirm_big_action, require_user

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


class WebhookIn(Body):
    url: Text(500, description="https://…, a public address")
    events: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))


class WebhookOut(Out):
    id: int
    town_id: int
    url: str
    events: list[str]
    is_active: bool


class NewWebhookOut(WebhookOut):
    secret: str


class ActiveIn(Body):
    is_active: Bool


class DeliveryOut(Out):
    id: int
    message_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    next_attempt_at: Time | None


class Deliveries(Out):
    items: list[DeliveryOut]


class AttemptOut(Out):
    id: int
    status_code: int | None
    error: str | None
    response: str | None
    duration_ms: int | None
    created_at: Time


class Attempts(Out):
    items: list[AttemptOut]


def webhook_out(webhook, *, secret: bool = False) -> WebhookOut:
    fields = {"id": webhook.id, "town_id": webhook.town_id, "url": webhook.url,
              "events": list(webhook.events), "is_active": webhook.is_active}
    if secret:  # shown when created or rotated, never again
        return NewWebhookOut(**fields, secret=webhook.secret)
    return WebhookOut(**fields)


def delivery_out(delivery) -> DeliveryOut:
    return DeliveryOut(id=delivery.id, message_id=f"msg_{delivery.message_id}",
                       event_type=delivery.event_type, status=str(delivery.status),
                       attempts=delivery.attempts, last_status_code=delivery.last_status_code,
                       next_attempt_at=delivery.next_attempt_at)


@api.endpoint("POST", "/towns/{id:id}/webhooks", idempotent=True,
              body=WebhookIn, returns=NewWebhookOut,
              summary="Subscribe an endpoint to the town's events (the secret is shown once)",
              summary_zh="订阅镇的事件推送（密钥只显示这一次）",
              status=201, tag="webhooks",
              errors=["forbidden", "not_found", "invalid_request", "private_address",
                      "step_up_required"])
async def create_webhook(request: Request, body: WebhookIn) -> object:
    actor = await require_user(request)
    require_town(actor, request.path_params["id"], Role.TOWN_ADMIN)  # who, then step-up
    await confirm_big_action(request, actor)
    webhook = await service.create_webhook(request.app.state.settings, actor=actor,
                                           town_id=request.path_params["id"], url=body.url,
                                           events=list(body.events))
    return webhook_out(webhook, secret=True)


@api.endpoint("POST", "/webhooks/{id:id}/rotate-secret", idempotent=True,
              returns=NewWebhookOut,
              summary="A new secret; the old one keeps signing beside it for 24 hours",
              summary_zh="换新密钥；旧密钥并行签名 24 小时",
              tag="webhooks", errors=["forbidden", "not_found", "step_up_required"])
async def rotate_secret(request: Request, body: None) -> object:
    actor = await require_user(request)
    webhook = await service.webhook_for(actor, request.path_params["id"])
    await confirm_big_action(request, actor)
    webhook = await service.rotate_secret(actor=actor, webhook=webhook)
    return webhook_out(webhook, secret=True)


@api.endpoint("POST", "/webhooks/{id:id}/active", body=ActiveIn, returns=WebhookOut,
              summary="Enable or disable an endpoint", summary_zh="启用或停用推送地址",
              tag="webhooks", errors=["forbidden", "not_found", "invalid_request"])
async def set_active(request: Request, body: ActiveIn) -> object:
    actor = await require_user(request)
    webhook = await service.webhook_for(actor, request.path_params["id"])
    webhook = await service.set_active(actor=actor, webhook=webhook, active=body.is_active)
    return webhook_out(webhook)


@api.endpoint("GET", "/webhooks/{id:id}/deliveries", returns=Deliveries,
              summary="The delivery log, newest first", summary_zh="推送记录，最新的在前",
              tag="webhooks", errors=["forbidden", "not_found"])
async def deliveries(request: Request, body: None) -> object:
    actor = await require_user(request)
    webhook = await service.webhook_for(actor, request.path_params["id"])
    return Deliveries(items=[delivery_out(d) for d in await service.deliveries_of(webhook)])


@api.endpoint("GET", "/webhooks/{id:id}/deliveries/{delivery_id:bigid}/attempts",
              returns=Attempts, summary="Each attempt of a delivery with the receiver's answer",
              summary_zh="每次推送尝试和对方的回答", tag="webhooks", errors=["forbidden",
              "not_found"])
async def attempts(request: Request, body: None) -> object:
    actor = await require_user(request)
    webhook = await service.webhook_for(actor, request.path_params["id"])
    delivery = await service.delivery_of(webhook, request.path_params["delivery_id"])
    return Attempts(items=[AttemptOut(id=a.id, status_code=a.status_code, error=a.error,
                                      response=a.response, duration_ms=a.duration_ms,
                                      created_at=a.created_at)
                           for a in await service.attempts_of(delivery)])


@api.endpoint("POST", "/webhooks/{id:id}/deliveries/{delivery_id:bigid}/redeliver",
              returns=DeliveryOut, summary="Send a delivery again now", summary_zh="立即重新推送",
              status=202, tag="webhooks", errors=["forbidden", "not_found"])
async def redeliver(request: Request, body: None) -> object:
    actor = await require_user(request)
    webhook = await service.webhook_for(actor, request.path_params["id"])
    delivery = await service.redeliver(actor=actor, webhook=webhook,
                                       delivery_id=request.path_params["delivery_id"])
    return delivery_out(delivery)
