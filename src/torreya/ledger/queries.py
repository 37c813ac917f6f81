"""Reads of points: summaries, ledger pages, levels."""

from __future__ import annotations

from dataclasses import dataclass

from torreya.models import LedgerEntry, Town, User

# Levels by lifetime points (issue 7 moves them into the scheme pack).
LEVELS = ((0, "平安新人"), (100, "平安志愿者"), (300, "平安卫士"), (800, "平安先锋"),
          (2000, "平安标兵"))


@dataclass(frozen=True)
class Level:
    name: str
    next_name: str | None
    to_next: int
    progress_percent: int


def level_for(lifetime: int) -> Level:
    index = max(i for i, (floor, _) in enumerate(LEVELS) if lifetime >= floor)
    floor, name = LEVELS[index]
    if index + 1 >= len(LEVELS):
        return Level(name, None, 0, 100)
    ceiling, next_name = LEVELS[index + 1]
    percent = int(100 * (lifetime - floor) / (ceiling - floor))
    return Level(name, next_name, ceiling - lifetime, percent)


@dataclass(frozen=True)
class AccountSummary:
    balance: int
    lifetime_points: int
    currency_name: str
    level: Level
    recent: list[LedgerEntry]


async def currency_name(town_id: int | None) -> str:
    if town_id is None:
        return "积分"
    town = await Town.get_or_none(id=town_id).only("currency_name")
    return town.currency_name if town else "积分"


async def account_summary(user: User) -> AccountSummary:
    recent = await LedgerEntry.filter(user_id=user.id).order_by("-id").limit(5)
    return AccountSummary(user.balance, user.lifetime_points, await currency_name(user.town_id),
                          level_for(user.lifetime_points), recent)


async def ledger_page(user_id: int, *, cursor: int | None, limit: int = 20
                      ) -> tuple[list[LedgerEntry], int | None]:
    """Entries newest first; the cursor is the id below which the next page starts."""
    query = LedgerEntry.filter(user_id=user_id)
    if cursor is not None:
        query = query.filter(id__lt=cursor)
    entries = await query.order_by("-id").limit(limit + 1)
    next_cursor = entries[limit - 1].id if len(entries) > limit else None
    return entries[:limit], next_cursor
