"""Events and check-ins: every way of proving presence ends in `credit_check_in` (through
`_check_in` online; the offline sync calls it in its own savepoint), whose writes are the
ledger's (ledger.service.post_checkin)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_over, require_village
from torreya.checkins import express, signed
from torreya.checkins.checkout import LATE, check_out
from torreya.checkins.codes import CodeError, member_code, read_checkin_token
from torreya.checkins.events import event_by_id, is_open
from torreya.db import now
from torreya.errors import ConflictError, DomainError, ForbiddenError, InvalidRequestError
from torreya.ledger.rules import rule_for
from torreya.ledger.service import Posting, post_checkin
from torreya.ledger.writer import AlreadyCheckedInError
from torreya.models import (
    CheckinRefusal,
    EarningRule,
    Event,
    LedgerEntry,
    Role,
    User,
    Village,
)
from torreya.models.checkins import QrMode
from torreya.ops import metrics
from torreya.security import AccessClaims
from torreya.settings import Settings
from torreya.signin.family import Acting
from torreya.templating import local_time

EVENT_KINDS = ("campaign", "training", "home_visit", "meeting", "drill", "other")


class InvalidTokenError(DomainError):
    status = 400
    code = "invalid_token"
    message = "This code is not valid for check-in."


class TokenExpiredError(DomainError):
    status = 410
    code = "token_expired"
    message = "This code has expired. Please scan the current one."


class EventNotOpenError(ConflictError):
    code = "event_not_open"
    message = "Check-in for this event is not open now."


def not_open_error(event: Event, moment: datetime | None = None) -> EventNotOpenError:
    """Say when: it opens at …, or it ended at … (there is no newer code to scan)."""
    moment = moment or now()
    if moment < event.starts_at:
        return EventNotOpenError("Check-in for this event opens at %(time)s.",
                                 time=local_time(event.starts_at))
    return EventNotOpenError("This event ended at %(time)s.", time=local_time(event.ends_at))


def expired_error(event: Event | None) -> DomainError:
    """An expired code: of an event that is over, say so (token_expired still, the API's
    code); of a rotating screen whose event goes on, point to the screen."""
    if event is not None and now() > event.ends_at:
        return TokenExpiredError("This event ended at %(time)s.",
                                 time=local_time(event.ends_at))
    return TokenExpiredError()


async def upcoming_events(village_id: int | None, *, limit: int = 3) -> list[Event]:
    """The village's events that are open or still to come, soonest first."""
    if village_id is None:
        return []
    return await Event.filter(village_id=village_id, ends_at__gt=now()).order_by(
        "starts_at").limit(limit)


@dataclass(frozen=True)
class CheckinResult:
    id: int  # the check-in's
    event: Event
    user_id: int
    points: int
    balance: int
    # A check-out (an event with `checkout`, the resident's later scan): when, and the
    # minutes attended so far; `points` is then what the check-out paid.
    checked_out_at: datetime | None = None
    minutes: int | None = None

    @property
    def is_checkout(self) -> bool:
        return self.checked_out_at is not None


async def create_event(
    *, actor: User, village: Village, title: str, kind: str, points: int,
    starts_at: datetime, ends_at: datetime, qr_mode: str, place: str = "",
    remind_day_before: bool = False, checkout: bool = False, points_per_hour: int = 0,
) -> Event:
    require_village(actor, village, Role.VILLAGE_ADMIN)
    if ends_at <= starts_at:
        raise InvalidRequestError("The end must be after the start.", field="ends_at")
    if points_per_hour and not checkout:
        raise InvalidRequestError("Points per hour need check-out: tick it, or set them to 0.",
                                  field="points_per_hour")
    async with in_transaction() as connection:
        event = await Event.create(
            village=village, town_id=village.town_id, title=title, kind=kind, points=points,
            starts_at=starts_at, ends_at=ends_at, qr_mode=QrMode(qr_mode), place=place,
            remind_day_before=bool(remind_day_before), checkout=bool(checkout),
            points_per_hour=points_per_hour, created_by=actor, using_db=connection,
        )
        await audit.record(actor, "checkins:event:create", connection=connection,
                           subject=f"event:{event.id}", town_id=village.town_id,
                           village_id=village.id,
                           data={"title": title, "points": points, "qr_mode": qr_mode,
                                 "remind_day_before": bool(remind_day_before),
                                 "checkout": bool(checkout),
                                 "points_per_hour": points_per_hour})
    return event


