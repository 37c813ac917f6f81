"""Pages of check-in: the scanned code, posters, the rotating screen, member cards, the
staff scanner and the committee's event page."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from torreya import qr
from torreya.accounts.permissions import require_over, require_village
from torreya.api.checkins import CheckoutIn, EventIn
from torreya.api.schema import validate_form
from torreya.checkins import checkout, service, signed
from torreya.checkins.codes import (
    CodeError,
    checkin_url,
    current_code,
    member_code,
    poster_token,
    read_checkin_token,
)
from torreya.checkins.events import is_open
from torreya.db import now
from torreya.errors import DomainError, ForbiddenError, NotFoundError
from torreya.i18n import gettext as _
from torreya.integrity import devices
from torreya.ledger.queries import currency_name
from torreya.models import Checkin, CheckinRefusal, Event, Role, User, Village
from torreya.security import AccessClaims
from torreya.settings import LOCAL
from torreya.templating import duration, render
from torreya.web import (
    LoginRequired,
    current_helper,
    current_sid,
    current_user,
    flash,
    flash_error,
    pop_flashes,
    read_form,
    redirect,
    require_person,
    require_user,
    village_from_path,
)


async def checkin_page(request: Request) -> Response:
    """Where a scanned poster or screen code lands: one tap to check in. Logged out, it says
    which event and how many points wait after logging in; checked in already, it says so
    calmly, with the time, and offers no button."""
    user = await current_user(request)
    token = request.path_params["token"]
    event = None
    problem = None
    try:
        claims = read_checkin_token(request.app.state.settings, token)
        event = await Event.get_or_none(id=claims.event_id)
        if event is None:
            problem = _("This code is not valid for check-in.")
        elif not is_open(event):
            problem = (service.not_open_error(event)).text()
    except CodeError as exc:
        expired = await Event.get_or_none(id=exc.event_id) if exc.event_id else None
        problem = (service.InvalidTokenError() if exc.code == "invalid_token"
                             else service.expired_error(expired)).text()
    done = None
    if user is not None and event is not None:
        done = await Checkin.get_or_none(event_id=event.id, user_id=user.id)
    if user is None and event is None:
        raise LoginRequired()
    town_id = user.town_id if user is not None else event.town_id
    page = render(request, "checkins/checkin.html",
                  {"event": event, "token": token, "problem": None if done else problem,
                   "done": done, "anonymous": user is None,
                   "login_url": "/login?" + urlencode({"next": f"/c/{token}"}),
                   "currency": await currency_name(town_id),
                   "upcoming": await service.upcoming_events(user.village_id)
                   if problem and user is not None and not done else []})
    return devices.remember(request, page, secure=request.app.state.settings.secure_cookies)


async def poster_scanner(request: Request) -> Response:
    """A resident's own scanner, for a phone whose camera app does not open links: the
    camera (or the typed code) leads to the check-in page of the code."""
    await require_user(request)
    code = request.query_params.get("code", "").strip()
    if code:
        return redirect(f"/c/{quote(code.rstrip('/').split('/')[-1], safe='')}")
    return render(request, "checkins/scan_poster.html", {})


async def checkin_submit(request: Request) -> Response:
    user = await require_user(request)
    await read_form(request)
    token = request.path_params["token"]
    settings = request.app.state.settings
    helper = current_helper(request)  # 亲属代办 takes the ordinary path (marked)
    login = AccessClaims(user.id, user.session_generation, current_sid(request), now(),
                         helper.helper_id if helper else None)
    try:
        result = await service.check_in(settings, token=token, login=login,
                                        person=lambda: require_person(request))
    except DomainError as error:
        return render(request, "checkins/result.html",
                      {"ok": False, "message": error.text(), "code": error.code,
                       "event": None, "currency": await currency_name(user.town_id),
                       "upcoming": await service.upcoming_events(user.village_id)},
                      status=error.status)
    if not result.is_checkout:
        devices.noted(request, checkin_id=result.id, event=result.event,
                      user_id=result.user_id, moment=now(), helper_id=login.helper_id)
    return devices.remember(request, render(
        request, "checkins/result.html",
        {"ok": True, "event": result.event, "points": result.points,
         "balance": result.balance, "currency": await currency_name(user.town_id),
         "checked_out_at": result.checked_out_at, "minutes": result.minutes,
         "message": "", "code": "ok"}, status=200 if result.is_checkout else 201),
        secure=settings.secure_cookies)


async def _event_for(request: Request, minimum: Role) -> tuple[User, Event, Village]:
    user = await require_user(request, minimum)
    event = await Event.get_or_none(id=request.path_params["id"])
    village = await Village.get_or_none(id=event.village_id) if event else None
    if event is None or village is None:
        raise NotFoundError()
    require_village(user, village, minimum)
    return user, event, village


async def poster(request: Request) -> Response:
    """An A4 page to print: title, time, place, points and the QR."""
    _user, event, village = await _event_for(request, Role.STAFF)
    if event.qr_mode != "static":
        return redirect(f"/events/{event.id}/display")
    token = poster_token(request.app.state.settings, event_id=event.id, ends_at=event.ends_at)
    url = checkin_url(request.app.state.settings, token)
    return render(request, "checkins/poster.html",
                  {"event": event, "village": village, "qr_svg": qr.svg(url), "url": url,
                   "currency": await currency_name(event.town_id)})


async def poster_png(request: Request) -> Response:
    _user, event, _village = await _event_for(request, Role.STAFF)
    token = poster_token(request.app.state.settings, event_id=event.id, ends_at=event.ends_at)
    return Response(qr.png(checkin_url(request.app.state.settings, token)), media_type="image/png",
                    headers={"content-disposition": f'inline; filename="event-{event.id}.png"'})


async def poster_svg(request: Request) -> Response:
    """The poster's QR alone, as SVG, for a print shop or a banner designer."""
    _user, event, _village = await _event_for(request, Role.STAFF)
    token = poster_token(request.app.state.settings, event_id=event.id, ends_at=event.ends_at)
    return Response(qr.svg(checkin_url(request.app.state.settings, token)),
                    media_type="image/svg+xml",
                    headers={"content-disposition": f'inline; filename="event-{event.id}.svg"'})


