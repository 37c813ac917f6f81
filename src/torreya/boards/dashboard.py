"""The committee dashboard and the monthly report (平安月报): figures per village and month,
read from period totals, check-ins, patrols, reports, redemptions and signatures."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q
from tortoise.functions import Count, Sum

from torreya.db import now
from torreya.ledger.periods import ALL_KINDS, period_key, period_start
from torreya.models import (
    Checkin,
    EarningTotal,
    Patrol,
    PatrolStatus,
    PledgeSignature,
    Redemption,
    RedemptionStatus,
    Report,
    ReportStatus,
    Reward,
    Signal,
    User,
)
from torreya.settings import LOCAL


@dataclass
class MonthFigures:
    active_residents: int = 0
    checkins: int = 0
    patrol_hours: float = 0.0
    reports_filed: int = 0
    reports_accepted: int = 0
    pledges_signed: int = 0
    points_issued: int = 0
    points_redeemed: int = 0

    def add(self, other: MonthFigures) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


COLUMNS = [f.name for f in fields(MonthFigures)]


def month_bounds(month: str | None) -> tuple[str, datetime, datetime]:
    """('m2026-11', start, end) of a 'YYYY-MM' month in Asia/Shanghai (default: this one)."""
    if month:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=LOCAL)
    else:
        start = period_start("month", now()).astimezone(LOCAL)
    end = (start + timedelta(days=32)).replace(day=1)
    # bounds in UTC, as the rows are stored (SQLite compares the text)
    return period_key("month", start), start.astimezone(UTC), end.astimezone(UTC)


def last_months(count: int) -> list[str]:
    months, cursor = [], now().astimezone(LOCAL)
    for _i in range(count):
        months.append(cursor.strftime("%Y-%m"))
        cursor = cursor.replace(day=1) - timedelta(days=1)
    return list(reversed(months))


def _on(query, db):
    """The query on `db` (the replica, when the view reads there), else the primary."""
    return query.using_db(db) if db is not None else query


async def _grouped(query, column: str, value, db=None) -> dict[int, int]:
    """{village_id: aggregate} of a query grouped by its village column."""
    rows = await _on(query, db).annotate(value=value).group_by(column).values_list(
        column, "value")
    return {village_id: int(total or 0) for village_id, total in rows}


async def figures_by_village(village_ids: list[int], month: str | None, db=None
                             ) -> dict[int, MonthFigures]:
    """The month's figures of each village, in one grouped query per figure."""
    key, start, end = month_bounds(month)
    in_month = {"created_at__gte": start, "created_at__lt": end}
    totals = EarningTotal.filter(village_id__in=village_ids, kind=ALL_KINDS, period=key)
    accepted = [ReportStatus.ACCEPTED, ReportStatus.IN_PROGRESS, ReportStatus.RESOLVED]
    columns = {
        "active_residents": await _grouped(totals.filter(total__gt=0), "village_id",
                                           Count("id"), db),
        "points_issued": await _grouped(totals, "village_id", Sum("total"), db),
        "checkins": await _grouped(Checkin.filter(event__village_id__in=village_ids,
                                                  **in_month), "event__village_id",
                                   Count("id"), db),
        "reports_filed": await _grouped(Report.filter(village_id__in=village_ids, **in_month),
                                        "village_id", Count("id"), db),
        "reports_accepted": await _grouped(Report.filter(
            village_id__in=village_ids, status__in=accepted, **in_month), "village_id",
            Count("id"), db),
        "pledges_signed": await _grouped(PledgeSignature.filter(
            village_id__in=village_ids, **in_month), "village_id", Count("id"), db),
        "points_redeemed": await _grouped(Redemption.filter(
            village_id__in=village_ids, status__in=[RedemptionStatus.PENDING,
                                                    RedemptionStatus.FULFILLED], **in_month),
            "village_id", Sum("cost"), db),
    }
    minutes: dict[int, int] = {}
    for patrol in await _on(Patrol.filter(
            village_id__in=village_ids, status=PatrolStatus.APPROVED, started_at__gte=start,
            started_at__lt=end), db).prefetch_related("participants"):
        minutes[patrol.village_id] = minutes.get(patrol.village_id, 0) + (
            (patrol.duration_minutes or 0) * len(patrol.participants))
    result = {}
    for village_id in village_ids:
        result[village_id] = MonthFigures(
            patrol_hours=round(minutes.get(village_id, 0) / 60, 1),
            **{name: values.get(village_id, 0) for name, values in columns.items()})
    return result


async def figures(village_ids: list[int], month: str | None, db=None) -> MonthFigures:
    """The month's figures of these villages together."""
    total = MonthFigures()
    for one in (await figures_by_village(village_ids, month, db)).values():
        total.add(one)
    total.patrol_hours = round(total.patrol_hours, 1)
    return total


async def outstanding_by_village(village_ids: list[int], db=None) -> dict[int, int]:
    """What the scheme owes each village's residents: their balances now."""
    return await _grouped(User.filter(village_id__in=village_ids), "village_id", Sum("balance"),
                          db)


async def outstanding_points(village_ids: list[int], db=None) -> int:
    return sum((await outstanding_by_village(village_ids, db)).values())


async def top_activities(village_ids: list[int], month: str | None, db=None
                         ) -> list[tuple[str, int]]:
    key, _start, _end = month_bounds(month)
    rows = await _on(EarningTotal.filter(village_id__in=village_ids, period=key), db).exclude(
        kind=ALL_KINDS).annotate(s=Sum("total")).group_by("kind").values_list("kind", "s")
    return sorted(((kind, int(s or 0)) for kind, s in rows), key=lambda r: -r[1])


async def low_stock(village_ids: list[int], town_id: int, threshold: int = 5, db=None
                    ) -> list[Reward]:
    return await _on(Reward.filter(Q(village_id__in=village_ids) | Q(village_id=None),
                                   town_id=town_id, is_active=True, stock__lte=threshold),
                     db).order_by("stock")


async def signals_by_week(village_ids: list[int], weeks: int = 4, db=None
                          ) -> tuple[list[str], dict[int, list[int]]]:
    """Integrity signals raised per village in each of the last `weeks` weeks (Monday to
    Sunday, village time): (each week's first day, {village_id: counts, oldest first})."""
    today = now().astimezone(LOCAL).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=today.weekday() + 7 * (weeks - 1))
    starts = [first + timedelta(days=7 * n) for n in range(weeks)]
    counts = {village_id: [0] * weeks for village_id in village_ids}
    for village_id, created in await _on(Signal.filter(
            village_id__in=village_ids, created_at__gte=first.astimezone(UTC)), db
            ).values_list("village_id", "created_at"):
        week = (created.astimezone(LOCAL) - first).days // 7
        if village_id in counts and 0 <= week < weeks:
            counts[village_id][week] += 1
    return [start.strftime("%m-%d") for start in starts], counts
