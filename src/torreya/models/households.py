"""Households (户) and their yearly star ratings (星级户, SPEC §4.14)."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Household(Model):
    """A village's household: a head (户主) and members. Its points are what its members
    earned while members; nothing of the ledger is the household's own."""

    id = fields.IntField(primary_key=True)
    town_id = fields.IntField()
    village = fields.ForeignKeyField("models.Village", related_name="households",
                                     on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=40)
    head = fields.ForeignKeyField("models.User", related_name="headed_households", null=True,
                                  on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField(auto_now_add=True)

    village_id: int
    head_id: int | None

    class Meta:
        table = "households"
        indexes = (Index(fields=("village_id",)),)


class HouseholdMember(Model):
    """A resident's time in a household: `left_at` is null while they belong. One current
    household per resident: a partial unique index (migration 0030)."""

    id = fields.IntField(primary_key=True)
    household = fields.ForeignKeyField("models.Household", related_name="memberships",
                                       on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="household_memberships",
                                  on_delete=fields.RESTRICT)
    joined_at = fields.DatetimeField()
    left_at = fields.DatetimeField(null=True)

    household_id: int
    user_id: int

    class Meta:
        table = "household_members"
        # joined_at, left_at: a period's board looks for who joined or left within it
        indexes = (Index(fields=("household_id",)), Index(fields=("user_id",)),
                   Index(fields=("joined_at",)), Index(fields=("left_at",)))


class HouseholdRating(Model):
    """A yearly star rating (1–5, 星级平安户) by the village admin, one per household and year."""

    id = fields.IntField(primary_key=True)
    household = fields.ForeignKeyField("models.Household", related_name="ratings",
                                       on_delete=fields.CASCADE)
    year = fields.SmallIntField()
    stars = fields.SmallIntField()
    note = fields.CharField(max_length=500, default="")
    rated_by = fields.ForeignKeyField("models.User", related_name="household_ratings",
                                      null=True, on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField(auto_now_add=True)

    household_id: int

    class Meta:
        table = "household_ratings"
        unique_together = (("household", "year"),)


class PassbookPrint(Model):
    """积分存折: a page printed for a resident, up to which ledger entry. The next print
    continues after it, as a bank passbook does."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="passbook_prints",
                                  on_delete=fields.CASCADE)
    up_to_entry_id = fields.BigIntField()
    entries = fields.IntField()
    printed_by = fields.ForeignKeyField("models.User", related_name="passbooks_printed",
                                        null=True, on_delete=fields.SET_NULL)
    printed_at = fields.DatetimeField(auto_now_add=True)

    user_id: int

    class Meta:
        table = "passbook_prints"
        indexes = (Index(fields=("user_id", "up_to_entry_id")),)
