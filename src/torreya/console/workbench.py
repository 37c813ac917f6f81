"""What needs me today (issue 18): the console's first page counts each queue per village,
with a link to it, and lists today's and the coming week's events with live check-in
counts. One grouped query per count over the villages in the viewer's reach."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tortoise.functions import Count

from torreya.accounts.permissions import rank
from torreya.db import now
from torreya.i18n import lazy_gettext
from torreya.models import (
    Checkin,
    CheckinRefusal,
    DeliveryStatus,
    Event,
    Patrol,
    PatrolStatus,
    Redemption,
    RedemptionStatus,
    Registration,
    RegistrationStatus,
    Report,
    ReportStatus,
    Reward,
    Role,
    Signal,
    SignalStatus,
    Village,
    WebhookDelivery,
)
from torreya.reports import cases
from torreya.settings import LOCAL

LOW_STOCK = 5

@dataclass(frozen=True)
class Queue:
    """A tile of the workbench: what it counts, and the page that shows exactly those
    (under /console/villages/{id}/), for the roles that can act on them."""

    key: str
    label: str
    path: str
    role: Role


QUEUES = (
    Queue("overdue", lazy_gettext("Overdue cases"), "reports?overdue=1", Role.STAFF),
    Queue("reports", lazy_gettext("Reports to review"), "reports?status=submitted",
          Role.STAFF),
    Queue("patrols", lazy_gettext("Patrols to approve"), "patrols?status=submitted",
          Role.VILLAGE_ADMIN),
    Queue("registrations", lazy_gettext("Registrations to approve"), "registrations",
          Role.STAFF),
    Queue("vouchers", lazy_gettext("Vouchers waiting for hand-over"), "rewards#pickups",
          Role.STAFF),
    Queue("low_stock", lazy_gettext("Items low on stock"), "rewards?low=1#catalog",
          Role.STAFF),
    Queue("refused", lazy_gettext("Refused scans today"), "refusals", Role.STAFF),
    Queue("signals", lazy_gettext("Integrity signals to look at"), "signals?status=open",
          Role.STAFF),
)


def queues_for(user) -> list[Queue]:
    """The tiles `user` can act on: a tile that would lead to a refusal is not shown."""
    return [queue for queue in QUEUES if user.rank >= rank(queue.role)]


@dataclass
class VillageWork:
    village: Village
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def _grouped(query, column: str = "village_id") -> dict[int, int]:
    rows = await query.annotate(n=Count("id")).group_by(column).values(column, "n")
    return {row[column]: row["n"] for row in rows}


def today_start(moment: datetime) -> datetime:
    local = moment.astimezone(LOCAL)
    # in UTC: SQLite compares the stored UTC text, and "2026-12-02 00:00+08:00" sorts after
    # every row of that morning before 08:00
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


async def village_work(villages: list[Village]) -> list[VillageWork]:
    ids = [v.id for v in villages]
    if not ids:
        return []
    moment = now()
    rules = await cases.rules_by_town({v.town_id for v in villages})
    overdue: dict[int, int] = {}
    for town_id, town_rules in rules.items():
        overdue |= await _grouped(Report.filter(
            cases.overdue_filter(town_rules, moment),
            village_id__in=[v.id for v in villages if v.town_id == town_id]))
    counts = {
        "overdue": overdue,
        "reports": await _grouped(Report.filter(village_id__in=ids,
                                                status=ReportStatus.SUBMITTED)),
        "patrols": await _grouped(Patrol.filter(village_id__in=ids,
                                                status=PatrolStatus.SUBMITTED)),
        "registrations": await _grouped(Registration.filter(
            village_id__in=ids, status=RegistrationStatus.PENDING)),
        "vouchers": await _grouped(Redemption.filter(village_id__in=ids,
                                                     status=RedemptionStatus.PENDING)),
        "low_stock": await _grouped(Reward.filter(village_id__in=ids, is_active=True,
                                                  stock__not_isnull=True,
                                                  stock__lte=LOW_STOCK)),
        "refused": await _grouped(CheckinRefusal.filter(
            village_id__in=ids, created_at__gte=today_start(moment))),
        "signals": await _grouped(Signal.filter(village_id__in=ids,
                                                status=SignalStatus.OPEN)),
    }
    return [VillageWork(v, {q.key: counts[q.key].get(v.id, 0) for q in QUEUES})
            for v in villages]


@dataclass(frozen=True)
class EventLine:
    event: Event
    checkins: int
    now_open: bool


async def events_ahead(villages: list[Village], *, days: int = 7) -> list[EventLine]:
    """Open now, or starting within `days`, soonest first, with check-ins so far."""
    moment = now()
    events = await Event.filter(village_id__in=[v.id for v in villages], ends_at__gt=moment,
                                starts_at__lt=moment + timedelta(days=days)
                                ).order_by("starts_at").limit(20)
    counts = await _grouped(Checkin.filter(event_id__in=[e.id for e in events]), "event_id")
    return [EventLine(e, counts.get(e.id, 0), e.starts_at <= moment) for e in events]


async def failing_deliveries(town_ids: list[int]) -> int:
    if not town_ids:
        return 0
    return await WebhookDelivery.filter(webhook__town_id__in=town_ids,
                                        status=DeliveryStatus.FAILED).count()
