"""Leaderboards from the period totals kept with each ledger entry; never a GROUP BY over
the ledger at request time. Ties share a rank (1, 1, 3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from torreya.db import now
from torreya.i18n import gettext as _
from torreya.ledger.periods import ALL_KINDS, period_key
from torreya.models import EarningTotal, GroupMember, LedgerEntry, PledgeSignature, User
from torreya.templating import mask_name

PERIODS = ("week", "month", "quarter", "year", "all")


@dataclass(frozen=True)
class BoardRow:
    rank: int
    user_id: int
    display_name: str
    points: int
    is_viewer: bool = False
    lifetime_points: int = 0


def public_name(user: User) -> str:
    return _("Anonymous resident") if user.hide_from_boards else mask_name(user.display_name)


async def rank_residents(*, scope: str, scope_id: int, period: str, limit: int = 20,
                         viewer: User | None = None, moment: datetime | None = None
                         ) -> tuple[list[BoardRow], BoardRow | None]:
    """Top `limit` of a village, town or group for the period, and the viewer's own row
    (also when it is below the top)."""
    key = period_key(period, moment or now())
    query = EarningTotal.filter(kind=ALL_KINDS, period=key, total__gt=0)
    if scope == "village":
        query = query.filter(village_id=scope_id)
    elif scope == "town":
        query = query.filter(town_id=scope_id)
    else:
        members = GroupMember.filter(group_id=scope_id, approved=True).values_list("user_id",
                                                                                  flat=True)
        query = query.filter(user_id__in=await members)
    top = await query.order_by("-total", "-user_id").limit(limit).values("user_id", "total")
    users = {u.id: u for u in await User.filter(id__in=[t["user_id"] for t in top])}
    rows: list[BoardRow] = []
    for position, entry in enumerate(top, start=1):
        rank = rows[-1].rank if rows and rows[-1].points == entry["total"] else position
        user = users[entry["user_id"]]
        rows.append(BoardRow(rank, user.id, public_name(user), entry["total"],
                             viewer is not None and viewer.id == user.id,
                             user.lifetime_points))
    mine = next((r for r in rows if r.is_viewer), None)
    if viewer is not None and mine is None:
        own = await query.filter(user_id=viewer.id).first()
        if own is not None:
            above = await query.filter(total__gt=own.total).count()
            mine = BoardRow(above + 1, viewer.id, public_name(viewer), own.total, True)
    return rows, mine


async def month_totals(user_id: int, months: int = 3, moment: datetime | None = None
                       ) -> list[int]:
    """Points earned in each of the last `months` months, newest first."""
    moment = moment or now()
    keys, cursor = [], moment
    for _i in range(months):
        keys.append(period_key("month", cursor))
        cursor = cursor.replace(day=1) - timedelta(days=1)
    found = dict(await EarningTotal.filter(user_id=user_id, kind=ALL_KINDS, period__in=keys)
                 .values_list("period", "total"))
    return [found.get(k, 0) for k in keys]


async def badge_facts(user: User):
    from torreya.boards.levels import Facts

    counts = {}
    for kind in ("checkin", "patrol", "report"):
        counts[kind] = await LedgerEntry.filter(user_id=user.id, kind=kind,
                                                counts_as_earned=True).count()
    streak = 0
    for total in await month_totals(user.id, 12):
        if total <= 0:
            break
        streak += 1
    return Facts(checkins=counts["checkin"], patrols=counts["patrol"],
                 pledges=await PledgeSignature.filter(user_id=user.id).count(),
                 reports=counts["report"], months_in_a_row=streak)
