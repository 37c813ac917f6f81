"""Events and proof of presence."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class QrMode(StrEnum):
    STATIC = "static"
    ROTATING = "rotating"


class Event(Model):
    id = fields.IntField(primary_key=True)
    village = fields.ForeignKeyField(
        "models.Village", related_name="events", on_delete=fields.RESTRICT
    )
    town = fields.ForeignKeyField("models.Town", related_name="events", on_delete=fields.RESTRICT)
    title = fields.CharField(max_length=120)
    kind = fields.CharField(max_length=24)
    points = fields.IntField()
    place = fields.CharField(max_length=120, default="")
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    qr_mode = fields.CharEnumField(QrMode, max_length=16)
    # The committee's choice: remind the village's residents the day before (inbox and SMS).
    remind_day_before = fields.BooleanField(default=False, db_default=False)
    reminded_at = fields.DatetimeField(null=True)
    # Leaving is recorded too (issue 34): a second scan is the check-out, and the minutes
    # between count as service hours. Points per hour are paid at check-out (0: none).
    checkout = fields.BooleanField(default=False, db_default=False)
    points_per_hour = fields.IntField(default=0, db_default=0)
    created_by = fields.ForeignKeyField(
        "models.User", related_name="created_events", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    village_id: int
    town_id: int

    class Meta:
        table = "events"
        indexes = (Index(fields=("village_id", "starts_at")),)


class Checkin(Model):
    id = fields.BigIntField(primary_key=True)
    event = fields.ForeignKeyField(
        "models.Event", related_name="checkins", on_delete=fields.RESTRICT
    )
    user = fields.ForeignKeyField("models.User", related_name="checkins", on_delete=fields.RESTRICT)
    method = fields.CharField(max_length=16)
    staff = fields.ForeignKeyField(
        "models.User", related_name="staff_checkins", null=True, on_delete=fields.RESTRICT
    )
    points = fields.IntField()
    created_at = fields.DatetimeField(auto_now_add=True)
    # An event with check-out: the latest scan after the check-in, the minutes between
    # (within the event's window), the points per hour paid for them so far, and how it
    # was recorded (a scan, a card, offline, or staff correcting a forgotten one).
    checked_out_at = fields.DatetimeField(null=True)
    minutes = fields.IntField(null=True)
    hour_points = fields.IntField(default=0, db_default=0)
    checkout_method = fields.CharField(max_length=16, default="", db_default="")
    checkout_staff_id = fields.IntField(null=True)

    event_id: int
    user_id: int

    class Meta:
        table = "checkins"
        unique_together = (("event", "user"),)


class CheckinRefusal(Model):
    """A refused scan, kept for the committee: who, when, why."""

    id = fields.BigIntField(primary_key=True)
    event = fields.ForeignKeyField(
        "models.Event", related_name="refusals", null=True, on_delete=fields.RESTRICT
    )
    user = fields.ForeignKeyField(
        "models.User", related_name="refusals", null=True, on_delete=fields.RESTRICT
    )
    village_id = fields.IntField(null=True)
    method = fields.CharField(max_length=16)
    reason = fields.CharField(max_length=32)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "checkin_refusals"
        indexes = (Index(fields=("event_id", "created_at")),)


class OfflineScan(Model):
    """A scan a staff phone made without signal and synced later (issue 15): its nonce
    claims it, so a queue synced twice (two tabs, a retry) is applied once; the outcome is
    kept to answer the repeat the same way."""

    id = fields.BigIntField(primary_key=True)
    nonce = fields.CharField(max_length=64, unique=True)
    staff = fields.ForeignKeyField("models.User", related_name="offline_scans",
                                   on_delete=fields.RESTRICT)
    event = fields.ForeignKeyField("models.Event", related_name="offline_scans", null=True,
                                   on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=8)  # card | voucher
    subject_id = fields.BigIntField(null=True)  # the resident, or the redemption
    outcome = fields.CharField(max_length=16, default="")  # credited | fulfilled | refused
    reason = fields.CharField(max_length=32, default="")  # the error code of a refusal
    detail = fields.JSONField(default=dict)  # its message (msgid) and params, to say again
    points = fields.IntField(null=True)
    name = fields.CharField(max_length=64, default="")  # masked
    scanned_at = fields.DatetimeField()
    synced_at = fields.DatetimeField()

    staff_id: int
    event_id: int | None

    class Meta:
        table = "offline_scans"
        indexes = (Index(fields=("event_id", "synced_at")),)
