"""API: events, check-in codes and check-ins."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Literal

from pydantic import ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from torreya.accounts import sessions
from torreya.accounts.permissions import rank, require_village
from torreya.accounts.service import resolve_village
from torreya.api.registry import Endpoints
from torreya.api.schema import (
    Body,
    Bool,
    Id,
    Int,
    Maybe,
    Moment,
    Out,
    Query,
    QueryFrom,
    QueryTo,
    Text,
    Time,
)
from torreya.checkins import checkout, offline, service
from torreya.checkins.codes import checkin_url, current_code, poster_token
from torreya.checkins.offline import ScanBatch
from torreya.db import now
from torreya.errors import InvalidRequestError, NotFoundError
from torreya.integrity import devices
from torreya.models import Event, Role, Village
from torreya.web import require_person, require_user

CHECKIN_ERRORS = ["invalid_token", "token_expired", "event_not_open", "already_checked_in",
                  "cap_reached", "forbidden", "invalid_state"]
EventKind = Literal[service.EVENT_KINDS]  # type: ignore[valid-type]


api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


class EventIn(Body):
    title: Text(120)
    kind: EventKind
    points: Int(0, 10_000)
    starts_at: Moment
    ends_at: Moment
    qr_mode: Literal["static", "rotating"]
    place: Maybe(Text(120, required=False), "") = ""
    remind_day_before: Maybe(Bool, False) = False
    checkout: Maybe(Bool, False) = False
    points_per_hour: Maybe(Int(0, 1_000), 0) = 0


class EventOut(Out):
    id: int
    village_id: int
    title: str
    kind: EventKind
    points: int
    place: str
    starts_at: Time
    ends_at: Time
    qr_mode: Literal["static", "rotating"]
    remind_day_before: bool
    checkin_url: str | None = Field(description=(
        "The poster's check-in address for a static code (null for a rotating one, and "
        "for residents: a code is shown at the event, not sent ahead)"))
    checkout: bool = Field(description="Whether the event records leaving as well: the "
                                       "resident's later scan is the check-out")
    points_per_hour: int = Field(0, description="Paid at check-out for the minutes attended")


class EventsQuery(Query):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    since: QueryFrom | None = Field(None, alias="from", description=(
        "Events that end after this (default: 30 days ago)"))
    to: QueryTo | None = Field(None, description="Events that start before this (default: "
                                                 "a year after `from`)")


class EventList(Out):
    items: list[EventOut]


class CodeOut(Out):
    token: str
    url: str
    expires_at: Time


class CheckinIn(Body):
    token: Text(2048, markup=True, description="The code from the poster or screen (its "
                                               "URL's last part, or the whole URL)")


class CheckinOut(Out):
    id: int
    event_id: int
    points: int
    balance: int
    checked_out_at: Time | None = Field(None, description=(
        "Set when this scan was the check-out (an event with `checkout`; answered 200)"))
    minutes: int | None = Field(None, description="A check-out's minutes attended so far")


class CheckoutIn(Body):
    user_id: Id
    at: Moment
    reason: Text(200, description="Why staff record it (kept in the audit log)")


class CheckoutOut(Out):
    checkin_id: int
    event_id: int
    user_id: int
    checked_in_at: Time
    checked_out_at: Time
    minutes: int
    points: int


class MemberCheckinIn(Body):
    member_code: Text(400, markup=True, description="The member card's code, signed or typed")


class MemberCheckinOut(CheckinOut):
    user_id: int


class KitEvent(Out):
    id: int
    title: str
    town_id: int
    village_id: int
    points: int
    checkout: bool = False
    starts_at: Time
    ends_at: Time


class KitKey(Out):
    id: int
    public_key: str


class Revoked(Out):
    serials: dict[str, int]
    inactive: list[int]


class KitOut(Out):
    event: KitEvent
    keys: list[KitKey]
    revoked: Revoked
    made_at: Time


class ScanResult(Out):
    nonce: str
    outcome: Literal["credited", "checked_out", "fulfilled", "already_done", "refused"]
    repeat: bool
    kind: str | None = None
    name: str | None = None
    points: int | None = None
    scanned_at: Time | None = None
    code: str | None = None
    message: str | None = None
    minutes: int | None = Field(None, description="A check-out's minutes attended")


class ScanResults(Out):
    results: list[ScanResult]


def event_out(request: Request, event: Event, *, with_code: bool = True) -> EventOut:
    settings = request.app.state.settings
    url = None
    if event.qr_mode == "static" and with_code:
        url = checkin_url(settings, poster_token(settings, event_id=event.id,
                                                 ends_at=event.ends_at))
    return EventOut(id=event.id, village_id=event.village_id, title=event.title,
                    kind=event.kind, points=event.points, place=event.place,
                    starts_at=event.starts_at, ends_at=event.ends_at,
                    qr_mode=str(event.qr_mode), remind_day_before=event.remind_day_before,
                    checkin_url=url, checkout=event.checkout,
                    points_per_hour=event.points_per_hour)


async def event_for_staff(request: Request) -> Event:
    user = await require_user(request)
    event = await Event.get_or_none(id=request.path_params["id"])
    village = await Village.get_or_none(id=event.village_id) if event else None
    if event is None or village is None:
        raise NotFoundError()
    require_village(user, village, Role.STAFF)
    return event


@api.endpoint("POST", "/villages/{id:id}/events", idempotent=True, body=EventIn, returns=EventOut,
              summary="Create an event with QR check-in", summary_zh="创建活动（扫码签到）",
              status=201, tag="checkins", errors=["forbidden", "not_found", "invalid_request"],
              links={"checkin_code": ("checkin_code",
              {"parameters": {"id": "$response.body#/id"}})})
async def create_event(request: Request, body: EventIn) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    event = await service.create_event(actor=actor, village=village, **body.model_dump())
    return event_out(request, event)


# The widest range one request lists: a village holds a few events a week, so a year is a
# short answer, and the list is never cut short.
LONGEST_RANGE = timedelta(days=366)


@api.endpoint("GET", "/villages/{id:id}/events", query=EventsQuery, returns=EventList,
              summary="The village's events in a range, earliest first",
              summary_zh="村里某段时间的活动，按开始时间排列", tag="checkins",
              errors=["not_found", "invalid_request"],
              description="Staff of the village and its residents. An event is listed when it "
                          "overlaps the range. A range longer than 366 days is refused.")
async def list_events(request: Request, body: None) -> object:
    user = await require_user(request)
    village = await resolve_village(user, request.path_params["id"])
    params: EventsQuery = request.state.query
    since = params.since or now() - timedelta(days=30)
    until = params.to or since + LONGEST_RANGE
    if until <= since:
        raise InvalidRequestError("Field %(name)s must be after %(other)s.", field="to",
                                  name="to", other="from")
    if until - since > LONGEST_RANGE:
        raise InvalidRequestError("Field %(name)s is at most %(days)s days after %(other)s.",
                                  field="to", name="to", other="from",
                                  days=LONGEST_RANGE.days)
    # compared in UTC, as stored (SQLite compares the text)
    events = await Event.filter(village_id=village.id, ends_at__gt=since.astimezone(UTC),
                                starts_at__lt=until.astimezone(UTC)).order_by("starts_at", "id")
    staff = user.rank >= rank(Role.STAFF)
    return EventList(items=[event_out(request, e, with_code=staff) for e in events])


@api.endpoint("GET", "/events/{id:id}/checkin-code", returns=CodeOut,
              summary="The code to show now", summary_zh="当前签到码（轮换码每 30 秒更新）",
              tag="checkins", errors=["forbidden", "not_found"],
              links={"check_in": ("check_in", {"requestBody": {"token": "$response.body#/token"}})})
async def checkin_code(request: Request, body: None) -> object:
    event = await event_for_staff(request)
    settings = request.app.state.settings
    token, expires = current_code(settings, event_id=event.id, qr_mode=event.qr_mode,
                                  ends_at=event.ends_at)
    return CodeOut(token=token, url=checkin_url(settings, token), expires_at=expires)


@api.endpoint("POST", "/checkins", body=CheckinIn, returns=CheckinOut, auth="token",
              summary="Check in with a scanned code", summary_zh="居民扫码签到，积分入账",
              status=201, tag="checkins", errors=CHECKIN_ERRORS,
              description="At an event with `checkout`, the resident's later scan of its code "
                          "is the check-out: 200 with `checked_out_at` and `minutes` (a "
                          "repeat within 10 s of the check-in is that scan).")
async def check_in(request: Request, body: CheckinIn) -> object:
    claims = request.state.claims
    result = await service.check_in(request.app.state.settings, token=body.token,
                                    login=claims, person=lambda: require_person(request))
    if not result.is_checkout:
        devices.noted(request, checkin_id=result.id, event=result.event,
                      user_id=result.user_id, moment=now(), helper_id=claims.helper_id)
    await sessions.seen(claims.sid, claims.issued)
    out = CheckinOut(id=result.id, event_id=result.event.id, points=result.points,
                     balance=result.balance, checked_out_at=result.checked_out_at,
                     minutes=result.minutes)
    return answer_200(out) if result.is_checkout else out


@api.endpoint("POST", "/events/{id:id}/checkins", body=MemberCheckinIn, returns=MemberCheckinOut,
              summary="Staff check a resident in by member card",
              summary_zh="工作人员扫居民的积分卡代为签到",
              status=201, tag="checkins", errors=CHECKIN_ERRORS + ["not_found", "card_revoked"])
async def staff_check_in(request: Request, body: MemberCheckinIn) -> object:
    event = await event_for_staff(request)
    result = await service.check_in_member(request.app.state.settings,
                                           staff=request.state.user, event=event,
                                           member_code_text=body.member_code)
    out = MemberCheckinOut(id=result.id, event_id=event.id, user_id=result.user_id,
                           points=result.points, balance=result.balance,
                           checked_out_at=result.checked_out_at, minutes=result.minutes)
    return answer_200(out) if result.is_checkout else out


def answer_200(out: Out) -> Response:
    """A check-out: the same answer as a check-in's, but 200 (nothing new was created)."""
    return Response(out.__pydantic_serializer__.to_json(out), status_code=200,
                    media_type="application/json")


