import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from torreya.models.community import ReportCategory, ReportStatus


class Migration(migrations.Migration):
    dependencies = [("models", "0004_reward_guards")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Pledge",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "village",
                    fields.ForeignKeyField(
                        "models.Village",
                        source_field="village_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="pledges",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("town_id", fields.IntField()),
                ("title", fields.CharField(max_length=120)),
                ("text", fields.TextField(unique=False)),
                ("points", fields.IntField()),
                (
                    "confirmations",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("starts_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("ends_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="created_pledges",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "pledges",
                "app": "models",
                "indexes": [Index(fields=["village_id", "id"]), Index(fields=["town_id", "id"])],
                "pk_attr": "id",
                "table_description": "A pledge campaign (反诈承诺): signed once per resident, rewarded once.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PledgeSignature",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "pledge",
                    fields.ForeignKeyField(
                        "models.Pledge",
                        source_field="pledge_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="signatures",
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
                        related_name="signatures",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("village_id", fields.IntField()),
                ("signed_name", fields.CharField(max_length=64)),
                (
                    "confirmations",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("points", fields.IntField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "pledge_signatures",
                "app": "models",
                "unique_together": (("pledge", "user"),),
                "indexes": [Index(fields=["user_id"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Report",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="reports",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("village_id", fields.IntField()),
                ("town_id", fields.IntField()),
                (
                    "category",
                    fields.CharEnumField(
                        description="HAZARD: hazard\nFRAUD: fraud\nDISPUTE: dispute\nOTHER: other",
                        enum_type=ReportCategory,
                        max_length=16,
                    ),
                ),
                ("description", fields.CharField(max_length=1000)),
                ("location", fields.CharField(default="", max_length=200)),
                ("latitude", fields.FloatField(null=True)),
                ("longitude", fields.FloatField(null=True)),
                (
                    "status",
                    fields.CharEnumField(
                        description="SUBMITTED: submitted\nACCEPTED: accepted\nIN_PROGRESS: in_progress\nRESOLVED: resolved\nREJECTED: rejected",
                        enum_type=ReportStatus,
                        max_length=16,
                    ),
                ),
                ("points", fields.IntField(null=True)),
                ("has_photo", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "reports",
                "app": "models",
                "indexes": [
                    Index(fields=["village_id", "status", "id"]),
                    Index(fields=["user_id", "created_at"]),
                ],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ReportPhoto",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "report",
                    fields.OneToOneField(
                        "models.Report",
                        source_field="report_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="photo",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("content", fields.BinaryField()),
                ("content_type", fields.CharField(max_length=32)),
            ],
            options={"table": "report_photos", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ReportUpdate",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "report",
                    fields.ForeignKeyField(
                        "models.Report",
                        source_field="report_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="updates",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        description="SUBMITTED: submitted\nACCEPTED: accepted\nIN_PROGRESS: in_progress\nRESOLVED: resolved\nREJECTED: rejected",
                        enum_type=ReportStatus,
                        max_length=16,
                    ),
                ),
                ("note", fields.CharField(default="", max_length=500)),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="report_updates",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "report_updates",
                "app": "models",
                "indexes": [Index(fields=["report_id", "id"])],
                "pk_attr": "id",
                "table_description": "One step of a report's timeline (报事—会商—处置—反馈), seen by the reporter.",
            },
            bases=["Model"],
        ),
    ]