async def display(request: Request) -> Response:
    """Full screen for a projector or tablet; static/js/rotating.js swaps the code."""
    _user, event, village = await _event_for(request, Role.STAFF)
    return render(request, "checkins/display.html",
                  {"event": event, "village": village,
                   "seconds": request.app.state.settings.ROTATING_CODE_SECONDS})


async def code_json(request: Request) -> Response:
    """The code to show now, as SVG markup plus its URL (the display page polls this)."""
    _user, event, _village = await _event_for(request, Role.STAFF)
    settings = request.app.state.settings
    token, expires = current_code(settings, event_id=event.id, qr_mode=event.qr_mode,
                                  ends_at=event.ends_at)
    url = checkin_url(settings, token)
    count = await Checkin.filter(event_id=event.id).count()
    return JSONResponse({"url": url, "svg": qr.svg(url), "expires_at": expires.isoformat(),
                         "checked_in": count, "open": is_open(event)},
                        headers={"cache-control": "no-store"})


async def event_page(request: Request) -> Response:
    """The committee's view of one event: who checked in (live), refused scans, links."""
    user, event, village = await _event_for(request, Role.STAFF)
    checkins = await Checkin.filter(event_id=event.id).order_by("-id").prefetch_related(
        "user", "staff").limit(500)
    refusals = await CheckinRefusal.filter(event_id=event.id).order_by("-id").prefetch_related(
        "user").limit(50)
    forgotten = [c for c in checkins if event.checkout and c.checked_out_at is None]
    leave = min(now(), event.ends_at).astimezone(LOCAL).strftime("%Y-%m-%dT%H:%M")
    return render(request, "checkins/event.html", {
        "event": event, "village": village, "checkins": checkins, "refusals": refusals,
        "open": is_open(event), "flashes": pop_flashes(request),
        "is_admin": user.rank >= 2, "forgotten": forgotten, "leave_default": leave})


async def record_checkout(request: Request) -> Response:
    """Staff record a resident's forgotten check-out, with a reason (audited)."""
    user, event, _village = await _event_for(request, Role.STAFF)
    form = await read_form(request)
    try:
        body = validate_form(CheckoutIn, form)
        left = await checkout.correct(actor=user, event=event, user_id=body.user_id,
                                      at=body.at, reason=body.reason)
    except DomainError as error:
        flash_error(request, error)
        return redirect(f"/events/{event.id}#record-checkout")
    flash(request, _("Check-out recorded: %(time)s attended.", time=duration(left.minutes)))
    return redirect(f"/events/{event.id}")


