"""API: events, check-in codes and check-ins."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request

from torreya.accounts.permissions import require_village
from torreya.accounts.service import resolve_village
from torreya.api.registry import endpoint, json
from torreya.checkins import service
from torreya.checkins.codes import checkin_url, current_code, poster_token
from torreya.errors import NotFoundError
from torreya.models import Event, Role, Village
from torreya.validation import Field
from torreya.web import require_user

CHECKIN_ERRORS = ["invalid_token", "token_expired", "event_not_open", "already_checked_in",
                  "cap_reached", "forbidden"]


def event_json(request: Request, event: Event) -> dict:
    settings = request.app.state.settings
    url = None
    if event.qr_mode == "static":
        url = checkin_url(settings, poster_token(settings, event_id=event.id,
                                                 ends_at=event.ends_at))
    return {"id": event.id, "village_id": event.village_id, "title": event.title,
            "kind": event.kind, "points": event.points, "place": event.place,
            "starts_at": event.starts_at.isoformat(), "ends_at": event.ends_at.isoformat(),
            "qr_mode": str(event.qr_mode), "remind_day_before": event.remind_day_before,
            "checkin_url": url}


async def event_for_staff(request: Request) -> Event:
    user = await require_user(request)
    event = await Event.get_or_none(id=request.path_params["id"])
    village = await Village.get_or_none(id=event.village_id) if event else None
    if event is None or village is None:
        raise NotFoundError()
    require_village(user, village, Role.STAFF)
    return event


@endpoint("POST", "/villages/{id:id}/events", idempotent=True,
          returns=("id:int village_id:int title kind points:int place starts_at:time "
                   "ends_at:time qr_mode remind_day_before:bool checkin_url:str?"),
          summary="Create an event with QR check-in",
          status=201, tag="checkins",
          body=[Field(name="title", max_length=120), Field(name="kind", max_length=24,
                                                           choices=service.EVENT_KINDS),
                Field(name="points", type=int, minimum=0, maximum=10_000),
                Field(name="starts_at", type=datetime), Field(name="ends_at", type=datetime),
                Field(name="qr_mode", choices=["static", "rotating"], max_length=16),
                Field(name="place", max_length=120, required=False),
                Field(name="remind_day_before", type=bool, required=False)],
          errors=["forbidden", "not_found", "invalid_request"])
async def create_event(request: Request, body: dict) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    event = await service.create_event(actor=actor, village=village, **body)
    return json(event_json(request, event), 201)


@endpoint("GET", "/events/{id:id}/checkin-code", returns="token url expires_at:time",
          summary="The code to show now", tag="checkins",
          errors=["forbidden", "not_found"])
async def checkin_code(request: Request, body: dict) -> object:
    event = await event_for_staff(request)
    settings = request.app.state.settings
    token, expires = current_code(settings, event_id=event.id, qr_mode=event.qr_mode,
                                  ends_at=event.ends_at)
    return json({"token": token, "url": checkin_url(settings, token),
                 "expires_at": expires.isoformat()})


@endpoint("POST", "/checkins", returns="id:int event_id:int points:int balance:int",
          summary="Check in with a scanned code", status=201, tag="checkins",
          body=[Field(name="token", max_length=2048)], errors=CHECKIN_ERRORS)
async def check_in(request: Request, body: dict) -> object:
    user = await require_user(request)
    result = await service.check_in_with_token(request.app.state.settings, user=user,
                                               token=body["token"])
    return json({"id": result.checkin.id, "event_id": result.event.id,
                 "points": result.checkin.points, "balance": result.balance}, 201)


@endpoint("POST", "/events/{id:id}/checkins",
          returns="id:int event_id:int user_id:int points:int balance:int",
          summary="Staff check a resident in by member card",
          status=201, tag="checkins", body=[Field(name="member_code", max_length=200)],
          errors=CHECKIN_ERRORS + ["not_found"])
async def staff_check_in(request: Request, body: dict) -> object:
    event = await event_for_staff(request)
    result = await service.check_in_member(request.app.state.settings,
                                           staff=request.state.user, event=event,
                                           member_code_text=body["member_code"])
    return json({"id": result.checkin.id, "event_id": event.id,
                 "user_id": result.checkin.user_id, "points": result.checkin.points,
                 "balance": result.balance}, 201)


@endpoint("GET", "/events/{id:id}/offline-kit",
          returns="event:obj keys:list revoked:obj made_at:time",
          summary="What a staff phone keeps to scan this event without signal: the town's "
                  "public keys, the revocation list, the event", tag="checkins",
          errors=["forbidden", "not_found"])
async def offline_kit(request: Request, body: dict) -> object:
    from torreya.checkins import offline

    user = await require_user(request, Role.STAFF)
    return json(await offline.kit(request.app.state.settings, staff=user,
                                  event_id=request.path_params["id"]))


@endpoint("POST", "/events/{id:id}/offline-scans", returns="results:list",
          summary="Sync the scans a staff phone queued offline: each applied once, judged at "
                  "the time it was made; the outcome of each", tag="checkins",
          errors=["forbidden", "not_found", "invalid_request"])
async def offline_scans(request: Request, body: dict) -> object:
    from torreya.checkins import offline
    from torreya.validation import read_json

    user = await require_user(request, Role.STAFF)
    scans = offline.read_batch(await read_json(request, None))
    results = await offline.sync(request.app.state.settings, staff=user,
                                 event_id=request.path_params["id"], scans=scans)
    return json({"results": results})
