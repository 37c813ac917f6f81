"""API: a town's webhooks, their delivery log, redelivery (SPEC §5.1)."""

from __future__ import annotations

from starlette.requests import Request

from torreya.api.registry import endpoint, json
from torreya.errors import InvalidRequestError
from torreya.outbox import webhooks as service
from torreya.validation import Field
from torreya.web import confirm_big_action, require_user


def webhook_json(webhook, *, secret: bool = False) -> dict:
    data = {"id": webhook.id, "town_id": webhook.town_id, "url": webhook.url,
            "events": list(webhook.events), "is_active": webhook.is_active}
    if secret:  # shown when created or rotated, never again
        data["secret"] = webhook.secret
    return data


def delivery_json(delivery) -> dict:
    return {"id": delivery.id, "message_id": f"msg_{delivery.message_id}",
            "event_type": delivery.event_type, "status": str(delivery.status),
            "attempts": delivery.attempts, "last_status_code": delivery.last_status_code,
            "next_attempt_at": delivery.next_attempt_at.isoformat()
            if delivery.next_attempt_at else None}


@endpoint("POST", "/towns/{id:id}/webhooks", idempotent=True,
          returns="id:int town_id:int url events:list is_active:bool secret",
          summary="Subscribe an endpoint to the town's events (the secret is shown once)",
          status=201, tag="webhooks", body=[Field(name="url", max_length=500)],
          errors=["forbidden", "not_found", "invalid_request", "private_address",
                  "step_up_required"])
async def create_webhook(request: Request, body: dict) -> object:
    actor = await require_user(request)
    events = (await request.json()).get("events")
    if not isinstance(events, list):
        raise InvalidRequestError("Field %(name)s must be a list.", field="events", name="events")
    await confirm_big_action(request, actor)
    webhook = await service.create_webhook(request.app.state.settings, actor=actor,
                                           town_id=request.path_params["id"], url=body["url"],
                                           events=events)
    return json(webhook_json(webhook, secret=True), 201)


@endpoint("POST", "/webhooks/{id:id}/rotate-secret", idempotent=True,
          returns="id:int town_id:int url events:list is_active:bool secret",
          summary="A new secret; the old one keeps signing beside it for 24 hours",
          tag="webhooks", errors=["forbidden", "not_found", "step_up_required"])
async def rotate_secret(request: Request, body: dict) -> object:
    actor = await require_user(request)
    webhook = await service.webhook_for(actor, request.path_params["id"])
    await confirm_big_action(request, actor)
    webhook = await service.rotate_secret(actor=actor, webhook=webhook)
    return json(webhook_json(webhook, secret=True))


@endpoint("POST", "/webhooks/{id:id}/active", returns="id:int town_id:int url events:list "
          "is_active:bool", summary="Enable or disable an endpoint", tag="webhooks",
          body=[Field(name="is_active", type=bool)], errors=["forbidden", "not_found"])
async def set_active(request: Request, body: dict) -> object:
    actor = await require_user(request)
    webhook = await service.webhook_for(actor, request.path_params["id"])
    webhook = await service.set_active(actor=actor, webhook=webhook, active=body["is_active"])
    return json(webhook_json(webhook))


@endpoint("GET", "/webhooks/{id:id}/deliveries", returns="items:list",
          summary="The delivery log, newest first", tag="webhooks",
          errors=["forbidden", "not_found"])
async def deliveries(request: Request, body: dict) -> object:
    actor = await require_user(request)
    webhook = await service.webhook_for(actor, request.path_params["id"])
    return json({"items": [delivery_json(d) for d in await service.deliveries_of(webhook)]})


@endpoint("GET", "/webhooks/{id:id}/deliveries/{delivery_id:bigid}/attempts",
          returns="items:list", summary="Each attempt of a delivery with the receiver's answer",
          tag="webhooks", errors=["forbidden", "not_found"])
async def attempts(request: Request, body: dict) -> object:
    actor = await require_user(request)
    webhook = await service.webhook_for(actor, request.path_params["id"])
    delivery = await service.delivery_of(webhook, request.path_params["delivery_id"])
    return json({"items": [{"id": a.id, "status_code": a.status_code, "error": a.error,
                            "response": a.response, "duration_ms": a.duration_ms,
                            "created_at": a.created_at.isoformat()}
                           for a in await service.attempts_of(delivery)]})


@endpoint("POST", "/webhooks/{id:id}/deliveries/{delivery_id:bigid}/redeliver",
          returns="id:int message_id event_type status attempts:int last_status_code:int? "
          "next_attempt_at:time?", summary="Send a delivery again now", status=202,
          tag="webhooks", errors=["forbidden", "not_found"])
async def redeliver(request: Request, body: dict) -> object:
    actor = await require_user(request)
    webhook = await service.webhook_for(actor, request.path_params["id"])
    delivery = await service.redeliver(actor=actor, webhook=webhook,
                                       delivery_id=request.path_params["delivery_id"])
    return json(delivery_json(delivery), 202)
