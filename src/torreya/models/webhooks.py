"""Outbound webhooks: a town's endpoints and each message's delivery to each of them."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Webhook(Model):
    """An endpoint of a town that receives the event types it names (Standard Webhooks)."""

    id = fields.IntField(primary_key=True)
    town = fields.ForeignKeyField("models.Town", related_name="webhooks",
                                  on_delete=fields.RESTRICT)
    url = fields.CharField(max_length=500)
    events = fields.JSONField(default=list)
    # "whsec_" + base64 of 32 random bytes. After a rotation the previous secret also signs
    # until `previous_until`, so receivers can switch without missing a message.
    secret = fields.CharField(max_length=80)
    previous_secret = fields.CharField(max_length=80, null=True)
    previous_until = fields.DatetimeField(null=True)
    is_active = fields.BooleanField(default=True)
    created_by = fields.ForeignKeyField("models.User", related_name="webhooks", null=True,
                                        on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField(auto_now_add=True)

    town_id: int

    class Meta:
        table = "webhooks"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(Model):
    """One outbox message to one endpoint: retried with backoff until it succeeds or fails."""

    id = fields.BigIntField(primary_key=True)
    webhook = fields.ForeignKeyField("models.Webhook", related_name="deliveries",
                                     on_delete=fields.CASCADE)
    message_id = fields.BigIntField()
    event_type = fields.CharField(max_length=48)
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    last_status_code = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    webhook_id: int

    class Meta:
        table = "webhook_deliveries"
        unique_together = (("webhook", "message_id"),)
        indexes = (Index(fields=("status", "next_attempt_at")),
                   Index(fields=("webhook_id", "id")))


class WebhookAttempt(Model):
    """What happened when we tried: the receiver's status and the start of its answer."""

    id = fields.BigIntField(primary_key=True)
    delivery = fields.ForeignKeyField("models.WebhookDelivery", related_name="attempt_log",
                                      on_delete=fields.CASCADE)
    status_code = fields.IntField(null=True)
    error = fields.CharField(max_length=200, default="")
    response = fields.CharField(max_length=500, default="")
    duration_ms = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    delivery_id: int

    class Meta:
        table = "webhook_attempts"
        indexes = (Index(fields=("delivery_id", "id")),)