async def _refuse(error: DomainError, *, method: str, event: Event | None, user: User | None,
                  village_id: int | None = None) -> DomainError:
    metrics.checkin(error.code)
    await CheckinRefusal.create(event=event, user=user, method=method, reason=error.code,
                                village_id=event.village_id if event else village_id)
    return error


async def check_in(settings: Settings, *, token: str, login: AccessClaims,
                   person: Callable[[], Awaitable[tuple[User, Acting | None]]]
                   ) -> CheckinResult:
    """A resident scanned a poster or rotating code: the one command, for the API and the
    page alike. The code is read once and the event once; a scan that simply succeeds is
    written in the next batch (checkins/express.py) without reading the user; anything
    else, a family helper's too (`login.helper_id`), takes the ordinary path, which reads
    the person (`person()`: the caller's own check of the login, and the family helper
    acting for them, if any), says why and logs it.

    Raises invalid_token, token_expired, event_not_open, forbidden (another town),
    already_checked_in, cap_reached. Every refusal is logged for the committee.
    """
    try:
        code = read_checkin_token(settings, token)
    except CodeError as exc:
        user, helper = await person()
        event = await event_by_id(exc.event_id) if exc.event_id else None
        if exc.code == "token_expired" and leaving_late(event):
            # The poster's code ends with the event; leaving is still recorded after it.
            return await _check_in(event, user, method="static", staff=None, helper=helper)
        error = InvalidTokenError() if exc.code == "invalid_token" else expired_error(event)
        raise await _refuse(error, method="token", event=event, user=user,
                            village_id=user.village_id) from None
    event = await event_by_id(code.event_id)
    # A poster code of an event switched to rotating codes is no longer valid.
    valid = event is not None and event.qr_mode == code.mode
    if valid and login.helper_id is None:
        written = await express.check_in(event, mode=code.mode, login=login)
        if written is not None:
            metrics.checkin("created")
            return CheckinResult(written[0], event, login.user_id, event.points, written[1])
    user, helper = await person()
    if not valid:
        raise await _refuse(InvalidTokenError(), method="token", event=event, user=user)
    return await _check_in(event, user, method=code.mode, staff=None, helper=helper)


async def check_in_member(settings: Settings, *, staff: User, event: Event,
                          member_code_text: str) -> CheckinResult:
    """Staff scanned (or typed) a resident's member card for this event."""
    village = await Village.get(id=event.village_id)
    require_village(staff, village, Role.STAFF)
    parsed = await signed.member_of(settings, member_code_text)
    resident = await User.get_or_none(id=parsed[0]) if parsed else None
    if resident is None or parsed is None or resident.card_serial != parsed[1]:
        raise await _refuse(InvalidTokenError("This member card is not valid."),
                            method="card", event=event, user=resident)
    return await _check_in(event, resident, method="card", staff=staff)


