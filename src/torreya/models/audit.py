"""Audit trail and login throttling."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class AuditEvent(Model):
    """Who did what to which subject and when, denials included."""

    id = fields.BigIntField(primary_key=True)
    actor = fields.ForeignKeyField(
        "models.User", related_name="audit_events", null=True, on_delete=fields.SET_NULL
    )
    tag = fields.CharField(max_length=64)
    subject = fields.CharField(max_length=64, default="")
    town_id = fields.IntField(null=True)
    village_id = fields.IntField(null=True)
    data = fields.JSONField(default=dict)
    ip = fields.CharField(max_length=64, default="")
    # The ledger entry this action made, for entries by admins or proxies: `torreya audit`
    # proves each such entry has its record.
    entry_id = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    actor_id: int | None

    class Meta:
        table = "audit_events"
        indexes = (Index(fields=("town_id", "id")), Index(fields=("village_id", "id")),
                   Index(fields=("entry_id",)))


class LoginFailure(Model):
    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=160)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "login_failures"
        indexes = (Index(fields=("key", "created_at")),)
