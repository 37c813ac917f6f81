"""Leaderboards from the period totals kept with each ledger entry; never a GROUP BY over
the ledger at request time. Ties share a rank (1, 1, 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tortoise import connections

from torreya.boards.kept import Kept, Made, forget_all
from torreya.boards.levels import Facts
from torreya.db import fetch, now, reading
from torreya.i18n import current_language
from torreya.i18n import gettext as _
from torreya.ledger.periods import ALL_KINDS, period_key
from torreya.masking import mask_name
from torreya.models import (
    EarningTotal,
    Event,
    LedgerEntry,
    PledgeSignature,
    User,
)

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


async def public_whats(entries: list[LedgerEntry]) -> list[str]:
    """What a screen anyone can see (the big screen, SPEC §3) says each entry was for: the
    event's title for a check-in, else only the kind ("隐患上报", "巡逻"). Never a memo: a
    report's memo is its text, an adjustment's the clerk's reason, a family helper's act
    names the helper, and in a village of 40 a masked name beside them is a person."""
    events = {e.source_id for e in entries if e.source_type == "event" and e.source_id}
    titles = dict(await Event.filter(id__in=events).values_list("id", "title")) \
        if events else {}
    return [titles.get(e.source_id) if e.source_type == "event" and e.source_id in titles
            else _(e.kind) for e in entries]


async def rank_residents(*, scope: str, scope_id: int, period: str, limit: int = 20,
                         viewer: User | None = None, moment: datetime | None = None,
                         keep: float = 0) -> tuple[list[BoardRow], BoardRow | None]:
    """Top `limit` of a village, town or group for the period, and the viewer's own row
    (also when it is below the top). `keep`: seconds this worker may answer with a top it
    worked out that long ago (BOARD_CACHE_SECONDS; the viewer's own row is always fresh)."""
    key = period_key(period, moment or now())
    top = await _top((scope, scope_id, key, limit), keep)
    if viewer is not None:
        top = [replace(row, is_viewer=row.user_id == viewer.id) for row in top]
    mine = next((r for r in top if r.is_viewer), None)
    if viewer is not None and mine is None:
        mine = await _own_row(scope, scope_id, key, viewer)
    return top, mine


async def _own_row(scope: str, scope_id: int, key: str, viewer: User) -> BoardRow | None:
    """The viewer's row below the top: their total and how many are above it, on the board's
    own terms (`_on_board`), read on the primary (always fresh)."""
    connection = connections.get("default")
    where, values = _on_board(scope, scope_id, key)
    own = await fetch(connection, f"SELECT t.total FROM earning_totals t WHERE {where}"
                      " AND t.user_id = ?", [*values, viewer.id])
    if not own:
        return None
    total = int(own[0]["total"])
    above = await fetch(connection, "SELECT COUNT(*) AS n FROM earning_totals t"
                        f" WHERE {where} AND t.total > ?", [*values, total])
    return BoardRow(int(above[0]["n"]) + 1, viewer.id, public_name(viewer), total, True)


def is_kept(*, scope: str, scope_id: int, period: str, limit: int, keep: float) -> bool:
    """Whether this worker holds the board's top, fresh: then its subject was found a few
    seconds ago, and the API answers without looking it up again."""
    return _TOPS.fresh((scope, scope_id, period_key(period, now()), limit), keep)


# The tops of boards this worker worked out lately: (scope, id, period key, limit) → [(rank,
# user id, masked name or None for a hidden resident, points, lifetime points)]; their rows
# in each language (a hidden resident is named in the reader's), and the API's answers.
_TOPS = Kept()
_ROWS = Made()
_RENDERED = Made()


async def _top(key: tuple, keep: float) -> list[BoardRow]:
    top = await _TOPS.get(key, keep, lambda: _work_out(key))
    if keep <= 0:
        return _rows(top)
    return _ROWS.of((key, current_language.get()), top, _rows)


def _rows(top: list[tuple]) -> list[BoardRow]:
    hidden = _("Anonymous resident")
    return [BoardRow(rank, user_id, hidden if name is None else name, points, False, lifetime)
            for rank, user_id, name, points, lifetime in top]


_SCOPES = {"village": "t.village_id = ?", "town": "t.town_id = ?",
           "group": "t.user_id IN (SELECT m.user_id FROM group_members m"
                    " WHERE m.group_id = ? AND m.approved = ?)"}


def _on_board(scope: str, scope_id: int, key: str) -> tuple[str, list]:
    """Who is on a board (the totals `t` of everyone of the scope who earned in the period),
    as SQL and its values: the one definition the top and the viewer's row both read."""
    return (f"t.kind = ? AND t.period = ? AND t.total > 0 AND {_SCOPES[scope]}",
            [ALL_KINDS, key, scope_id] + ([True] if scope == "group" else []))


async def _work_out(key: tuple) -> list[tuple]:
    """The top of a board, read in one statement with its residents' names (no models:
    a worker reads each of a town's 300 villages' tops every few seconds)."""
    scope, scope_id, period, limit = key
    where, values = _on_board(scope, scope_id, period)

    async def read(connection) -> list[dict]:
        return await fetch(connection, (
            "SELECT t.user_id, t.total, u.display_name, u.hide_from_boards,"
            " u.lifetime_points FROM earning_totals t JOIN users u ON u.id = t.user_id"
            f" WHERE {where} ORDER BY t.total DESC, t.user_id DESC LIMIT ?"), [*values, limit])

    # A board may lag a second: its top is read on the replica when there is one
    # (the viewer's own row, above, stays on the primary: always fresh).
    top: list[tuple] = []
    for position, entry in enumerate(await reading(read), start=1):
        rank = top[-1][0] if top and top[-1][3] == entry["total"] else position
        top.append((rank, entry["user_id"], None if entry["hide_from_boards"] else
                    mask_name(entry["display_name"]), entry["total"],
                    entry["lifetime_points"]))
    return top


async def rendered_top(*, scope: str, scope_id: int, period: str, limit: int, keep: float,
                       render: Callable[[list[BoardRow]], bytes]) -> bytes:
    """The board as anyone sees it (no viewer's row), rendered by `render` once per kept top
    and language: the public API's answer, not rebuilt for every request that reads it."""
    rows, _mine = await rank_residents(scope=scope, scope_id=scope_id, period=period,
                                       limit=limit, keep=keep)
    if keep <= 0:
        return render(rows)
    return _RENDERED.of((scope, scope_id, period, limit, current_language.get()), rows, render)


def forget_boards() -> None:
    """A new database (tests, a new app): nothing kept is valid, the households' boards
    and their answers included (every store of boards/kept.py)."""
    forget_all()


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
