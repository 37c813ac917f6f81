"""Reads of points: summaries, ledger pages, levels."""

from __future__ import annotations

from dataclasses import dataclass

from torreya.boards.levels import Level, badges_for, level_for
from torreya.boards.queries import badge_facts
from torreya.models import LedgerEntry, Town, User


@dataclass(frozen=True)
class AccountSummary:
    balance: int
    lifetime_points: int
    currency_name: str
    level: Level
    recent: list[LedgerEntry]
    badges: list[str]


async def currency_name(town_id: int | None) -> str:
    if town_id is None:
        return "积分"
    town = await Town.get_or_none(id=town_id).only("currency_name")
    return town.currency_name if town else "积分"


async def account_summary(user: User) -> AccountSummary:
    recent = await LedgerEntry.filter(user_id=user.id).order_by("-id").limit(5)
    town = await Town.get_or_none(id=user.town_id) if user.town_id else None
    return AccountSummary(
        user.balance, user.lifetime_points, town.currency_name if town else "积分",
        level_for(user.lifetime_points, town.levels if town else None), recent,
        badges_for(await badge_facts(user), town.badges if town else None))


async def ledger_page(user_id: int, *, cursor: int | None, limit: int = 20
                      ) -> tuple[list[LedgerEntry], int | None]:
    """Entries newest first; the cursor is the id below which the next page starts."""
    query = LedgerEntry.filter(user_id=user_id)
    if cursor is not None:
        query = query.filter(id__lt=cursor)
    entries = await query.order_by("-id").limit(limit + 1)
    next_cursor = entries[limit - 1].id if len(entries) > limit else None
    return entries[:limit], next_cursor
