"""Volunteer groups (红枫义警), routes of checkpoint plates, and patrols."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class PatrolStatus(StrEnum):
    ACTIVE = "active"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class Group(Model):
    id = fields.IntField(primary_key=True)
    town = fields.ForeignKeyField("models.Town", related_name="groups", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=80)
    # The villages the group serves (ids of villages of its town).
    village_ids = fields.JSONField(default=list)
    # Anyone with this link may ask to join; a leader approves.
    invite_code = fields.CharField(max_length=16, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    town_id: int

    class Meta:
        table = "groups"
        indexes = (Index(fields=("town_id",)),)


class GroupMember(Model):
    id = fields.IntField(primary_key=True)
    group = fields.ForeignKeyField("models.Group", related_name="members", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField(
        "models.User", related_name="memberships", on_delete=fields.RESTRICT
    )
    role = fields.CharField(max_length=8)  # leader | member
    approved = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    group_id: int
    user_id: int

    class Meta:
        table = "group_members"
        unique_together = (("group", "user"),)
        indexes = (Index(fields=("user_id",)),)


class Route(Model):
    id = fields.IntField(primary_key=True)
    group = fields.ForeignKeyField("models.Group", related_name="routes", on_delete=fields.CASCADE)
    village = fields.ForeignKeyField(
        "models.Village", related_name="routes", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=80)
    min_checkpoints = fields.IntField()
    # The least minutes a walk from one plate to the next takes (plates apart in the
    # route's order × this): faster scans raise a patrol_pace signal.
    walk_minutes = fields.IntField(default=1, db_default=1)
    created_at = fields.DatetimeField(auto_now_add=True)

    group_id: int
    village_id: int

    class Meta:
        table = "routes"
        indexes = (Index(fields=("group_id",)), Index(fields=("village_id",)))


class Checkpoint(Model):
    id = fields.IntField(primary_key=True)
    route = fields.ForeignKeyField(
        "models.Route", related_name="checkpoints", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=80)
    position = fields.IntField()

    route_id: int

    class Meta:
        table = "checkpoints"
        indexes = (Index(fields=("route_id", "position")),)


class Patrol(Model):
    id = fields.IntField(primary_key=True)
    group = fields.ForeignKeyField(
        "models.Group", related_name="patrols", on_delete=fields.RESTRICT
    )
    route = fields.ForeignKeyField(
        "models.Route", related_name="patrols", on_delete=fields.RESTRICT
    )
    leader = fields.ForeignKeyField(
        "models.User", related_name="led_patrols", on_delete=fields.RESTRICT
    )
    village_id = fields.IntField()
    town_id = fields.IntField()
    status = fields.CharEnumField(PatrolStatus, max_length=16)
    join_code = fields.CharField(max_length=16)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    duration_minutes = fields.IntField(null=True)
    # Reviewer's flags: auto_submitted, out_of_order.
    flags = fields.JSONField(default=list)
    reviewed_by = fields.ForeignKeyField(
        "models.User", related_name="reviewed_patrols", null=True, on_delete=fields.RESTRICT
    )
    reviewed_at = fields.DatetimeField(null=True)
    reason = fields.CharField(max_length=500, default="")

    group_id: int
    route_id: int
    leader_id: int

    class Meta:
        table = "patrols"
        indexes = (
            Index(fields=("group_id", "id")),
            Index(fields=("village_id", "status")),
            Index(fields=("status", "started_at")),
        )


class PatrolParticipant(Model):
    id = fields.IntField(primary_key=True)
    patrol = fields.ForeignKeyField(
        "models.Patrol", related_name="participants", on_delete=fields.CASCADE
    )
    user = fields.ForeignKeyField(
        "models.User", related_name="patrols_joined", on_delete=fields.RESTRICT
    )
    joined_at = fields.DatetimeField(auto_now_add=True)

    patrol_id: int
    user_id: int

    class Meta:
        table = "patrol_participants"
        unique_together = (("patrol", "user"),)
        indexes = (Index(fields=("user_id",)),)


class PatrolScan(Model):
    id = fields.BigIntField(primary_key=True)
    patrol = fields.ForeignKeyField("models.Patrol", related_name="scans", on_delete=fields.CASCADE)
    checkpoint = fields.ForeignKeyField(
        "models.Checkpoint", related_name="scans", on_delete=fields.RESTRICT
    )
    user = fields.ForeignKeyField("models.User", related_name="scans", on_delete=fields.RESTRICT)
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    out_of_order = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    patrol_id: int
    checkpoint_id: int
    user_id: int

    class Meta:
        table = "patrol_scans"
        unique_together = (("patrol", "checkpoint", "user"),)
        indexes = (Index(fields=("checkpoint_id",)), Index(fields=("user_id",)))
