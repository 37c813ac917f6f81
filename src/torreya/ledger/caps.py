"""The one cap rule (SPEC §3: caps per activity and period), pure: every path that credits
points asks it, the single entry, the check-in batch on SQLite and the patrol award; the
PostgreSQL check-in function applies the same rule in SQL, and
tests/ledger/test_caps.py runs one table of cases through this function and through a
real check-in on each database.

A rule caps what a person may earn from one kind of activity per day, month and year
(None: no cap). What they have earned in each period so far is `totals` (missing: 0).
"""

from __future__ import annotations

from collections.abc import Mapping

from torreya.ledger.periods import CAP_PERIODS

UNLIMITED = None


def caps_of(rule) -> dict[str, int | None]:
    """{"day": cap, "month": cap, "year": cap} of an earning rule (a row or a model)."""
    return {period: getattr(rule, attribute) for period, attribute in CAP_PERIODS.items()}


def any_cap(caps: Mapping[str, int | None] | None) -> bool:
    """Does anything cap it? (No rule, or a rule of no caps: no.)"""
    return bool(caps) and any(cap is not None for cap in caps.values())


def room_under_caps(caps: Mapping[str, int | None], totals: Mapping[str, int]) -> int | None:
    """How many more points the caps allow (never below 0), or None when nothing caps it.
    `caps` and `totals` are keyed by period: "day", "month", "year"."""
    rooms = [cap - totals.get(period, 0) for period, cap in caps.items() if cap is not None]
    return max(0, min(rooms)) if rooms else UNLIMITED


def within_caps(caps: Mapping[str, int | None], totals: Mapping[str, int], points: int) -> bool:
    """May `points` more be credited? (A credit of 0 always may.)"""
    room = room_under_caps(caps, totals)
    return room is UNLIMITED or points <= room