async def new_event_page(request: Request) -> Response:
    _user, village = await village_from_path(request, Role.VILLAGE_ADMIN)
    start = now().astimezone(LOCAL).replace(second=0, microsecond=0)
    return render(request, "checkins/new_event.html", {
        "village": village, "kinds": service.EVENT_KINDS, "error": None,
        "defaults": {"starts_at": start.strftime("%Y-%m-%dT%H:%M"),
                     "ends_at": (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")}})


async def create_event(request: Request) -> Response:
    user, village = await village_from_path(request, Role.VILLAGE_ADMIN)
    form = await read_form(request)
    try:
        body = validate_form(EventIn, form)  # the API's model: one declaration
        event = await service.create_event(actor=user, village=village, **body.model_dump())
    except DomainError as error:
        return render(request, "checkins/new_event.html", {
            "village": village, "kinds": service.EVENT_KINDS, "error": error.text(),
            "defaults": dict(form)}, status=error.status)
    flash(request, _("Event created."))
    return redirect(f"/events/{event.id}")


async def scanner(request: Request) -> Response:
    """Staff scan a resident's member card with the camera, or type its code."""
    _user, event, village = await _event_for(request, Role.STAFF)
    return render(request, "checkins/scan.html", {"event": event, "village": village,
                                                  "result": None, "flashes": []})


async def scanner_submit(request: Request) -> Response:
    user, event, village = await _event_for(request, Role.STAFF)
    form = await read_form(request)
    code = str(form.get("member_code", ""))[:300]
    try:
        result = await service.check_in_member(request.app.state.settings, staff=user,
                                               event=event, member_code_text=code)
        resident = await User.get(id=result.user_id)
        outcome = {"ok": True, "name": resident.display_name, "points": result.points,
                   "balance": result.balance, "checked_out_at": result.checked_out_at,
                   "minutes": result.minutes}
        status = 200 if result.is_checkout else 201
    except DomainError as error:
        outcome = {"ok": False, "message": error.text(), "code": error.code}
        status = error.status
    return render(request, "checkins/scan.html", {"event": event, "village": village,
                                                  "result": outcome, "flashes": []},
                  status=status)


async def my_card(request: Request) -> Response:
    user = await require_user(request)
    if user.role != Role.RESIDENT:
        raise ForbiddenError("Only residents have a member card.")
    settings = request.app.state.settings
    code = member_code(settings, user_id=user.id, serial=user.card_serial)
    # the QR carries the signed card (staff phones check it without signal); the short
    # code beside it is for typing
    url = f"{settings.BASE_URL}/card/{await signed.card_code(settings, user)}"
    return render(request, "checkins/card.html", {"person": user, "code": code,
                                                  "qr_svg": qr.svg(url), "printable": False})


async def print_card(request: Request) -> Response:
    """Staff print a card for a resident without a phone."""
    actor = await require_user(request, Role.STAFF)
    person = await User.get_or_none(id=request.path_params["id"], role=Role.RESIDENT)
    if person is None:
        raise NotFoundError()
    require_over(actor, person, Role.STAFF)
    settings = request.app.state.settings
    code = member_code(settings, user_id=person.id, serial=person.card_serial)
    url = f"{settings.BASE_URL}/card/{await signed.card_code(settings, person)}"
    return render(request, "checkins/card.html", {"person": person, "code": code,
                                                  "qr_svg": qr.svg(url), "printable": True})


async def reissue_card(request: Request) -> Response:
    actor = await require_user(request)
    target_id = request.path_params["id"]
    person = await User.get_or_none(id=target_id, role=Role.RESIDENT)
    if person is None:
        raise NotFoundError()
    await read_form(request)
    await service.reissue_card(request.app.state.settings, actor=actor, resident=person)
    flash(request, _("A new card was issued; the old one no longer works."))
    return redirect("/card" if actor.id == person.id else f"/console/users/{person.id}")


async def scanned_card(request: Request) -> Response:
    """A member card scanned with a plain camera: staff pick the open event to credit."""
    user = await require_user(request)
    code = request.path_params["code"]
    events = []
    if user.rank >= 1:
        from torreya.console.queries import villages_for

        village_ids = [v.id for v in await villages_for(user)]
        moment = now()
        events = await Event.filter(village_id__in=village_ids, starts_at__lte=moment,
                                    ends_at__gte=moment).order_by("starts_at")
    fields = await signed.verify(code) if signed.is_signed(code) else None
    return render(request, "checkins/scanned_card.html", {
        "code": code, "events": events, "holder": fields.name if fields else ""})


routes = [
    Route("/c/{token}", checkin_page, methods=["GET"], name="checkin"),
    Route("/c/{token}", checkin_submit, methods=["POST"], name="checkin_submit"),
    Route("/card", my_card, name="my_card"),
    Route("/card/{code}", scanned_card, name="scanned_card"),
    Route("/users/{id:id}/card", print_card, name="print_card"),
    Route("/users/{id:id}/card/reissue", reissue_card, methods=["POST"], name="reissue_card"),
    Route("/villages/{id:id}/events/new", new_event_page, name="new_event"),
    Route("/villages/{id:id}/events", create_event, methods=["POST"], name="create_event"),
    Route("/events/{id:id}", event_page, name="event"),
    Route("/events/{id:id}/checkouts", record_checkout, methods=["POST"],
          name="record_checkout"),
    Route("/events/{id:id}/poster", poster, name="poster"),
    Route("/events/{id:id}/poster.png", poster_png, name="poster_png"),
    Route("/events/{id:id}/poster.svg", poster_svg, name="poster_svg"),
    Route("/events/{id:id}/display", display, name="display"),
    Route("/events/{id:id}/code.json", code_json, name="code"),
    Route("/scan", poster_scanner, name="poster_scanner"),
    Route("/events/{id:id}/scan", scanner, methods=["GET"], name="scan"),
    Route("/events/{id:id}/scan", scanner_submit, methods=["POST"], name="scan_submit"),
]
