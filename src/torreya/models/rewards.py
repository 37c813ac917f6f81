"""Village catalogs, redemptions (vouchers) and stock movements."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class RewardCategory(StrEnum):
    GOODS = "goods"
    SERVICE = "service"
    HONOUR = "honour"


class RedemptionStatus(StrEnum):
    PENDING = "pending"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Reward(Model):
    """An item of a catalog: a village's own, or town-wide when `village` is empty."""

    id = fields.IntField(primary_key=True)
    town = fields.ForeignKeyField("models.Town", related_name="rewards", on_delete=fields.RESTRICT)
    village = fields.ForeignKeyField(
        "models.Village", related_name="rewards", null=True, on_delete=fields.RESTRICT
    )
    # The scheme pack's name for the item, so a re-import updates instead of duplicating.
    key = fields.CharField(max_length=64, null=True)
    name = fields.CharField(max_length=80)
    description = fields.CharField(max_length=500, default="")
    category = fields.CharEnumField(RewardCategory, max_length=16, default=RewardCategory.GOODS)
    cost = fields.IntField()
    stock = fields.IntField(null=True)  # None: unlimited
    per_user_limit = fields.IntField(null=True)  # None: no limit
    limit_period = fields.CharField(max_length=8, null=True)  # None: ever; day/week/month/year
    available_from = fields.DatetimeField(null=True)
    available_until = fields.DatetimeField(null=True)
    is_active = fields.BooleanField(default=True)
    has_image = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    town_id: int
    village_id: int | None

    class Meta:
        table = "rewards"
        unique_together = (("town", "key"),)
        indexes = (Index(fields=("town_id", "village_id")),)


class RewardImage(Model):
    """The re-encoded picture of an item, kept in the database so every host serves it."""

    id = fields.IntField(primary_key=True)
    reward = fields.OneToOneField("models.Reward", related_name="image", on_delete=fields.CASCADE)
    content = fields.BinaryField()
    content_type = fields.CharField(max_length=32)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "reward_images"


class Redemption(Model):
    id = fields.BigIntField(primary_key=True)
    reward = fields.ForeignKeyField(
        "models.Reward", related_name="redemptions", on_delete=fields.RESTRICT
    )
    user = fields.ForeignKeyField(
        "models.User", related_name="redemptions", on_delete=fields.RESTRICT
    )
    town_id = fields.IntField()
    village_id = fields.IntField()
    cost = fields.IntField()
    status = fields.CharEnumField(RedemptionStatus, max_length=16)
    voucher_code = fields.CharField(max_length=16, unique=True)
    # Claims the action: the client's Idempotency-Key, scoped to the user.
    idem_key = fields.CharField(max_length=160, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    closed_at = fields.DatetimeField(null=True)
    closed_by = fields.ForeignKeyField(
        "models.User", related_name="closed_redemptions", null=True, on_delete=fields.RESTRICT
    )

    reward_id: int
    user_id: int
    closed_by_id: int | None

    class Meta:
        table = "redemptions"
        indexes = (
            Index(fields=("user_id", "reward_id", "created_at")),
            Index(fields=("village_id", "status", "created_at")),
            Index(fields=("status", "expires_at")),
        )


class StockMovement(Model):
    """Every change of an item's stock, public per village (how a 积分超市 keeps trust)."""

    id = fields.BigIntField(primary_key=True)
    reward = fields.ForeignKeyField(
        "models.Reward", related_name="movements", on_delete=fields.RESTRICT
    )
    village_id = fields.IntField(null=True)
    town_id = fields.IntField()
    delta = fields.IntField()
    reason = fields.CharField(max_length=16)  # redeem, cancel, expire, restock, initial
    redemption = fields.ForeignKeyField(
        "models.Redemption", related_name="movements", null=True, on_delete=fields.RESTRICT
    )
    actor = fields.ForeignKeyField(
        "models.User", related_name="stock_movements", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "stock_movements"
        indexes = (Index(fields=("village_id", "id")), Index(fields=("reward_id", "id")))
