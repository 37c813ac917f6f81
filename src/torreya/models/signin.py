"""One-time codes sent by SMS to sign residents in without a password."""

from __future__ import annotations

from enum import StrEnum

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


class UserIdentity(Model):
    """A provider's account (OpenID Connect `iss` + `sub`) linked to a resident."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="identities",
                                  on_delete=fields.CASCADE)
    issuer = fields.CharField(max_length=200)
    subject = fields.CharField(max_length=255)
    label = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    user_id: int

    class Meta:
        table = "user_identities"
        unique_together = (("issuer", "subject"),)
        indexes = (Index(fields=("user_id",)),)


class RegistrationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Registration(Model):
    """Someone whose proven phone number matches nobody asks to join a village (居民认证).
    the village's staff approve (a resident account is made) or reject with a reason."""

    id = fields.IntField(primary_key=True)
    phone = fields.CharField(max_length=20)
    name = fields.CharField(max_length=64)
    village = fields.ForeignKeyField("models.Village", related_name="registrations",
                                     on_delete=fields.RESTRICT)
    id_last4 = fields.CharField(max_length=4, null=True)
    status = fields.CharEnumField(RegistrationStatus, max_length=16,
                                  default=RegistrationStatus.PENDING)
    reason = fields.CharField(max_length=200, default="")
    user = fields.ForeignKeyField("models.User", related_name="registration", null=True,
                                  on_delete=fields.SET_NULL)
    decided_by = fields.ForeignKeyField("models.User", related_name="decided_registrations",
                                        null=True, on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField(auto_now_add=True)
    decided_at = fields.DatetimeField(null=True)

    village_id: int

    class Meta:
        table = "registrations"
        indexes = (Index(fields=("village_id", "status")), Index(fields=("phone",)))


class FamilyHelper(Model):
    """亲属代办: a phone that may act for a resident (an elder's account run by a child).

    Set by the village's staff or invited by the resident. Whoever proves the phone with an
    SMS code picks whom they act for. Every change made that way says so in the ledger memo
    and the audit log, and the resident sees it.
    """

    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField("models.User", related_name="helpers",
                                    on_delete=fields.CASCADE)
    phone = fields.CharField(max_length=20)
    name = fields.CharField(max_length=32)  # how the resident calls them: 儿子 小明
    added_by = fields.ForeignKeyField("models.User", related_name="helpers_added", null=True,
                                      on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField(auto_now_add=True)

    member_id: int
    added_by_id: int | None

    class Meta:
        table = "family_helpers"
        unique_together = (("member_id", "phone"),)
        indexes = (Index(fields=("phone",)),)
