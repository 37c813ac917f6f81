import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from torreya.models.checkins import QrMode
from torreya.models.tenancy import Role


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="LoginFailure",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("key", fields.CharField(max_length=160)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "login_failures",
                "app": "models",
                "indexes": [Index(fields=["key", "created_at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Town",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(max_length=100)),
                ("code", fields.CharField(unique=True, max_length=32)),
                ("currency_name", fields.CharField(max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "towns",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A tenant: owns one points currency and its earning rules.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="EarningRule",
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
                        related_name="rules",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("kind", fields.CharField(max_length=16)),
                ("points", fields.IntField()),
                ("cap_day", fields.IntField(null=True)),
                ("cap_month", fields.IntField(null=True)),
                ("cap_year", fields.IntField(null=True)),
                ("needs_review", fields.BooleanField(default=False)),
            ],
            options={
                "table": "earning_rules",
                "app": "models",
                "unique_together": (("town", "kind"),),
                "pk_attr": "id",
                "table_description": "Per town and activity kind: points, caps, and whether a credit waits for review.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Village",
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
                        related_name="villages",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
                ("code", fields.CharField(max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "villages",
                "app": "models",
                "unique_together": (("town", "code"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="User",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("username", fields.CharField(unique=True, max_length=64)),
                ("password_hash", fields.CharField(null=True, max_length=255)),
                ("display_name", fields.CharField(max_length=64)),
                ("phone", fields.CharField(null=True, max_length=32)),
                (
                    "role",
                    fields.CharEnumField(
                        description="RESIDENT: resident\nSTAFF: staff\nVILLAGE_ADMIN: village_admin\nTOWN_ADMIN: town_admin\nPLATFORM_ADMIN: platform_admin",
                        enum_type=Role,
                        max_length=16,
                    ),
                ),
                (
                    "town",
                    fields.ForeignKeyField(
                        "models.Town",
                        source_field="town_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="users",
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
                        related_name="users",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("balance", fields.IntField(default=0, db_default=0)),
                ("lifetime_points", fields.IntField(default=0, db_default=0)),
                ("card_serial", fields.IntField(default=1, db_default=1)),
                ("is_active", fields.BooleanField(default=True, db_default=True)),
                ("hide_from_boards", fields.BooleanField(default=False, db_default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "users",
                "app": "models",
                "indexes": [
                    Index(fields=["village_id", "role"]),
                    Index(fields=["town_id", "role"]),
                ],
                "pk_attr": "id",
                "table_description": "A person with a login. Residents also hold the points account (balance).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AuditEvent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
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
                        related_name="audit_events",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("tag", fields.CharField(max_length=64)),
                ("subject", fields.CharField(default="", max_length=64)),
                ("town_id", fields.IntField(null=True)),
                ("village_id", fields.IntField(null=True)),
                (
                    "data",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("ip", fields.CharField(default="", max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "audit_events",
                "app": "models",
                "indexes": [Index(fields=["town_id", "id"]), Index(fields=["village_id", "id"])],
                "pk_attr": "id",
                "table_description": "Who did what to which subject and when, denials included.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="EarningTotal",
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
                        related_name="totals",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("town_id", fields.IntField()),
                ("village_id", fields.IntField(null=True)),
                ("kind", fields.CharField(max_length=16)),
                ("period", fields.CharField(max_length=16)),
                ("total", fields.IntField(default=0)),
            ],
            options={
                "table": "earning_totals",
                "app": "models",
                "unique_together": (("user", "kind", "period"),),
                "indexes": [
                    Index(fields=["village_id", "kind", "period", "total"]),
                    Index(fields=["town_id", "kind", "period", "total"]),
                ],
                "pk_attr": "id",
                "table_description": 'Points earned per resident, activity kind ("*" = all) and period, kept in the same',
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Event",
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
                        related_name="events",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "town",
                    fields.ForeignKeyField(
                        "models.Town",
                        source_field="town_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("title", fields.CharField(max_length=120)),
                ("kind", fields.CharField(max_length=24)),
                ("points", fields.IntField()),
                ("place", fields.CharField(default="", max_length=120)),
                ("starts_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("ends_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "qr_mode",
                    fields.CharEnumField(
                        description="STATIC: static\nROTATING: rotating",
                        enum_type=QrMode,
                        max_length=16,
                    ),
                ),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="created_events",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "events",
                "app": "models",
                "indexes": [Index(fields=["village_id", "starts_at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Checkin",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "event",
                    fields.ForeignKeyField(
                        "models.Event",
                        source_field="event_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="checkins",
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
                        related_name="checkins",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("method", fields.CharField(max_length=16)),
                (
                    "staff",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="staff_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="staff_checkins",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("points", fields.IntField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "checkins",
                "app": "models",
                "unique_together": (("event", "user"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="CheckinRefusal",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "event",
                    fields.ForeignKeyField(
                        "models.Event",
                        source_field="event_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="refusals",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="user_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="refusals",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("village_id", fields.IntField(null=True)),
                ("method", fields.CharField(max_length=16)),
                ("reason", fields.CharField(max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "checkin_refusals",
                "app": "models",
                "indexes": [Index(fields=["event_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "A refused scan, kept for the committee: who, when, why.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LedgerEntry",
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
                        related_name="entries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "town",
                    fields.ForeignKeyField(
                        "models.Town",
                        source_field="town_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="entries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("delta", fields.IntField()),
                ("balance_after", fields.IntField()),
                ("kind", fields.CharField(max_length=16)),
                ("memo", fields.CharField(default="", max_length=200)),
                ("source_type", fields.CharField(null=True, max_length=16)),
                ("source_id", fields.BigIntField(null=True)),
                ("idem_key", fields.CharField(unique=True, max_length=160)),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="acted_entries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("proxy", fields.BooleanField(default=False)),
                ("counts_as_earned", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "ledger_entries",
                "app": "models",
                "indexes": [
                    Index(fields=["user_id", "id"]),
                    Index(fields=["town_id", "created_at"]),
                ],
                "pk_attr": "id",
                "table_description": "One change of a resident's points. Never updated or deleted (triggers refuse it).",
            },
            bases=["Model"],
        ),
    ]
