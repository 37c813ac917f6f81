"""Integrity signals (SPEC §4.13): patterns that look like gaming, raised with their evidence
to the village's review queue, and what detection reads besides the ledger."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class SignalKind(StrEnum):
    ONE_DEVICE_MANY_RESIDENTS = "one_device_many_residents"
    ADJUSTMENTS_CONCENTRATED = "adjustments_concentrated"
    DUPLICATE_PHOTO = "duplicate_photo"
    PATROL_PACE = "patrol_pace"
    EARNING_OUTLIER = "earning_outlier"


class SignalStatus(StrEnum):
    OPEN = "open"
    DISMISSED = "dismissed"
    CONFIRMED = "confirmed"


class Signal(Model):
    """One incident: raised once, updated with new evidence while it is open, resolved by a
    person (dismissed or confirmed, with a note). Nothing else acts on it."""

    id = fields.BigIntField(primary_key=True)
    town_id = fields.IntField()
    village_id = fields.IntField()
    kind = fields.CharEnumField(SignalKind, max_length=32)
    # What makes two findings the same incident ("event 7, device …"); one open signal per
    # (kind, incident): a partial unique index (migration 0029).
    incident = fields.CharField(max_length=160)
    user_ids = fields.JSONField(default=list)
    evidence = fields.JSONField(default=dict)
    status = fields.CharEnumField(SignalStatus, max_length=16, default=SignalStatus.OPEN)
    note = fields.CharField(max_length=500, default="")
    resolved_by = fields.ForeignKeyField("models.User", related_name="signals_resolved",
                                         null=True, on_delete=fields.SET_NULL)
    resolved_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    resolved_by_id: int | None

    class Meta:
        table = "signals"
        indexes = (Index(fields=("village_id", "status", "id")),)


class DeviceSighting(Model):
    """A resident's own check-in and the device it came from: written after the check-in,
    in batches (integrity/devices.py), never in its transaction."""

    id = fields.BigIntField(primary_key=True)
    checkin_id = fields.BigIntField()
    event_id = fields.IntField()
    user_id = fields.IntField()
    town_id = fields.IntField()
    village_id = fields.IntField()
    device = fields.CharField(max_length=64)  # "cookie:…" or "agent:…" (a digest)
    address = fields.CharField(max_length=64, default="")
    agent = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "device_sightings"
        indexes = (Index(fields=("event_id", "device", "created_at")),
                   Index(fields=("created_at",)))


class PhotoPrint(Model):
    """A report photo's perceptual hash (a 64-bit difference hash of the stored image), so a
    photo filed again, re-encoded or resized, is found."""

    report_id = fields.BigIntField(primary_key=True, generated=False)
    town_id = fields.IntField()
    user_id = fields.IntField()
    print = fields.CharField(max_length=16)
    created_at = fields.DatetimeField()

    class Meta:
        table = "photo_prints"
        indexes = (Index(fields=("town_id",)),)
