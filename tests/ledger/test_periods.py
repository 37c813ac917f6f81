"""Period keys (Asia/Shanghai) are worked out once per UTC minute: the same keys as working
them out from each moment, at every boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from torreya.ledger.periods import ALL_KINDS, BOARD_PERIODS, CAP_PERIODS, period_key, total_keys

LOCAL = ZoneInfo("Asia/Shanghai")


def _reference(period: str, moment: datetime) -> str:
    local = moment.astimezone(LOCAL)
    year, week, _ = local.isocalendar()
    return {"day": local.strftime("d%Y-%m-%d"), "week": f"w{year}-{week:02d}",
            "month": local.strftime("m%Y-%m"), "quarter": f"q{local.year}-"
            f"{(local.month - 1) // 3 + 1}", "year": f"y{local.year}", "all": "all"}[period]


def test_keys_at_the_edges_of_days_weeks_months_and_years():
    # Beijing midnight is 16:00 UTC: a new year, a new quarter, a Monday, a month's end.
    edges = [datetime(2026, 12, 31, 16, tzinfo=UTC), datetime(2027, 3, 31, 16, tzinfo=UTC),
             datetime(2026, 12, 6, 16, tzinfo=UTC), datetime(2027, 2, 28, 16, tzinfo=UTC),
             datetime(2028, 2, 28, 16, tzinfo=UTC)]
    for edge in edges:
        for moment in (edge - timedelta(microseconds=1), edge, edge + timedelta(seconds=59.9),
                       edge - timedelta(seconds=59.9), edge + timedelta(minutes=1)):
            for period in ("day", "week", "month", "quarter", "year", "all"):
                assert period_key(period, moment) == _reference(period, moment), (
                    period, moment)
            assert total_keys("checkin", moment) == tuple(
                [("checkin", _reference(p, moment)) for p in CAP_PERIODS]
                + [(ALL_KINDS, _reference(p, moment)) for p in BOARD_PERIODS])


def test_keys_through_a_year_hour_by_hour():
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    while moment.year == 2026:
        for period in ("day", "week", "month", "quarter", "year"):
            assert period_key(period, moment) == _reference(period, moment)
        moment += timedelta(hours=1, minutes=7)
