"""Platform → towns → villages → users."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Role(StrEnum):
    RESIDENT = "resident"
    STAFF = "staff"
    VILLAGE_ADMIN = "village_admin"
    TOWN_ADMIN = "town_admin"
    PLATFORM_ADMIN = "platform_admin"


# Higher rank includes the powers of the lower ones, within the holder's tenant.
ROLE_RANK = {
    Role.RESIDENT: 0,
    Role.STAFF: 1,
    Role.VILLAGE_ADMIN: 2,
    Role.TOWN_ADMIN: 3,
    Role.PLATFORM_ADMIN: 4,
}


class Town(Model):
    """A tenant: owns one points currency and its earning rules."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    code = fields.CharField(max_length=32, unique=True)
    currency_name = fields.CharField(max_length=32)
    # Unfulfilled vouchers are refunded after this many days (scheme pack: voucher_days).
    voucher_days = fields.IntField(default=30, db_default=30)
    # Adjustments of more points than this (either way) need the password again (step-up).
    step_up_points = fields.IntField(default=1000, db_default=1000)
    # Levels and badges of the scheme pack; None means the defaults in boards/levels.py.
    levels = fields.JSONField(null=True)
    badges = fields.JSONField(null=True)
    # Integrity signals' thresholds set in the console; None: the defaults
    # (integrity/thresholds.py).
    integrity = fields.JSONField(null=True)
    # 积分有效期 (scheme pack `expiry`): "none", "end_of_year" (what was earned in a year
    # leaves when it ends) or "12 months" (each credit leaves 12 months after it came).
    expiry = fields.CharField(max_length=16, default="none", db_default="none")
    # 星级平安户: the criteria a village admin rates households by ([{name, weight, source}],
    # scheme pack [[star_criteria]]; None: none set) and the points a rating's stars bring
    # the head of household (star_bonus per star; 0: none).
    star_criteria = fields.JSONField(null=True)
    star_bonus = fields.IntField(default=0, db_default=0)
    # Reports as cases (网格): hours to accept a report and to resolve it, from its filing.
    case_ack_hours = fields.IntField(default=48, db_default=48)
    case_resolve_hours = fields.IntField(default=168, db_default=168)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "towns"


class Village(Model):
    id = fields.IntField(primary_key=True)
    town: fields.ForeignKeyRelation[Town] = fields.ForeignKeyField(
        "models.Town", related_name="villages", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=100)
    code = fields.CharField(max_length=32)
    created_at = fields.DatetimeField(auto_now_add=True)

    town_id: int

    class Meta:
        table = "villages"
        unique_together = (("town", "code"),)


class User(Model):
    """A person with a login. Residents also hold the points account (balance)."""

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    password_hash = fields.CharField(max_length=255, null=True)
    display_name = fields.CharField(max_length=64)
    phone = fields.CharField(max_length=32, null=True)
    role = fields.CharEnumField(Role, max_length=16)
    town: fields.ForeignKeyNullableRelation[Town] = fields.ForeignKeyField(
        "models.Town", related_name="users", null=True, on_delete=fields.RESTRICT
    )
    village: fields.ForeignKeyNullableRelation[Village] = fields.ForeignKeyField(
        "models.Village", related_name="users", null=True, on_delete=fields.RESTRICT
    )
    # A cache of the ledger: balance == sum(entries.delta); lifetime == sum of credits
    # that count as earned. `torreya audit` proves both.
    balance = fields.IntField(default=0, db_default=0)
    lifetime_points = fields.IntField(default=0, db_default=0)
    # Bumped when a member card is revoked, so old printed cards stop working.
    card_serial = fields.IntField(default=1, db_default=1)
    # Carried in every session cookie and bearer token; bumping it ends them all at once
    # ("log out everywhere", "lost phone"). Checked against the row each request reads anyway.
    session_generation = fields.IntField(default=0, db_default=0)
    # Logins ended one by one: {session id: its expiry (Unix seconds)}, pruned as they
    # expire. Read with the row, so ending one login costs every request nothing.
    ended_sessions = fields.JSONField(null=True)
    # Optional two-factor login for staff and admins: the TOTP secret, encrypted with a key
    # derived from TORREYA_SECRET_KEY (a database reader alone cannot make codes), and the
    # last time step used, so a code works once.
    totp_secret = fields.CharField(max_length=200, null=True)
    totp_last_step = fields.BigIntField(default=0, db_default=0)
    is_active = fields.BooleanField(default=True, db_default=True)
    hide_from_boards = fields.BooleanField(default=False, db_default=False)
    # Text messages for what matters (report handled, voucher expiring …); the inbox always.
    sms_notifications = fields.BooleanField(default=True, db_default=True)
    # 长辈模式: larger type and a simpler home, remembered for the account (MIIT 适老化).
    elder_mode = fields.BooleanField(default=False, db_default=False)
    # Staff of a town department (派出所, 应急办 …): they handle the reports assigned to it,
    # across the town's villages.
    department_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    town_id: int | None
    village_id: int | None

    class Meta:
        table = "users"
        indexes = (Index(fields=("village_id", "role")), Index(fields=("town_id", "role")))

    @property
    def rank(self) -> int:
        return ROLE_RANK[Role(self.role)]
