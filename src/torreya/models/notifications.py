"""What residents are told: an inbox of notifications and the text messages sent for some."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Notification(Model):
    """One thing a resident is told, in the inbox. Rendered in the reader's language from
    `kind` and `params` (notifications/texts.py); `dedup_key` makes telling twice impossible."""

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="notifications",
                                  on_delete=fields.CASCADE)
    town_id = fields.IntField(null=True)
    kind = fields.CharField(max_length=32)
    params = fields.JSONField(default=dict)
    link = fields.CharField(max_length=200, default="")
    dedup_key = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)
    read_at = fields.DatetimeField(null=True)

    user_id: int

    class Meta:
        table = "notifications"
        unique_together = (("user", "dedup_key"),)
        indexes = (Index(fields=("user_id", "id")), Index(fields=("user_id", "read_at")))


class SmsStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the resident turned text messages off before it went


class SmsMessage(Model):
    """A text message waiting for the gateway: sent by the worker, outside any transaction,
    never in the quiet hours (21:00–08:00 Asia/Shanghai)."""

    id = fields.BigIntField(primary_key=True)
    notification = fields.OneToOneField("models.Notification", related_name="sms",
                                        null=True, on_delete=fields.CASCADE)
    user_id = fields.IntField()
    phone = fields.CharField(max_length=20)
    text = fields.CharField(max_length=200)  # a sign-in code is blanked once it is sent
    # "notice" (quiet hours apply) or "code" (a sign-in code: goes at once, day or night)
    purpose = fields.CharField(max_length=8, default="notice", db_default="notice")
    status = fields.CharEnumField(SmsStatus, max_length=16, default=SmsStatus.PENDING)
    send_after = fields.DatetimeField()
    attempts = fields.IntField(default=0)
    last_error = fields.CharField(max_length=200, default="")
    sent_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "sms_messages"
        indexes = (Index(fields=("status", "send_after")),)
