"""Commands that change points: one change (`post_entry`), a check-in's claim and credit
(`post_checkin`), a committee's correction (`adjust_points`). Their statements are
ledger/writer.py's, which the check-in batch (ledger/batch.py) runs too.

`post_entry` runs inside the caller's transaction. The caller claims its action first with
a unique row of its own (a check-in, a redemption …); the entry's unique `idem_key` is the
backstop. On PostgreSQL an IntegrityError aborts the transaction, so callers catch it
outside `in_transaction()` and replay the original outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_over
from torreya.db import now
from torreya.errors import ConflictError, ForbiddenError
from torreya.ledger import writer
from torreya.ledger.caps import caps_of
from torreya.models import EarningRule, LedgerEntry, Role, User
from torreya.ops import metrics
from torreya.outbox.service import Message, emit
from torreya.signin.family import Acting, memo_mark


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
    # A family helper acting for `user` in this request (signin/family.py Acting): the entry
    # is marked as theirs (proxy, memo) and the audit trail names them.
    helper: Acting | None = None


async def post_entry(posting: Posting, connection: BaseDBAsyncClient, *,
                     also: Sequence[Message] = ()) -> LedgerEntry:
    """Apply one change of points inside the caller's transaction (ledger/writer.py `post`),
    with the caller's own outbox messages in `also` (one statement). The entry's
    `ledger.entry_created` message is written by the database in the entry's own INSERT (a
    trigger, migration 0013).

    Raises InsufficientPointsError (balance would go negative) or CapReachedError; either
    way the caller's transaction rolls back and nothing is written.
    """
    user, helper = posting.user, posting.helper
    if helper is not None and helper.member_id != user.id:
        helper = None  # a helper acts for their member only
    memo = memo_mark(posting.memo, helper) if helper is not None else posting.memo
    earned = posting.earned and posting.delta > 0
    columns = {
        "user_id": user.id, "town_id": user.town_id, "delta": posting.delta,
        "kind": posting.kind, "memo": memo[:200], "source_type": posting.source_type,
        "source_id": posting.source_id, "idem_key": posting.idem_key,
        "actor_id": posting.actor.id if posting.actor else None,
        "proxy": posting.proxy or helper is not None, "counts_as_earned": earned,
        "created_at": posting.at or now(),
    }
    # Raw statements on the hottest path (every check-in): the ORM's query building cost
    # more than the statements themselves. The unique idem_key raises IntegrityError.
    balance, entry_id = await writer.run(connection, writer.post(
        columns, village_id=user.village_id,
        caps=caps_of(posting.rule) if posting.rule is not None else None))
    entry = LedgerEntry(id=entry_id, balance_after=balance, **columns)
    entry._saved_in_db = True
    metrics.entries(posting.kind)
    await emit(connection, *also)
    if helper is not None:  # 亲属代办: the entry says so, and so does the audit trail
        await audit.record(user, "signin:helper:act", connection=connection,
                           subject=f"user:{user.id}", village_id=user.village_id,
                           entry_id=entry.id, data={"kind": posting.kind, "delta": posting.delta})
    user.balance = balance
    if earned:
        user.lifetime_points += posting.delta
    return entry


async def post_checkin(connection: BaseDBAsyncClient, posting: Posting, *, event_id: int,
                         method: str, staff: User | None) -> tuple[int, LedgerEntry]:
    """A check-in's claim and its credit, inside the caller's transaction: (check-in id,
    entry). Raises AlreadyCheckedInError or CapReachedError; the caller's transaction must
    then roll back. The batch (ledger/batch.py) writes the same steps."""
    checkin_id = await writer.run(connection, writer.claim_checkin({
        "event_id": event_id, "user_id": posting.user.id, "method": method,
        "staff_id": staff.id if staff else None, "points": posting.delta,
        "created_at": posting.at or now()}))
    return checkin_id, await post_entry(posting, connection)


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