@api.endpoint("GET", "/events/{id:id}/offline-kit", returns=KitOut,
              summary="What a staff phone keeps to scan this event without signal: the town's "
                      "public keys, the revocation list, the event",
              summary_zh="离线扫码包：镇的公钥、作废卡名单和活动信息", tag="checkins",
              errors=["forbidden", "not_found"])
async def offline_kit(request: Request, body: None) -> object:
    user = await require_user(request, Role.STAFF)
    kit = await offline.kit(request.app.state.settings, staff=user,
                            event_id=request.path_params["id"])
    return KitOut.model_validate(kit)


@api.endpoint("POST", "/events/{id:id}/offline-scans", body=ScanBatch, returns=ScanResults,
              summary="Sync the scans a staff phone queued offline: each applied once, judged at "
                      "the time it was made; the outcome of each",
              summary_zh="同步无信号时记录的扫码：每条只办一次，按扫码时间判断", tag="checkins",
              errors=["forbidden", "not_found", "invalid_request"])
async def offline_scans(request: Request, body: ScanBatch) -> object:
    user = await require_user(request, Role.STAFF)
    scans = offline.scans_of(body)
    results = await offline.sync(request.app.state.settings, staff=user,
                                 event_id=request.path_params["id"], scans=scans)
    return ScanResults(results=results)


@api.endpoint("POST", "/events/{id:id}/checkouts", body=CheckoutIn, returns=CheckoutOut,
              summary="Staff record a resident's forgotten check-out, with a reason",
              summary_zh="工作人员补登签退（须写明原因，记入审计）", tag="checkins",
              errors=["forbidden", "not_found", "invalid_request", "invalid_state"],
              description="Between the check-in and now; the minutes count within the "
                          "event's window. Points per hour already paid are never lowered.")
async def record_checkout(request: Request, body: CheckoutIn) -> object:
    event = await event_for_staff(request)
    left = await checkout.correct(actor=request.state.user, event=event, user_id=body.user_id,
                                  at=body.at, reason=body.reason)
    return CheckoutOut(checkin_id=left.checkin_id, event_id=event.id, user_id=left.user_id,
                       checked_in_at=left.checked_in_at, checked_out_at=left.checked_out_at,
                       minutes=left.minutes, points=left.points)
