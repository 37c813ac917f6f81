"""One-time codes sent by SMS to sign residents in without a password."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class SmsCode(Model):
    """A 6-digit code for a phone: stored as an HMAC (never the digits), valid 5 minutes,
    single use, burnt after 5 wrong tries. Rows are also what the send limits count."""

    id = fields.BigIntField(primary_key=True)
    phone = fields.CharField(max_length=20)
    code_hash = fields.CharField(max_length=64)
    ip = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    wrong_tries = fields.IntField(default=0)
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sms_codes"
        indexes = (Index(fields=("phone", "created_at")), Index(fields=("ip", "created_at")))
