"""Anti-fraud pledges and residents' reports (隐患/线索上报)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class ReportStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    REJECTED = "rejected"


class ReportCategory(StrEnum):
    HAZARD = "hazard"
    FRAUD = "fraud"
    DISPUTE = "dispute"
    OTHER = "other"


class Pledge(Model):
    """A pledge campaign (反诈承诺): signed once per resident, rewarded once."""

    id = fields.IntField(primary_key=True)
    village = fields.ForeignKeyField(
        "models.Village", related_name="pledges", on_delete=fields.RESTRICT
    )
    town_id = fields.IntField()
    title = fields.CharField(max_length=120)
    text = fields.TextField()
    points = fields.IntField()
    confirmations = fields.JSONField(default=list)
    starts_at = fields.DatetimeField(null=True)
    ends_at = fields.DatetimeField(null=True)
    created_by = fields.ForeignKeyField(
        "models.User", related_name="created_pledges", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    village_id: int

    class Meta:
        table = "pledges"
        indexes = (Index(fields=("village_id", "id")), Index(fields=("town_id", "id")))


class PledgeSignature(Model):
    id = fields.BigIntField(primary_key=True)
    pledge = fields.ForeignKeyField(
        "models.Pledge", related_name="signatures", on_delete=fields.RESTRICT
    )
    user = fields.ForeignKeyField(
        "models.User", related_name="signatures", on_delete=fields.RESTRICT
    )
    village_id = fields.IntField()
    signed_name = fields.CharField(max_length=64)
    confirmations = fields.JSONField(default=list)
    points = fields.IntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    pledge_id: int
    user_id: int

    class Meta:
        table = "pledge_signatures"
        unique_together = (("pledge", "user"),)
        indexes = (Index(fields=("user_id",)),)


class Report(Model):
    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="reports", on_delete=fields.RESTRICT)
    village_id = fields.IntField()
    town_id = fields.IntField()
    category = fields.CharEnumField(ReportCategory, max_length=16)
    description = fields.CharField(max_length=1000)
    location = fields.CharField(max_length=200, default="")
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    status = fields.CharEnumField(ReportStatus, max_length=16)
    points = fields.IntField(null=True)
    has_photo = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The case (网格, SPEC §4.16): the department it was sent to, when it was escalated to
    # the town for being overdue (once), the reporter's rating of the handling, and the
    # follow-up visit (回访) that closes the loop.
    department_id = fields.IntField(null=True)
    escalated_at = fields.DatetimeField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    rating = fields.SmallIntField(null=True)
    rating_comment = fields.CharField(max_length=500, default="", db_default="")
    rated_at = fields.DatetimeField(null=True)
    visited_on = fields.DateField(null=True)
    visit_note = fields.CharField(max_length=500, default="", db_default="")

    user_id: int

    class Meta:
        table = "reports"
        indexes = (
            Index(fields=("village_id", "status", "id")),
            Index(fields=("user_id", "created_at")),
            Index(fields=("status", "created_at")),  # the overdue sweep
            Index(fields=("department_id", "status")),
        )


class ReportPhoto(Model):
    id = fields.IntField(primary_key=True)
    report = fields.OneToOneField("models.Report", related_name="photo", on_delete=fields.CASCADE)
    content = fields.BinaryField()
    content_type = fields.CharField(max_length=32)

    class Meta:
        table = "report_photos"


class Department(Model):
    """A town department that handles cases (派出所, 应急办, 综治中心)."""

    id = fields.IntField(primary_key=True)
    town = fields.ForeignKeyField("models.Town", related_name="departments",
                                  on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=40)
    created_at = fields.DatetimeField(auto_now_add=True)

    town_id: int

    class Meta:
        table = "departments"
        unique_together = (("town", "name"),)


class ReportFollower(Model):
    """A resident of the village who has the same problem (我也遇到了) and is told of each
    change of the case."""

    id = fields.BigIntField(primary_key=True)
    report = fields.ForeignKeyField("models.Report", related_name="followers",
                                    on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="followed_reports",
                                  on_delete=fields.RESTRICT)
    created_at = fields.DatetimeField(auto_now_add=True)

    report_id: int
    user_id: int

    class Meta:
        table = "report_followers"
        unique_together = (("report", "user"),)
        indexes = (Index(fields=("user_id",)),)


class ReportUpdate(Model):
    """One step of a report's timeline (报事—会商—处置—反馈), seen by the reporter."""

    id = fields.BigIntField(primary_key=True)
    report = fields.ForeignKeyField(
        "models.Report", related_name="updates", on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(ReportStatus, max_length=16)
    note = fields.CharField(max_length=500, default="")
    actor = fields.ForeignKeyField(
        "models.User", related_name="report_updates", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "report_updates"
        indexes = (Index(fields=("report_id", "id")),)
