"""The hours' pages: the resident's 我的志愿时长 with their certificates, the village's hours
(console), one resident's hours for staff (issue for a resident without a phone, revoke),
and the certificate's public, printable page that anyone checks."""

from __future__ import annotations

from datetime import date

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from torreya import qr
from torreya.accounts.permissions import require_over
from torreya.api.schema import Body, Day, validate_form
from torreya.db import now
from torreya.errors import DomainError, InvalidRequestError, NotFoundError
from torreya.hours import certificate, service
from torreya.i18n import gettext as _
from torreya.models import Role, User
from torreya.pledges import views as pledge_views
from torreya.pledges.service import is_pledge_code
from torreya.settings import LOCAL
from torreya.templating import render
from torreya.validation import Field, validate
from torreya.web import (
    flash,
    flash_error,
    pop_flashes,
    read_form,
    redirect,
    require_person,
    require_user,
    village_from_path,
)


class PeriodForm(Body):
    start: Day
    end: Day


def _year(request: Request) -> int:
    text = request.query_params.get("year", "")
    if not text:
        return now().astimezone(LOCAL).year
    if not text.isdigit() or not 2000 <= int(text) <= 2100:
        raise InvalidRequestError("Field %(name)s is out of range.", field="year", name="year")
    return int(text)


def _period_defaults(year: int) -> dict:
    today = now().astimezone(LOCAL).date()
    return {"start": date(year, 1, 1).isoformat(),
            "end": min(date(year, 12, 31), today).isoformat()}


async def _hours_context(person: User, year: int) -> dict:
    items = await service.items_for(person, *service.year_bounds(year))
    return {"person": person, "year": year, "items": items,
            "total": sum(i.minutes for i in items),
            "certificates": await service.certificates_of(person),
            "defaults": _period_defaults(year), "this_year": now().astimezone(LOCAL).year}


async def my_hours(request: Request) -> Response:
    """我的志愿时长: the year's patrols and events, the total, and certificates."""
    person, _helper = await require_person(request)
    return render(request, "hours/mine.html", await _hours_context(person, _year(request))
                  | {"flashes": pop_flashes(request), "action": "/me/hours/certificates"})


async def _issue(request: Request, actor: User, holder: User) -> Response | None:
    form = await read_form(request)
    try:
        period = validate_form(PeriodForm, form)
        issued = await service.issue(request.app.state.settings, actor=actor, holder=holder,
                                     start=period.start, end=period.end)
    except DomainError as error:
        flash_error(request, error)
        return None
    return redirect(f"/certificates/{issued.code}")


async def my_certificate(request: Request) -> Response:
    person, _helper = await require_person(request)
    return await _issue(request, person, person) or redirect("/me/hours")


async def village_hours(request: Request) -> Response:
    """The village's volunteers by hours in a year (console)."""
    _user, village = await village_from_path(request, Role.STAFF)
    year = _year(request)
    lines = await service.village_hours([village.id], *service.year_bounds(year))
    return render(request, "hours/village.html", {
        "village": village, "year": year, "lines": lines,
        "total": sum(line[1] for line in lines), "this_year": now().astimezone(LOCAL).year})


async def _resident(request: Request) -> tuple[User, User]:
    actor = await require_user(request, Role.STAFF)
    person = await User.get_or_none(id=request.path_params["id"])
    if person is None or person.role != Role.RESIDENT:
        raise NotFoundError()
    require_over(actor, person, Role.STAFF)
    return actor, person


async def resident_hours(request: Request) -> Response:
    """One resident's hours and certificates, for staff: issue one for a resident without a
    phone, revoke one issued in error."""
    _actor, person = await _resident(request)
    return render(request, "hours/resident.html", await _hours_context(person, _year(request))
                  | {"flashes": pop_flashes(request),
                     "action": f"/console/users/{person.id}/hours/certificates"})


async def resident_certificate(request: Request) -> Response:
    actor, person = await _resident(request)
    return (await _issue(request, actor, person)
            or redirect(f"/console/users/{person.id}/hours"))


async def revoke(request: Request) -> Response:
    actor = await require_user(request, Role.STAFF)
    form = await read_form(request)
    found = await service.by_code(request.path_params["code"])  # else the 404 page
    holder = await User.get(id=found.user_id)
    require_over(actor, holder, Role.STAFF)
    try:
        data = validate(form, [Field(name="reason", max_length=200)])
        found = await service.revoke(actor=actor, code=found.code, reason=data["reason"])
        flash(request, _("Certificate %(code)s revoked.", code=found.code))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/users/{holder.id}/hours")


async def certificate_page(request: Request) -> Response:
    """The certificate anyone opens from its QR: printable on A4, with the verify address's
    QR and the signed text's QR for checking offline. Nothing but the masked holder.
    A pledge's certificate has its address here too (its code is told apart by its
    form: P, digits, a dash)."""
    if is_pledge_code(request.path_params["code"]):
        return await pledge_views.verify_certificate(request)
    try:
        found = await service.by_code(request.path_params["code"])
    except NotFoundError:
        return render(request, "hours/certificate.html", {"doc": None}, status=404)
    doc = await service.public_doc(found)
    url = f"{request.app.state.settings.BASE_URL}/certificates/{found.code}"
    offline = certificate.qr_text(found.payload, found.signature)
    # The signature checked here too: a page that says "valid" has checked it.
    problems = certificate.problems(doc | {"status": "valid"}, doc["public_key"])
    return render(request, "hours/certificate.html", {
        "doc": doc, "url": url, "qr_url": qr.svg(url), "qr_offline": qr.svg(offline),
        "genuine": not problems})


routes = [
    Route("/me/hours", my_hours, name="my_hours"),
    Route("/me/hours/certificates", my_certificate, methods=["POST"], name="my_certificate"),
    Route("/console/villages/{id:id}/hours", village_hours, name="village_hours"),
    Route("/console/users/{id:id}/hours", resident_hours, name="resident_hours"),
    Route("/console/users/{id:id}/hours/certificates", resident_certificate, methods=["POST"],
          name="resident_certificate"),
    Route("/certificates/{code}/revoke", revoke, methods=["POST"], name="revoke_certificate"),
    Route("/certificates/{code}", certificate_page, name="certificate"),
]
