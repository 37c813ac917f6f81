"""积分有效期: points that expire (issue 33). A town's scheme says when: "end_of_year" (what
was credited in a year leaves when the year ends, village time) or "12 months" (each credit
leaves 12 months after it came); "none" keeps them.

Points leave earliest-credited first and never what was already spent: spending (and an
earlier expiry) uses up the oldest credits first, so what is due at a moment is

    due = (credits old enough to expire) − (everything taken away so far), if positive,

and never more than the balance. It leaves by one ledger entry of kind `expiry` through the
one writer (`post_entry`), so the audit, the chain and the outbox treat it like any entry.
The resident's row is locked while it is worked out (PostgreSQL; SQLite has one writer),
and the entry's idem_key names the resident and the day: two workers, or the housekeeping
run twice, expire it once. A refund of a cancelled voucher is a credit of its own day.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya.db import conn, fetch, is_postgres, now
from torreya.ledger.periods import period_start
from torreya.ledger.service import Posting, post_entry
from torreya.models import Town, User
from torreya.settings import LOCAL

log = logging.getLogger("torreya")

RULES = ("none", "end_of_year", "12 months")
MEMO = "积分到期"


def cutoff(rule: str, moment: datetime) -> datetime | None:
    """Credits before this have expired at `moment` (None: nothing expires)."""
    if rule == "end_of_year":
        return period_start("year", moment)
    if rule == "12 months":
        local = moment.astimezone(LOCAL)
        try:
            earlier = local.replace(year=local.year - 1)
        except ValueError:  # 29 February
            earlier = local.replace(year=local.year - 1, day=28)
        return earlier.astimezone(UTC)
    return None


_SUMS = ("SELECT user_id,"
         " COALESCE(SUM(CASE WHEN delta > 0 AND kind <> 'expiry' AND created_at < ?"
         " THEN delta ELSE 0 END), 0) AS old,"
         " COALESCE(SUM(CASE WHEN delta < 0 THEN -delta ELSE 0 END), 0) AS spent"
         " FROM ledger_entries WHERE ")


async def due_by_user(town_id: int, before: datetime, village_ids: list[int] | None = None
                      ) -> dict[int, int]:
    """{resident: points due to expire} for credits before `before`, in one grouped read
    (of the residents of `village_ids`, if given)."""
    among = ""
    if village_ids is not None:
        among = (" AND user_id IN (SELECT id FROM users WHERE village_id IN"
                 f" ({', '.join('?' * len(village_ids))}))") if village_ids else " AND 1 = 0"
    rows = await fetch(conn(), _SUMS + "town_id = ?" + among + " GROUP BY user_id",
                       [before, town_id, *(village_ids or [])])
    return {row["user_id"]: int(row["old"]) - int(row["spent"]) for row in rows
            if int(row["old"]) > int(row["spent"])}


async def expire_user(user_id: int, before: datetime, moment: datetime) -> int:
    """Expire what is due of one resident, worked out under their row's lock. Returns the
    points taken (0: nothing due, or another worker took them)."""
    try:
        async with in_transaction() as connection:
            if is_postgres(connection):
                await fetch(connection, "SELECT id FROM users WHERE id = ? FOR UPDATE",
                            [user_id])
            rows = await fetch(connection, _SUMS + "user_id = ? GROUP BY user_id",
                               [before, user_id])
            due = int(rows[0]["old"]) - int(rows[0]["spent"]) if rows else 0
            user = await User.get(id=user_id).using_db(connection)
            due = min(due, user.balance)
            if due <= 0:
                return 0
            await post_entry(Posting(
                user=user, delta=-due, kind="expiry", memo=MEMO,
                idem_key=f"expiry:{user_id}:{moment.astimezone(LOCAL):%Y-%m-%d}"), connection)
            return due
    except IntegrityError:  # another worker expired them today
        return 0


async def expire_due(*, moment: datetime | None = None) -> int:
    """Every town's expired points, resident by resident. Returns the points taken."""
    moment = moment or now()
    taken = 0
    for town in await Town.exclude(expiry="none"):
        before = cutoff(town.expiry, moment)
        if before is None:
            continue
        for user_id in await due_by_user(town.id, before):
            taken += await expire_user(user_id, before, moment)
    return taken


async def expiring_soon(town: Town, *, days: int = 30, moment: datetime | None = None
                        ) -> dict[int, int]:
    """{resident: points that will expire within `days`} (beyond what is due now)."""
    moment = moment or now()
    now_cut, later_cut = cutoff(town.expiry, moment), cutoff(town.expiry,
                                                             moment + timedelta(days=days))
    if now_cut is None or later_cut is None:
        return {}
    due_now = await due_by_user(town.id, now_cut)
    due_later = await due_by_user(town.id, later_cut)
    return {user_id: points - due_now.get(user_id, 0) for user_id, points in due_later.items()
            if points > due_now.get(user_id, 0)}


# Once a day per process (the housekeeping runs every few minutes): the grouped reads cover
# a town's whole ledger.
_ran: list[str] = []


async def daily(*, moment: datetime | None = None) -> int:
    """Expire what is due, once per village day per process. Returns the points taken."""
    moment = moment or now()
    day = f"{moment.astimezone(LOCAL):%Y-%m-%d}"
    if _ran == [day]:
        return 0
    taken = await expire_due(moment=moment)
    _ran[:] = [day]
    return taken


def notice_of(rule: str, moment: datetime, days: int = 30) -> tuple[datetime, str] | None:
    """(the day the points expire by, the notice's dedup key): once a year for
    "end_of_year" (its last day), once a month for "12 months" (within the next 30 days)."""
    local = moment.astimezone(LOCAL)
    if rule == "end_of_year":
        return (period_start("year", moment + timedelta(days=days)) - timedelta(seconds=1),
                f"points:expiring:{local.year}")
    if rule == "12 months":
        return moment + timedelta(days=days), f"points:expiring:{local:%Y-%m}"
    return None


async def due_by_month(town: Town, village_ids: list[int], *, months: int = 3,
                       moment: datetime | None = None) -> list[tuple[str, int]]:
    """Points that will expire in each of the coming months ("YYYY-MM", points), for the
    committee's dashboard; [] when the town's points do not expire."""
    moment = moment or now()
    if cutoff(town.expiry, moment) is None:
        return []
    already = sum((await due_by_user(town.id, cutoff(town.expiry, moment), village_ids)
                   ).values())
    found = []
    start = period_start("month", moment)
    for n in range(1, months + 1):
        local = start.astimezone(LOCAL)
        month_end = (local.replace(year=local.year + (local.month + n - 1) // 12,
                                   month=(local.month + n - 1) % 12 + 1)).astimezone(UTC)
        total = sum((await due_by_user(town.id, cutoff(town.expiry, month_end), village_ids)
                     ).values())
        label = f"{(month_end - timedelta(days=1)).astimezone(LOCAL):%Y-%m}"
        found.append((label, max(0, total - already)))
        already = max(already, total)
    return found
