"""Commands that change points. The only writer of ledger entries, balances and totals.

`post_entry` runs inside the caller's transaction. The caller claims its action first with
a unique row of its own (a check-in, a redemption …); the entry's unique `idem_key` is the
backstop. On PostgreSQL an IntegrityError aborts the transaction, so callers catch it
outside `in_transaction()` and replay the original outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_over
from torreya.db import fetch, now
from torreya.errors import ConflictError, ForbiddenError
from torreya.i18n import lazy_gettext
from torreya.ledger.caps import caps_of, within_caps
from torreya.ledger.periods import CAP_PERIODS, period_key, total_keys
from torreya.models import EarningRule, LedgerEntry, Role, User
from torreya.outbox.service import Message, emit
from torreya.signin.family import memo_mark
from torreya.trust import encoding, sealing


class InsufficientPointsError(ConflictError):
    code = "insufficient_points"
    message = "Not enough points."


class CapReachedError(ConflictError):
    code = "cap_reached"
    message = "The limit for this activity is reached: at most %(cap)s points per %(period)s."


class DuplicateActionError(ConflictError):
    code = "duplicate"
    message = "This was already done."


@dataclass(frozen=True, kw_only=True)
class Posting:
    """A change of points a command asks the ledger to make: a credit (delta > 0: earned,
    refunded, awarded) or a debit (delta < 0: a redemption, a correction)."""

    user: User
    delta: int
    kind: str
    idem_key: str
    memo: str = ""
    source_type: str | None = None
    source_id: int | None = None
    actor: User | None = None
    proxy: bool = False
    # Earned credits raise lifetime points and the period totals (boards, caps).
    earned: bool = False
    rule: EarningRule | None = None
    # Only for loading history (demo, generators); live commands use the clock.
    at: datetime | None = None


async def post_entry(posting: Posting, connection: BaseDBAsyncClient, *,
                     also: Sequence[Message] = ()) -> LedgerEntry:
    """Apply one change of points inside the caller's transaction, with the caller's own
    outbox messages in `also` (one statement). The entry's `ledger.entry_created` message
    is written by the database in the entry's own INSERT (a trigger, migration 0013).

    Raises InsufficientPointsError (balance would go negative) or CapReachedError; either
    way the caller's transaction rolls back and nothing is written.
    """
    user = posting.user
    helper = audit.acting_helper.get()
    if helper is not None and helper.member_id == user.id:  # 亲属代办: the entry says so
        posting = replace(posting, memo=memo_mark(posting.memo, helper), proxy=True)
    earned = posting.delta if posting.earned and posting.delta > 0 else 0
    # The row lock taken here serialises concurrent changes of one account (PostgreSQL);
    # the WHERE clause is the guard against overdraft, not an earlier read.
    rows = await fetch(
        connection,
        "UPDATE users SET balance = balance + ?, lifetime_points = lifetime_points + ?"
        " WHERE id = ? AND balance + ? >= 0 RETURNING balance",
        [posting.delta, earned, user.id, posting.delta],
    )
    if not rows:
        raise InsufficientPointsError()
    balance_after = int(rows[0]["balance"])
    moment = posting.at or now()
    if earned:
        await _add_to_totals(connection, posting, earned, moment)
    values = {
        "user_id": user.id, "town_id": user.town_id, "delta": posting.delta,
        "balance_after": balance_after, "kind": posting.kind, "memo": posting.memo[:200],
        "source_type": posting.source_type, "source_id": posting.source_id,
        "idem_key": posting.idem_key, "actor_id": posting.actor.id if posting.actor else None,
        "proxy": posting.proxy, "counts_as_earned": bool(earned), "created_at": moment,
    }
    values["seal"] = encoding.seal(sealing.key(), values)  # what lets the chainer link it
    # Raw INSERT on the hottest path (every check-in): the ORM's query building cost more
    # than the statement itself. The unique idem_key raises IntegrityError to the caller.
    rows = await fetch(
        connection,
        f"INSERT INTO ledger_entries ({', '.join(values)})"
        f" VALUES ({', '.join('?' * len(values))}) RETURNING id",
        list(values.values()),
    )
    entry = LedgerEntry(id=rows[0]["id"], **values)
    entry._saved_in_db = True
    await emit(connection, *also)
    if helper is not None and posting.proxy and helper.member_id == user.id:
        await audit.record(user, "signin:helper:act", connection=connection,
                           subject=f"user:{user.id}", village_id=user.village_id,
                           entry_id=entry.id, data={"kind": posting.kind, "delta": posting.delta})
    user.balance = balance_after
    user.lifetime_points += earned
    return entry


async def _add_to_totals(connection, posting: Posting, earned: int, moment) -> None:
    keys = total_keys(posting.kind, moment)
    values: list[object] = []
    for kind, period in keys:
        values += [posting.user.id, posting.user.town_id, posting.user.village_id, kind, period,
                   earned]
    rows_sql = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(keys))
    rows = await fetch(
        connection,
        "INSERT INTO earning_totals (user_id, town_id, village_id, kind, period, total)"
        f" VALUES {rows_sql} ON CONFLICT (user_id, kind, period)"
        " DO UPDATE SET total = earning_totals.total + excluded.total"
        " RETURNING kind, period, total",
        values,
    )
    rule = posting.rule
    if rule is None:
        return
    after = {(r["kind"], r["period"]): int(r["total"]) for r in rows}
    # What was earned before this posting, per capped period: the totals it just raised.
    before = {period: after[(posting.kind, period_key(period, moment))] - earned
              for period in CAP_PERIODS}
    caps = caps_of(rule)
    if not within_caps(caps, before, earned):
        period = next(p for p, cap in caps.items()
                      if cap is not None and before[p] + earned > cap)
        raise CapReachedError(cap=caps[period], period=lazy_gettext(period))


async def adjust_points(
    *, actor: User, target: User, delta: int, memo: str, proxy: bool = False
) -> LedgerEntry:
    """A committee's manual correction or award. Needs a memo; audited in the same
    transaction. Retries are made harmless by the caller's idempotency key
    (`torreya.idempotency`), not here.

    Raises NotFoundError/ForbiddenError (reach), InsufficientPointsError.
    """
    require_over(actor, target, Role.VILLAGE_ADMIN)
    if actor.id == target.id:
        raise ForbiddenError("You cannot adjust your own points.")
    if target.role != Role.RESIDENT:
        raise ConflictError("This account holds no points.", code="invalid_state")
    async with in_transaction() as connection:
        entry = await post_entry(
            Posting(user=target, delta=delta, kind="adjustment", memo=memo,
                   idem_key=f"adjust:{uuid.uuid4().hex}", actor=actor, proxy=proxy,
                   earned=delta > 0),
            connection,
        )
        await audit.record(actor, "ledger:adjustment:create", connection=connection,
                           subject=f"user:{target.id}", town_id=target.town_id,
                           village_id=target.village_id, entry_id=entry.id,
                           data={"delta": delta, "memo": memo, "entry": entry.id,
                                 "proxy": proxy})
    return entry
