"""The statements that change points, written once (issue 27): a check-in's claim, the
balance, the period totals and the sealed ledger entry.

Each write is a generator of steps: it yields a statement with its parameters, is sent the
rows it returned (as tuples), decides, and yields the next; it raises a DomainError when the
change may not be made, and returns what was written. Two drivers run the same steps:

- `run`, awaited in the caller's Tortoise transaction, on either database: the single
  entry (`ledger.service.post_entry`) and the ordinary check-in;
- `run_here`, on SQLite's own connection in aiosqlite's thread: the check-in batch
  (ledger/batch.py), many check-ins in one hop.

So what an entry holds, how the caps are judged (ledger/caps.py) and what a check-in claims
are decided in one place for both. On PostgreSQL the batch is one call of the database
function `torreya_express_checkins` (migrations 0024-0026), which follows these steps and is
compared with them by tests (tests/checkins/test_express.py, tests/ledger/test_caps.py).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient

from torreya.db import placeholders
from torreya.errors import ConflictError
from torreya.i18n import lazy_gettext
from torreya.ledger.caps import any_cap, within_caps
from torreya.ledger.periods import CAP_PERIODS, period_key, total_keys
from torreya.trust import encoding, sealing

T = TypeVar("T")
Statement = tuple[str, list[Any]]
Steps = Generator[Statement, list[tuple], T]


class InsufficientPointsError(ConflictError):
    code = "insufficient_points"
    message = "Not enough points."


class CapReachedError(ConflictError):
    code = "cap_reached"
    message = "The limit for this activity is reached: at most %(cap)s points per %(period)s."


class AlreadyCheckedInError(ConflictError):
    code = "already_checked_in"
    message = "You have already checked in to this event."


# -- the steps ------------------------------------------------------------------------------

def claim_checkin(claim: Mapping[str, Any]) -> Steps[int]:
    """The check-in's row (`claim`: event_id, user_id, method, staff_id, points,
    created_at), which claims (event, user) before any points move; its id. A check-in
    already there raises AlreadyCheckedInError without a database error (ON CONFLICT DO
    NOTHING): on PostgreSQL an IntegrityError would abort the caller's whole transaction.
    Its `checkin.created` message is written by the INSERT itself (a trigger)."""
    rows = yield (f"INSERT INTO checkins ({', '.join(claim)})"
                  f" VALUES ({', '.join('?' * len(claim))})"
                  " ON CONFLICT (event_id, user_id) DO NOTHING RETURNING id", list(claim.values()))
    if not rows:
        raise AlreadyCheckedInError()
    return int(rows[0][0])


def post(entry: Mapping[str, Any], *, village_id: int | None,
         caps: Mapping[str, int | None] | None) -> Steps[tuple[int, int]]:
    """One change of points: the balance, then (an earned credit) the period totals and the
    caps, then the entry, sealed. `entry`: the ledger entry's columns but balance_after and
    seal; `caps` (ledger/caps.py) the rule's, or None for none. Returns (balance after,
    entry id). Raises InsufficientPointsError (the balance would go below 0) or
    CapReachedError, having written what the caller's rollback undoes."""
    user_id, delta = entry["user_id"], entry["delta"]
    earned = delta if entry["counts_as_earned"] else 0
    # The row lock taken here serialises concurrent changes of one account (PostgreSQL);
    # the WHERE clause is the guard against overdraft, not an earlier read.
    rows = yield ("UPDATE users SET balance = balance + ?, lifetime_points = lifetime_points + ?"
                  " WHERE id = ? AND balance + ? >= 0 RETURNING balance",
                  [delta, earned, user_id, delta])
    if not rows:
        raise InsufficientPointsError()
    balance = int(rows[0][0])
    if earned:
        yield from _add_to_totals(entry, village_id, earned, caps)
    row = {**entry, "balance_after": balance}
    row["seal"] = encoding.seal(sealing.key(), row)  # what lets the chainer link it
    rows = yield (f"INSERT INTO ledger_entries ({', '.join(row)})"
                  f" VALUES ({', '.join('?' * len(row))}) RETURNING id", list(row.values()))
    return balance, int(rows[0][0])


def _add_to_totals(entry: Mapping[str, Any], village_id: int | None, earned: int,
                   caps: Mapping[str, int | None] | None) -> Steps[None]:
    moment: datetime = entry["created_at"]
    keys = total_keys(entry["kind"], moment)
    values: list[object] = []
    for kind, period in keys:
        values += [entry["user_id"], entry["town_id"], village_id, kind, period, earned]
    capped = any_cap(caps)
    rows = yield ("INSERT INTO earning_totals (user_id, town_id, village_id, kind, period, total)"
                  f" VALUES {', '.join(['(?, ?, ?, ?, ?, ?)'] * len(keys))}"
                  " ON CONFLICT (user_id, kind, period)"
                  " DO UPDATE SET total = earning_totals.total + excluded.total"
                  + (" RETURNING kind, period, total" if capped else ""), values)
    if not capped:
        return
    after = {(kind, period): int(total) for kind, period, total in rows}
    # What was earned before this change, per capped period: the totals it just raised.
    before = {period: after[(entry["kind"], period_key(period, moment))] - earned
              for period in CAP_PERIODS}
    if not within_caps(caps, before, earned):
        period = next(p for p, cap in caps.items()
                      if cap is not None and before[p] + earned > cap)
        raise CapReachedError(cap=caps[period], period=lazy_gettext(period))


# -- the drivers ----------------------------------------------------------------------------

async def run(connection: BaseDBAsyncClient, steps: Steps[T]) -> T:
    """Run `steps` in the caller's transaction (Tortoise's connection, either database)."""
    try:
        sql, values = next(steps)
        while True:
            rows = await connection.execute_query_dict(placeholders(connection, sql), values)
            sql, values = steps.send([tuple(row.values()) for row in rows])
    except StopIteration as done:
        return done.value


def run_here(db, steps: Steps[T]) -> T:
    """Run `steps` on a sqlite3 connection, in its own thread (ledger/batch.py)."""
    try:
        sql, values = next(steps)
        while True:
            sql, values = steps.send(db.execute(sql, values).fetchall())
    except StopIteration as done:
        return done.value
