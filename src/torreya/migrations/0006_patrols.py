import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from torreya.models.patrols import PatrolStatus


class Migration(migrations.Migration):
    dependencies = [("models", "0005_community")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Group",
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
                        related_name="groups",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=80)),
                (
                    "village_ids",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("invite_code", fields.CharField(unique=True, max_length=16)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "groups",
                "app": "models",
                "indexes": [Index(fields=["town_id"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="GroupMember",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "group",
                    fields.ForeignKeyField(
                        "models.Group",
                        source_field="group_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="members",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="memberships",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("role", fields.CharField(max_length=8)),
                ("approved", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "group_members",
                "app": "models",
                "unique_together": (("group", "user"),),
                "indexes": [Index(fields=["user_id"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Route",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "group",
                    fields.ForeignKeyField(
                        "models.Group",
                        source_field="group_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="routes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "village",
                    fields.ForeignKeyField(
                        "models.Village",
                        source_field="village_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="routes",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=80)),
                ("min_checkpoints", fields.IntField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "routes",
                "app": "models",
                "indexes": [Index(fields=["group_id"]), Index(fields=["village_id"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Checkpoint",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "route",
                    fields.ForeignKeyField(
                        "models.Route",
                        source_field="route_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="checkpoints",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=80)),
                ("position", fields.IntField()),
            ],
            options={
                "table": "checkpoints",
                "app": "models",
                "indexes": [Index(fields=["route_id", "position"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Patrol",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "group",
                    fields.ForeignKeyField(
                        "models.Group",
                        source_field="group_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="patrols",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "route",
                    fields.ForeignKeyField(
                        "models.Route",
                        source_field="route_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="patrols",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "leader",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="leader_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="led_patrols",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("village_id", fields.IntField()),
                ("town_id", fields.IntField()),
                (
                    "status",
                    fields.CharEnumField(
                        description="ACTIVE: active\nSUBMITTED: submitted\nAPPROVED: approved\nREJECTED: rejected",
                        enum_type=PatrolStatus,
                        max_length=16,
                    ),
                ),
                ("join_code", fields.CharField(max_length=16)),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("duration_minutes", fields.IntField(null=True)),
                (
                    "flags",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "reviewed_by",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="reviewed_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="reviewed_patrols",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "reviewed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("reason", fields.CharField(default="", max_length=500)),
            ],
            options={
                "table": "patrols",
                "app": "models",
                "indexes": [
                    Index(fields=["group_id", "id"]),
                    Index(fields=["village_id", "status"]),
                    Index(fields=["status", "started_at"]),
                ],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PatrolParticipant",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "patrol",
                    fields.ForeignKeyField(
                        "models.Patrol",
                        source_field="patrol_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="participants",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="patrols_joined",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("joined_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "patrol_participants",
                "app": "models",
                "unique_together": (("patrol", "user"),),
                "indexes": [Index(fields=["user_id"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PatrolScan",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "patrol",
                    fields.ForeignKeyField(
                        "models.Patrol",
                        source_field="patrol_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="scans",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "checkpoint",
                    fields.ForeignKeyField(
                        "models.Checkpoint",
                        source_field="checkpoint_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="scans",
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
                        related_name="scans",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("latitude", fields.FloatField(null=True)),
                ("longitude", fields.FloatField(null=True)),
                ("out_of_order", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "patrol_scans",
                "app": "models",
                "unique_together": (("patrol", "checkpoint", "user"),),
                "indexes": [Index(fields=["checkpoint_id"]), Index(fields=["user_id"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
