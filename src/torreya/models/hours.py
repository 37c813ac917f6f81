"""Certificates of volunteer hours (志愿服务时长证明, SPEC §4.15)."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class ServiceCertificate(Model):
    """A signed statement of a resident's service minutes over a period. The signed text
    (`payload`) is kept as signed; revoking marks it, never deletes it."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=24, unique=True)
    user = fields.ForeignKeyField("models.User", related_name="certificates",
                                  on_delete=fields.RESTRICT)
    town_id = fields.IntField()
    village_id = fields.IntField(null=True)
    period_from = fields.DateField()
    period_to = fields.DateField()
    minutes = fields.IntField()
    items = fields.IntField()
    key_id = fields.IntField()
    payload = fields.TextField()
    signature = fields.CharField(max_length=128)
    issued_at = fields.DatetimeField()
    issued_by = fields.ForeignKeyField("models.User", related_name="issued_certificates",
                                       null=True, on_delete=fields.SET_NULL)
    revoked_at = fields.DatetimeField(null=True)
    revoked_by_id = fields.IntField(null=True)
    revoke_reason = fields.CharField(max_length=200, default="")

    user_id: int
    issued_by_id: int | None

    class Meta:
        table = "service_certificates"
        indexes = (Index(fields=("user_id",)), Index(fields=("village_id", "issued_at")))
