"""Commands and reads on a town's webhooks: create (the secret shown once), rotate the secret
with an overlap, enable or disable, the delivery log, redeliver."""

from __future__ import annotations

from datetime import timedelta

from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_town
from torreya.db import now
from torreya.errors import InvalidRequestError, NotFoundError
from torreya.models import Role, User
from torreya.models.webhooks import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from torreya.outbox import signing
from torreya.outbox.addresses import check_public, check_url
from torreya.outbox.service import EVENT_TYPES
from torreya.settings import Settings

# After a rotation the old secret keeps signing this long, beside the new one.
ROTATION_OVERLAP = timedelta(hours=24)


def _check_events(events: list) -> list[str]:
    chosen = sorted({e for e in events if isinstance(e, str)})
    if not chosen or len(chosen) != len(events) or any(e not in EVENT_TYPES for e in chosen):
        raise InvalidRequestError("Field %(name)s must list event types from: %(choices)s.",
                                  field="events", name="events",
                                  choices=", ".join(EVENT_TYPES))
    return chosen


async def create_webhook(settings: Settings, *, actor: User, town_id: int, url: str,
                         events: list) -> Webhook:
    """A new endpoint for the town. Raises forbidden/not_found (reach), invalid_request,
    private_address (the URL resolves into a private network and the platform did not
    allow it)."""
    require_town(actor, town_id, Role.TOWN_ADMIN)
    url = check_url(url)
    chosen = _check_events(events)
    await check_public(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
    async with in_transaction() as connection:
        webhook = await Webhook.create(town_id=town_id, url=url, events=chosen,
                                       secret=signing.new_secret(), created_by=actor,
                                       using_db=connection)
        await audit.record(actor, "outbox:webhook:create", connection=connection,
                           subject=f"webhook:{webhook.id}", town_id=town_id,
                           data={"url": url, "events": chosen})
    return webhook


async def webhook_for(actor: User, webhook_id: int) -> Webhook:
    """A webhook of a town the actor administers; others' are not found."""
    webhook = await Webhook.get_or_none(id=webhook_id)
    if webhook is None:
        raise NotFoundError()
    if actor.role != Role.PLATFORM_ADMIN and actor.town_id != webhook.town_id:
        raise NotFoundError()
    require_town(actor, webhook.town_id, Role.TOWN_ADMIN)
    return webhook


async def rotate_secret(*, actor: User, webhook: Webhook) -> Webhook:
    """A new secret; the old one keeps signing beside it for ROTATION_OVERLAP."""
    async with in_transaction() as connection:
        webhook.previous_secret, webhook.previous_until = webhook.secret, now() + ROTATION_OVERLAP
        webhook.secret = signing.new_secret()
        await webhook.save(using_db=connection, update_fields=[
            "secret", "previous_secret", "previous_until"])
        await audit.record(actor, "outbox:webhook:rotate", connection=connection,
                           subject=f"webhook:{webhook.id}", town_id=webhook.town_id)
    return webhook


async def set_active(*, actor: User, webhook: Webhook, active: bool) -> Webhook:
    async with in_transaction() as connection:
        await Webhook.filter(id=webhook.id).using_db(connection).update(is_active=active)
        await audit.record(actor, "outbox:webhook:" + ("enable" if active else "disable"),
                           connection=connection, subject=f"webhook:{webhook.id}",
                           town_id=webhook.town_id)
    webhook.is_active = active
    return webhook


def secrets_in_force(webhook: Webhook) -> list[str]:
    previous = webhook.previous_secret
    if previous and webhook.previous_until and webhook.previous_until > now():
        return [webhook.secret, previous]
    return [webhook.secret]


async def deliveries_of(webhook: Webhook, *, limit: int = 50) -> list[WebhookDelivery]:
    return await WebhookDelivery.filter(webhook_id=webhook.id).order_by("-id").limit(limit)


async def attempts_of(delivery: WebhookDelivery) -> list[WebhookAttempt]:
    return await WebhookAttempt.filter(delivery_id=delivery.id).order_by("id")


async def delivery_of(webhook: Webhook, delivery_id: int) -> WebhookDelivery:
    """A delivery of this webhook; another's is not found."""
    delivery = await WebhookDelivery.get_or_none(id=delivery_id, webhook_id=webhook.id)
    if delivery is None:
        raise NotFoundError()
    return delivery


async def redeliver(*, actor: User, webhook: Webhook, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now, whatever its state (its attempts start over)."""
    delivery = await delivery_of(webhook, delivery_id)
    async with in_transaction() as connection:
        await WebhookDelivery.filter(id=delivery.id).using_db(connection).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now())
        await audit.record(actor, "outbox:delivery:redeliver", connection=connection,
                           subject=f"webhook:{webhook.id}", town_id=webhook.town_id,
                           data={"delivery": delivery.id})
    await delivery.refresh_from_db()
    return delivery