async def _check_in(event: Event, user: User, *, method: str, staff: User | None,
                    helper: Acting | None = None) -> CheckinResult:
    if event.checkout:
        left = await _check_out(event, user, method=method, staff=staff, helper=helper)
        if left is not None:
            return left
    try:
        may_check_in(event, user)
    except DomainError as error:
        raise await _refuse(error, method=method, event=event, user=user) from None
    rule = await rule_for(event.town_id, "checkin")
    try:
        async with in_transaction() as connection:
            checkin_id, _entry = await credit_check_in(connection, event, user, rule=rule,
                                                       method=method, staff=staff,
                                                       helper=helper)
    except IntegrityError:  # the ledger's idem_key: another request credited it meanwhile
        raise await _refuse(AlreadyCheckedInError(), method=method, event=event,
                            user=user) from None
    except DomainError as error:  # already checked in, cap_reached: nothing was written
        raise await _refuse(error, method=method, event=event, user=user) from None
    metrics.checkin("created")
    return CheckinResult(checkin_id, event, user.id, event.points, user.balance)


def leaving_late(event: Event | None) -> bool:
    """A poster of an event with check-out, scanned after the event, within the hours a
    check-out is still taken (checkins/checkout.py LATE)."""
    return (event is not None and event.checkout and event.qr_mode == QrMode.STATIC
            and event.ends_at < now() <= event.ends_at + LATE)


async def _check_out(event: Event, user: User, *, method: str, staff: User | None,
                     helper: Acting | None) -> CheckinResult | None:
    """The scan as the resident's check-out (checkins/checkout.py); None: they have not
    checked in, so it is their check-in."""
    try:
        may_take_part(event, user)
        async with in_transaction() as connection:
            left = await check_out(connection, event, user, method=method,
                                            staff=staff, helper=helper)
    except DomainError as error:
        raise await _refuse(error, method=method, event=event, user=user) from None
    if left is None:
        return None
    metrics.checkin("checked_out")
    return CheckinResult(left.checkin_id, event, user.id, left.points, left.balance,
                         checked_out_at=left.checked_out_at, minutes=left.minutes)


def may_take_part(event: Event, user: User) -> None:
    if user.role != Role.RESIDENT or user.town_id != event.town_id or not user.is_active:
        raise ForbiddenError("Only residents of this town can check in here.")


def may_check_in(event: Event, user: User) -> None:
    """Raises why `user` may not check in to `event` now (`now()`: a replayed moment too)."""
    may_take_part(event, user)
    if not is_open(event):
        raise not_open_error(event)


async def credit_check_in(connection, event: Event, user: User, *, rule: EarningRule,
                          method: str, staff: User | None, helper: Acting | None = None,
                          audit_data: dict | None = None) -> tuple[int, LedgerEntry]:
    """The check-in's writes (ledger.service.post_checkin), inside the caller's
    transaction (who has checked that the resident may check in and the event is open):
    (check-in id, entry). Raises AlreadyCheckedInError or CapReachedError; the caller's
    transaction must then roll back."""
    checkin_id, entry = await post_checkin(connection, Posting(
        user=user, delta=event.points, kind="checkin", memo=event.title,
        idem_key=f"checkin:{event.id}:{user.id}", source_type="event", source_id=event.id,
        actor=staff or user, proxy=staff is not None, earned=True, rule=rule, helper=helper),
        event_id=event.id, method=method, staff=staff)
    if staff is not None:
        await audit.record(staff, "checkins:checkin:proxy", connection=connection,
                           subject=f"user:{user.id}", town_id=event.town_id,
                           village_id=event.village_id, entry_id=entry.id,
                           data={"event": event.id, "points": event.points,
                                 **(audit_data or {})})
    return checkin_id, entry


async def reissue_card(settings: Settings, *, actor: User, resident: User) -> str:
    """Revoke the resident's card and return the new code. The old card stops working."""
    if actor.id != resident.id:
        require_over(actor, resident, Role.STAFF)
    async with in_transaction() as connection:
        updated = await User.filter(id=resident.id).using_db(connection).update(
            card_serial=F("card_serial") + 1)
        if updated:
            resident.card_serial += 1
        await audit.record(actor, "checkins:card:reissue", connection=connection,
                           subject=f"user:{resident.id}", town_id=resident.town_id,
                           village_id=resident.village_id)
    return member_code(settings, user_id=resident.id, serial=resident.card_serial)
