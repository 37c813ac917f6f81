"""Check-out (issue 34, SPEC §4.15): an event with `checkout` records leaving as well. The
resident's (or staff's, or an offline phone's) next scan after the check-in is the
check-out; the minutes between, within the event's window, are service hours, and an event
with points per hour pays them at check-out.

First in, last out: the check-in is the first scan (its row claims the event); each later
scan moves the check-out to itself, never back, so a scan sent twice, or synced late, or in
another order, counts once and the hours are those attended. A scan within ten seconds of
the check-in is the same scan. A forgotten check-out counts nothing beyond the check-in's
points, until staff record it with a reason (`correct`, audited).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_village
from torreya.db import now
from torreya.errors import ConflictError, InvalidRequestError, NotFoundError
from torreya.ledger.rules import rule_for
from torreya.ledger.service import Posting, post_entry
from torreya.ledger.writer import AlreadyCheckedInError, CapReachedError
from torreya.models import Checkin, Event, Role, User, Village
from torreya.signin.family import Acting
from torreya.templating import local_time

SAME_SCAN = timedelta(seconds=10)  # a repeat this soon after the check-in is that scan
# A check-out is still taken this long after the event ends (counted to its end): people
# leave late, and a phone offline at the end syncs later.
LATE = timedelta(hours=12)


class CheckoutBeforeCheckinError(ConflictError):
    code = "invalid_state"
    message = "This scan was made before the check-in at %(time)s, so it is not a check-out."


class CheckoutClosedError(ConflictError):
    code = "event_not_open"
    message = "This event ended at %(time)s; check-out is closed. Ask the committee to record it."


@dataclass(frozen=True)
class Checkout:
    checkin_id: int
    event: Event
    user_id: int
    checked_in_at: datetime
    checked_out_at: datetime
    minutes: int
    points: int  # what this scan paid (points per hour), 0 for most
    balance: int
    repeat: bool  # the scan changed nothing (a repeat of the check-out, or an earlier one)


def attended_minutes(event: Event, checked_in_at: datetime, checked_out_at: datetime) -> int:
    """Whole minutes between check-in and check-out, within the event's window."""
    start, end = max(checked_in_at, event.starts_at), min(checked_out_at, event.ends_at)
    return max(0, int((end - start).total_seconds() // 60))


def hour_points(event: Event, minutes: int) -> int:
    """What `minutes` earn at the event's points per hour, whole points (the patrols' rule)."""
    return minutes * event.points_per_hour // 60


async def check_out(connection, event: Event, user: User, *, method: str,
                    staff: User | None = None, helper: Acting | None = None,
                    moment: datetime | None = None) -> Checkout | None:
    """The scan as a check-out, inside the caller's transaction; None when the resident has
    not checked in (the scan is their check-in). Raises AlreadyCheckedInError (the same
    scan as the check-in), CheckoutBeforeCheckinError, CheckoutClosedError."""
    moment = moment or now()
    checkin = await Checkin.filter(event_id=event.id, user_id=user.id).using_db(
        connection).select_for_update().first()
    if checkin is None:
        return None
    if moment < checkin.created_at:
        raise CheckoutBeforeCheckinError(time=local_time(checkin.created_at))
    if moment - checkin.created_at <= SAME_SCAN:
        raise AlreadyCheckedInError()
    if checkin.checked_out_at is not None and moment <= checkin.checked_out_at:
        return _result(checkin, event, user, paid=0, repeat=True)
    if moment > event.ends_at + LATE:
        raise CheckoutClosedError(time=local_time(event.ends_at))
    return await _record(connection, checkin, event, user, moment, method=method, staff=staff,
                         helper=helper)


async def _record(connection, checkin: Checkin, event: Event, user: User, moment: datetime, *,
                  method: str, staff: User | None, helper: Acting | None = None,
                  reason: str = "") -> Checkout:
    """Move the check-out to `moment` and pay the points per hour it adds (within the caps:
    a capped resident keeps the hours, not the points)."""
    minutes = attended_minutes(event, checkin.created_at, moment)
    paid, entry_id = 0, None
    owed = hour_points(event, minutes) - checkin.hour_points
    if owed > 0:
        rule = await rule_for(event.town_id, "checkin")
        try:
            async with in_transaction() as savepoint:
                entry = await post_entry(Posting(
                    user=user, delta=owed, kind="checkin", memo=event.title,
                    idem_key=f"checkout:{event.id}:{user.id}:{minutes}", source_type="event",
                    source_id=event.id, actor=staff or user, proxy=staff is not None,
                    earned=True, rule=rule, helper=helper), savepoint)
            paid, entry_id = owed, entry.id
        except CapReachedError:
            paid = 0
    await Checkin.filter(id=checkin.id).using_db(connection).update(
        checked_out_at=moment, minutes=minutes, hour_points=checkin.hour_points + paid,
        checkout_method=method, checkout_staff_id=staff.id if staff else None)
    checkin.checked_out_at, checkin.minutes = moment, minutes
    checkin.hour_points += paid
    if staff is not None:
        await audit.record(staff, "checkins:checkout:correct" if reason
                           else "checkins:checkout:proxy", connection=connection,
                           subject=f"user:{user.id}", town_id=event.town_id,
                           village_id=event.village_id, entry_id=entry_id,
                           data={"event": event.id, "checked_out_at": moment.isoformat(),
                                 "minutes": minutes, "points": paid,
                                 **({"reason": reason} if reason else {})})
    return _result(checkin, event, user, paid=paid, repeat=False)


def _result(checkin: Checkin, event: Event, user: User, *, paid: int, repeat: bool) -> Checkout:
    return Checkout(checkin.id, event, user.id, checkin.created_at, checkin.checked_out_at,
                    checkin.minutes or 0, paid, user.balance, repeat)


async def correct(*, actor: User, event: Event, user_id: int, at: datetime,
                  reason: str) -> Checkout:
    """Staff record a forgotten (or wrong) check-out, with a reason; audited. The time is
    between the check-in and now; points per hour already paid are not taken back (an
    adjustment does that), so a correction never lowers them."""
    village = await Village.get(id=event.village_id)
    require_village(actor, village, Role.STAFF)
    reason = reason.strip()
    if not reason:
        raise InvalidRequestError("Please give a reason.", field="reason")
    if not event.checkout:
        raise ConflictError("This event does not record check-out.", code="invalid_state")
    async with in_transaction() as connection:
        checkin = await Checkin.filter(event_id=event.id, user_id=user_id).using_db(
            connection).select_for_update().first()
        if checkin is None:
            raise NotFoundError("This resident did not check in to this event.")
        if not checkin.created_at < at <= now():
            raise InvalidRequestError(
                "The check-out must be after the check-in (%(time)s) and not in the future.",
                field="at", time=local_time(checkin.created_at))
        if hour_points(event, attended_minutes(event, checkin.created_at, at)) \
                < checkin.hour_points:
            raise ConflictError("Points were already paid for a later check-out; correct them "
                                "with an adjustment.", code="invalid_state")
        user = await User.get(id=user_id).using_db(connection)
        return await _record(connection, checkin, event, user, at, method="staff",
                             staff=actor, reason=reason[:200])
