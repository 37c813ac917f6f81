"""Period keys in Asia/Shanghai time, for caps and leaderboards."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from torreya.settings import LOCAL

BOARD_PERIODS = ("week", "month", "quarter", "year", "all")
CAP_PERIODS = {"day": "cap_day", "month": "cap_month", "year": "cap_year"}
ALL_KINDS = "*"


def period_key(period: str, moment: datetime) -> str:
    return _key_of_minute(period, _minute(moment))


def _minute(moment: datetime) -> int:
    # Asia/Shanghai is a whole number of hours from UTC, so every period starts on a UTC
    # minute: the keys of one minute are worked out once (every credit needs eight).
    return int(moment.timestamp()) // 60


@functools.lru_cache(maxsize=256)
def _key_of_minute(period: str, minute: int) -> str:
    local = datetime.fromtimestamp(minute * 60, LOCAL)
    if period == "day":
        return local.strftime("d%Y-%m-%d")
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"w{year}-{week:02d}"
    if period == "month":
        return local.strftime("m%Y-%m")
    if period == "quarter":
        return f"q{local.year}-{(local.month - 1) // 3 + 1}"
    if period == "year":
        return f"y{local.year}"
    if period == "all":
        return "all"
    raise ValueError(period)


def total_keys(kind: str, moment: datetime) -> tuple[tuple[str, str], ...]:
    """(kind, period) rows one earned credit adds to: its own kind for caps (first, in the
    order of CAP_PERIODS), all kinds for the boards. Keep in sync with the audit's
    recomputation."""
    return _total_keys(kind, _minute(moment))


@functools.lru_cache(maxsize=64)
def _total_keys(kind: str, minute: int) -> tuple[tuple[str, str], ...]:
    own = [(kind, _key_of_minute(p, minute)) for p in CAP_PERIODS]
    boards = [(ALL_KINDS, _key_of_minute(p, minute)) for p in BOARD_PERIODS]
    return tuple(own + boards)


def period_start(period: str, moment: datetime) -> datetime:
    """The first moment (Asia/Shanghai) of the day/week/month/year containing `moment`, in
    UTC: SQLite compares the stored UTC text, and a bound written "+08:00" would leave out
    every row of the first eight hours."""
    local = moment.astimezone(LOCAL).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        local -= timedelta(days=local.weekday())
    elif period == "month":
        local = local.replace(day=1)
    elif period == "year":
        local = local.replace(month=1, day=1)
    elif period != "day":
        raise ValueError(period)
    return local.astimezone(UTC)
