from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from torreya.models.rewards import RedemptionStatus, RewardCategory


class Migration(migrations.Migration):
    dependencies = [("models", "0002_guards")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Reward",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "town",
                    fields.ForeignKeyField(
                        "models.Town",
                        source_field="town_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="rewards",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "village",
                    fields.ForeignKeyField(
                        "models.Village",
                        source_field="village_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="rewards",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("key", fields.CharField(null=True, max_length=64)),
                ("name", fields.CharField(max_length=80)),
                ("description", fields.CharField(default="", max_length=500)),
                (
                    "category",
                    fields.CharEnumField(
                        default=RewardCategory.GOODS,
                        description="GOODS: goods\nSERVICE: service\nHONOUR: honour",
                        enum_type=RewardCategory,
                        max_length=16,
                    ),
                ),
                ("cost", fields.IntField()),
                ("stock", fields.IntField(null=True)),
                ("per_user_limit", fields.IntField(null=True)),
                ("limit_period", fields.CharField(null=True, max_length=8)),
                (
                    "available_from",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "available_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("is_active", fields.BooleanField(default=True)),
                ("has_image", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "rewards",
                "app": "models",
                "unique_together": (("town", "key"),),
                "indexes": [Index(fields=["town_id", "village_id"])],
                "pk_attr": "id",
                "table_description": "An item of a catalog: a village's own, or town-wide when `village` is empty.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Redemption",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "reward",
                    fields.ForeignKeyField(
                        "models.Reward",
                        source_field="reward_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="redemptions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="redemptions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("town_id", fields.IntField()),
                ("village_id", fields.IntField()),
                ("cost", fields.IntField()),
                (
                    "status",
                    fields.CharEnumField(
                        description="PENDING: pending\nFULFILLED: fulfilled\nCANCELLED: cancelled\nEXPIRED: expired",
                        enum_type=RedemptionStatus,
                        max_length=16,
                    ),
                ),
                ("voucher_code", fields.CharField(unique=True, max_length=16)),
                ("idem_key", fields.CharField(unique=True, max_length=160)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("closed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "closed_by",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="closed_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="closed_redemptions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
            ],
            options={
                "table": "redemptions",
                "app": "models",
                "indexes": [
                    Index(fields=["user_id", "reward_id", "created_at"]),
                    Index(fields=["village_id", "status", "created_at"]),
                    Index(fields=["status", "expires_at"]),
                ],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RewardImage",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "reward",
                    fields.OneToOneField(
                        "models.Reward",
                        source_field="reward_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="image",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("content", fields.BinaryField()),
                ("content_type", fields.CharField(max_length=32)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "reward_images",
                "app": "models",
                "pk_attr": "id",
                "table_description": "The re-encoded picture of an item, kept in the database so every host serves it.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="StockMovement",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "reward",
                    fields.ForeignKeyField(
                        "models.Reward",
                        source_field="reward_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="movements",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("village_id", fields.IntField(null=True)),
                ("town_id", fields.IntField()),
                ("delta", fields.IntField()),
                ("reason", fields.CharField(max_length=16)),
                (
                    "redemption",
                    fields.ForeignKeyField(
                        "models.Redemption",
                        source_field="redemption_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="movements",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="stock_movements",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "stock_movements",
                "app": "models",
                "indexes": [Index(fields=["village_id", "id"]), Index(fields=["reward_id", "id"])],
                "pk_attr": "id",
                "table_description": "Every change of an item's stock, public per village (how a 积分超市 keeps trust).",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Town",
            name="voucher_days",
            field=fields.IntField(default=30, db_default=30),
        ),
    ]
