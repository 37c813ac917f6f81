"""The append-only points ledger and what is derived from it."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class LedgerEntry(Model):
    """One change of a resident's points. Never updated or deleted (triggers refuse it)."""

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="entries", on_delete=fields.RESTRICT)
    town = fields.ForeignKeyField("models.Town", related_name="entries", on_delete=fields.RESTRICT)
    delta = fields.IntField()
    balance_after = fields.IntField()
    kind = fields.CharField(max_length=16)
    memo = fields.CharField(max_length=200, default="")
    source_type = fields.CharField(max_length=16, null=True)
    source_id = fields.BigIntField(null=True)
    # Claims the action: a second credit for the same thing collides here.
    idem_key = fields.CharField(max_length=160, unique=True)
    actor = fields.ForeignKeyField(
        "models.User", related_name="acted_entries", null=True, on_delete=fields.RESTRICT
    )
    # Staff acted for a resident without a phone.
    proxy = fields.BooleanField(default=False)
    counts_as_earned = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    # HMAC of the entry's canonical encoding (trust/encoding.py) with a server key: the
    # chainer links only entries Torreya wrote; a row inserted behind its back has none.
    seal = fields.CharField(max_length=64, null=True)

    user_id: int
    town_id: int
    actor_id: int | None

    class Meta:
        table = "ledger_entries"
        indexes = (Index(fields=("user_id", "id")), Index(fields=("town_id", "created_at")))


class EarningRule(Model):
    """Per town and activity kind: points, caps, and whether a credit waits for review."""

    id = fields.IntField(primary_key=True)
    town = fields.ForeignKeyField("models.Town", related_name="rules", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=16)
    points = fields.IntField()
    cap_day = fields.IntField(null=True)
    cap_month = fields.IntField(null=True)
    cap_year = fields.IntField(null=True)
    needs_review = fields.BooleanField(default=False)

    town_id: int

    class Meta:
        table = "earning_rules"
        unique_together = (("town", "kind"),)


class EarningTotal(Model):
    """Points earned per resident, activity kind ("*" = all) and period, kept in the same
    transaction as the ledger entry. Caps and leaderboards read these, never the ledger."""

    id = fields.BigIntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="totals", on_delete=fields.RESTRICT)
    town_id = fields.IntField()
    village_id = fields.IntField(null=True)
    kind = fields.CharField(max_length=16)
    period = fields.CharField(max_length=16)
    total = fields.IntField(default=0)

    user_id: int

    class Meta:
        table = "earning_totals"
        unique_together = (("user", "kind", "period"),)
        # Boards read these backwards: ORDER BY total DESC, user_id DESC LIMIT n stops after
        # n index entries even in a town of 300,000 (user_id keeps the order deterministic).
        indexes = (
            Index(fields=("village_id", "kind", "period", "total", "user_id")),
            Index(fields=("town_id", "kind", "period", "total", "user_id")),
        )
