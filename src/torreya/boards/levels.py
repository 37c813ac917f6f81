"""Levels by lifetime points and milestone badges: pure policy over a town's scheme.

Both are derived from the ledger's caches (lifetime points, period totals) and counts of
what a resident did, so they can always be recomputed; nothing here is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LEVELS = [
    {"name": "平安新人", "min_points": 0},
    {"name": "平安志愿者", "min_points": 100},
    {"name": "平安卫士", "min_points": 300},
    {"name": "平安先锋", "min_points": 800},
    {"name": "平安标兵", "min_points": 2000},
]

# Badge rules the code knows; a pack picks names and which of them a town uses.
BADGE_RULES = {
    "first_checkin": "first check-in",
    "first_patrol": "first patrol",
    "patrols_10": "ten patrols",
    "pledge_signed": "signed an anti-fraud pledge",
    "three_months": "earned points three months in a row",
    "first_report": "first accepted report",
}
DEFAULT_BADGES = [
    {"rule": "first_checkin", "name": "初次签到"},
    {"rule": "first_patrol", "name": "初次巡逻"},
    {"rule": "patrols_10", "name": "巡逻十次"},
    {"rule": "pledge_signed", "name": "反诈承诺"},
    {"rule": "three_months", "name": "连续三月"},
]


@dataclass(frozen=True)
class Level:
    name: str
    next_name: str | None
    to_next: int
    progress_percent: int


def level_for(lifetime: int, levels: list[dict] | None = None) -> Level:
    ladder = sorted(levels or DEFAULT_LEVELS, key=lambda lv: lv["min_points"])
    index = max((i for i, lv in enumerate(ladder) if lifetime >= lv["min_points"]), default=0)
    current = ladder[index]
    if index + 1 >= len(ladder):
        return Level(current["name"], None, 0, 100)
    upcoming = ladder[index + 1]
    span = upcoming["min_points"] - current["min_points"]
    percent = int(100 * (lifetime - current["min_points"]) / span) if span else 100
    return Level(current["name"], upcoming["name"], upcoming["min_points"] - lifetime, percent)


@dataclass(frozen=True)
class Facts:
    """What badge rules look at, gathered by boards.queries.badge_facts."""

    checkins: int
    patrols: int
    pledges: int
    reports: int
    months_in_a_row: int


def badges_for(facts: Facts, badges: list[dict] | None = None) -> list[str]:
    earned = {
        "first_checkin": facts.checkins >= 1,
        "first_patrol": facts.patrols >= 1,
        "patrols_10": facts.patrols >= 10,
        "pledge_signed": facts.pledges >= 1,
        "three_months": facts.months_in_a_row >= 3,
        "first_report": facts.reports >= 1,
    }
    return [b["name"] for b in (badges or DEFAULT_BADGES) if earned.get(b["rule"])]
