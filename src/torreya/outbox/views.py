"""Console pages for a town's webhooks: add one (its secret shown once), rotate, enable or
disable, the delivery log with each attempt, and redelivery."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from torreya.api.schema import validate_form
from torreya.api.webhooks import WebhookIn
from torreya.errors import DomainError, NotFoundError
from torreya.i18n import gettext as _
from torreya.models import Role, Town, Webhook, WebhookAttempt
from torreya.outbox import webhooks as service
from torreya.outbox.service import EVENT_TYPES
from torreya.templating import render
from torreya.web import (
    confirm_big_action,
    flash,
    flash_error,
    pop_flashes,
    read_form,
    redirect,
    require_user,
)


async def _town(request: Request) -> tuple:
    user = await require_user(request, Role.TOWN_ADMIN)
    town = await Town.get_or_none(id=request.path_params["id"])
    if town is None or (user.role != Role.PLATFORM_ADMIN and user.town_id != town.id):
        raise NotFoundError()
    return user, town


async def webhooks_page(request: Request) -> Response:
    user, town = await _town(request)
    hooks = await Webhook.filter(town_id=town.id).order_by("id")
    return render(request, "outbox/webhooks.html", {
        "town": town, "hooks": hooks, "event_types": EVENT_TYPES,
        "flashes": pop_flashes(request)})


async def create(request: Request) -> Response:
    user, town = await _town(request)
    form = await read_form(request)
    try:
        body = validate_form(WebhookIn, form)  # the API's model: one declaration
        await confirm_big_action(request, user, form)
        hook = await service.create_webhook(request.app.state.settings, actor=user,
                                            town_id=town.id, url=body.url,
                                            events=list(body.events))
        flash(request, _("Endpoint added. Its secret, shown only now: %(secret)s",
                         secret=hook.secret))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/towns/{town.id}/webhooks")


async def _hook(request: Request) -> tuple:
    user = await require_user(request, Role.TOWN_ADMIN)
    return user, await service.webhook_for(user, request.path_params["id"])


async def webhook_page(request: Request) -> Response:
    user, hook = await _hook(request)
    deliveries = await service.deliveries_of(hook)
    attempts: dict[int, list] = {}
    for attempt in await WebhookAttempt.filter(
            delivery_id__in=[d.id for d in deliveries]).order_by("id"):
        attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return render(request, "outbox/webhook.html", {
        "hook": hook, "deliveries": deliveries, "attempts": attempts,
        "flashes": pop_flashes(request)})


async def rotate(request: Request) -> Response:
    user, hook = await _hook(request)
    form = await read_form(request)
    try:
        await confirm_big_action(request, user, form)
    except DomainError as error:
        flash_error(request, error)
        return redirect(f"/console/webhooks/{hook.id}")
    hook = await service.rotate_secret(actor=user, webhook=hook)
    flash(request, _("New secret, shown only now (the old one works for 24 more hours): "
                     "%(secret)s", secret=hook.secret))
    return redirect(f"/console/webhooks/{hook.id}")


async def toggle(request: Request) -> Response:
    user, hook = await _hook(request)
    await read_form(request)
    await service.set_active(actor=user, webhook=hook, active=not hook.is_active)
    return redirect(f"/console/webhooks/{hook.id}")


async def redeliver(request: Request) -> Response:
    user, hook = await _hook(request)
    await read_form(request)
    await service.redeliver(actor=user, webhook=hook,
                            delivery_id=request.path_params["delivery_id"])
    flash(request, _("It will be sent again in a moment."))
    return redirect(f"/console/webhooks/{hook.id}")


routes = [
    Route("/console/towns/{id:id}/webhooks", webhooks_page, name="outbox:webhooks"),
    Route("/console/towns/{id:id}/webhooks", create, methods=["POST"], name="outbox:create"),
    Route("/console/webhooks/{id:id}", webhook_page, name="outbox:webhook"),
    Route("/console/webhooks/{id:id}/rotate", rotate, methods=["POST"], name="outbox:rotate"),
    Route("/console/webhooks/{id:id}/toggle", toggle, methods=["POST"], name="outbox:toggle"),
    Route("/console/webhooks/{id:id}/deliveries/{delivery_id:bigid}/redeliver", redeliver,
          methods=["POST"], name="outbox:redeliver"),
]
