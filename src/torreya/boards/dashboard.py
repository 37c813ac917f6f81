"""The committee dashboard and the monthly report (平安月报): figures per village and month,
read from period totals, check-ins, patrols, reports, redemptions and signatures."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from tortoise.functions import Sum

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
    User,
)
from torreya.templating import LOCAL


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
        start = period_start("month", now())
    end = (start + timedelta(days=32)).replace(day=1)
    return period_key("month", start), start, end


def last_months(count: int) -> list[str]:
    months, cursor = [], now().astimezone(LOCAL)
    for _i in range(count):
        months.append(cursor.strftime("%Y-%m"))
        cursor = cursor.replace(day=1) - timedelta(days=1)
    return list(reversed(months))


async def figures(village_ids: list[int], month: str | None) -> MonthFigures:
    key, start, end = month_bounds(month)
    in_month = {"created_at__gte": start, "created_at__lt": end}
    result = MonthFigures()
    result.active_residents = await EarningTotal.filter(
        village_id__in=village_ids, kind=ALL_KINDS, period=key, total__gt=0).count()
    issued = await EarningTotal.filter(village_id__in=village_ids, kind=ALL_KINDS, period=key
                                       ).annotate(s=Sum("total")).values_list("s", flat=True)
    result.points_issued = int(issued[0] or 0) if issued else 0
    result.checkins = await Checkin.filter(event__village_id__in=village_ids, **in_month).count()
    minutes = 0
    for patrol in await Patrol.filter(village_id__in=village_ids, status=PatrolStatus.APPROVED,
                                      started_at__gte=start, started_at__lt=end
                                      ).prefetch_related("participants"):
        minutes += (patrol.duration_minutes or 0) * len(patrol.participants)
    result.patrol_hours = round(minutes / 60, 1)
    result.reports_filed = await Report.filter(village_id__in=village_ids, **in_month).count()
    result.reports_accepted = await Report.filter(
        village_id__in=village_ids, status__in=[ReportStatus.ACCEPTED, ReportStatus.IN_PROGRESS,
                                                ReportStatus.RESOLVED], **in_month).count()
    result.pledges_signed = await PledgeSignature.filter(village_id__in=village_ids,
                                                         **in_month).count()
    redeemed = await Redemption.filter(
        village_id__in=village_ids, status__in=[RedemptionStatus.PENDING,
                                                RedemptionStatus.FULFILLED], **in_month
    ).annotate(s=Sum("cost")).values_list("s", flat=True)
    result.points_redeemed = int(redeemed[0] or 0) if redeemed else 0
    return result


async def outstanding_points(village_ids: list[int]) -> int:
    """What the scheme owes: the residents' balances now."""
    total = await User.filter(village_id__in=village_ids).annotate(s=Sum("balance")
                                                                   ).values_list("s", flat=True)
    return int(total[0] or 0) if total else 0


async def top_activities(village_ids: list[int], month: str | None) -> list[tuple[str, int]]:
    key, _start, _end = month_bounds(month)
    rows = await EarningTotal.filter(village_id__in=village_ids, period=key).exclude(
        kind=ALL_KINDS).annotate(s=Sum("total")).group_by("kind").values_list("kind", "s")
    return sorted(((kind, int(s or 0)) for kind, s in rows), key=lambda r: -r[1])


async def low_stock(village_ids: list[int], town_id: int, threshold: int = 5) -> list[Reward]:
    from tortoise.expressions import Q

    return await Reward.filter(Q(village_id__in=village_ids) | Q(village_id=None),
                               town_id=town_id, is_active=True, stock__lte=threshold
                               ).order_by("stock")
