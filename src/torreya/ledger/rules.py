"""Earning rules: activity kinds, their defaults, and what a town starts with."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_town
from torreya.db import get_one
from torreya.i18n import lazy_gettext as _l
from torreya.models import EarningRule, Role, Town


@dataclass(frozen=True)
class KindDefault:
    kind: str
    label: object
    points: int
    needs_review: bool


# Every town starts with these (no caps) until a scheme pack or the console changes them.
ACTIVITY_KINDS: tuple[KindDefault, ...] = (
    KindDefault("checkin", _l("Event attendance"), 10, False),
    KindDefault("patrol", _l("Volunteer patrol (per hour)"), 20, True),
    KindDefault("pledge", _l("Anti-fraud pledge"), 20, False),
    KindDefault("report", _l("Hazard or clue report"), 30, True),
)
KIND_LABELS = {k.kind: k.label for k in ACTIVITY_KINDS}

# Ledger entry kinds beyond the activities.
ENTRY_KINDS = ("checkin", "patrol", "pledge", "report", "adjustment", "redemption", "refund",
               "expiry")


async def ensure_default_rules(town: Town) -> None:
    existing = set(await EarningRule.filter(town=town).values_list("kind", flat=True))
    missing = [
        EarningRule(town=town, kind=d.kind, points=d.points, needs_review=d.needs_review)
        for d in ACTIVITY_KINDS
        if d.kind not in existing
    ]
    if missing:
        await EarningRule.bulk_create(missing)


async def rule_for(town_id: int, kind: str) -> EarningRule:
    rule = await get_one(EarningRule, town_id=town_id, kind=kind)
    if rule is None:  # a town from before this kind existed: the default, uncapped
        default = next(d for d in ACTIVITY_KINDS if d.kind == kind)
        rule = EarningRule(town_id=town_id, kind=kind, points=default.points,
                           needs_review=default.needs_review)
    return rule


async def update_rule(*, actor, rule: EarningRule, points: int, cap_day: int | None,
                      cap_month: int | None, cap_year: int | None, needs_review: bool) -> None:
    """A town admin changes one rule; audited with the values before and after."""
    require_town(actor, rule.town_id, Role.TOWN_ADMIN)
    before = {"points": rule.points, "cap_day": rule.cap_day, "cap_month": rule.cap_month,
              "cap_year": rule.cap_year, "needs_review": rule.needs_review}
    after = {"points": points, "cap_day": cap_day, "cap_month": cap_month,
             "cap_year": cap_year, "needs_review": needs_review}
    if before == after:
        return

    async with in_transaction() as connection:
        await EarningRule.filter(id=rule.id).using_db(connection).update(**after)
        await audit.record(actor, "ledger:rule:update", connection=connection,
                           subject=f"rule:{rule.kind}", town_id=rule.town_id,
                           data={"before": before, "after": after})
