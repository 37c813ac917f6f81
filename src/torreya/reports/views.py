"""Report pages: the resident's form and timeline, the staff queue and review."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from torreya.errors import DomainError, NotFoundError
from torreya.i18n import gettext as _
from torreya.ledger.rules import rule_for
from torreya.models import (
    Report,
    ReportCategory,
    ReportPhoto,
    ReportStatus,
    ReportUpdate,
    Role,
)
from torreya.reports import service
from torreya.templating import render
from torreya.validation import Field, coordinate, validate
from torreya.web import (
    flash,
    flash_error,
    pop_flashes,
    read_form,
    redirect,
    require_user,
    village_from_path,
)

CATEGORIES = [c.value for c in ReportCategory]
REPORT_FORM = [
    Field(name="category", max_length=16, choices=CATEGORIES),
    Field(name="description", max_length=1000, allow_markup=True),
    Field(name="location", max_length=200, required=False, allow_markup=True),
]


async def new_report(request: Request, *, error: str | None = None, values=None,
                     status: int = 200) -> Response:
    await require_user(request)
    return render(request, "reports/new.html", {"categories": CATEGORIES, "error": error,
                                                "values": values or {}}, status=status)


async def new_report_page(request: Request) -> Response:
    return await new_report(request)


async def submit_report(request: Request) -> Response:
    user = await require_user(request)
    form = await read_form(request, max_files=1)
    try:
        data = validate(form, REPORT_FORM)
        coords = validate(form, [Field(name="latitude", max_length=20, required=False),
                                 Field(name="longitude", max_length=20, required=False)])
        photo = form.get("photo")
        content = await photo.read() if hasattr(photo, "read") and photo.filename else None
        report = await service.file_report(user=user, photo=content,
                                           latitude=coordinate(coords["latitude"], 90),
                                           longitude=coordinate(coords["longitude"], 180),
                                           **data)
    except DomainError as error:
        return await new_report(request, error=error.text(), values=dict(form),
                                status=error.status)
    finally:
        await form.close()
    flash(request, _("Thank you. Your report was sent to the village staff."))
    return redirect(f"/reports/{report.id}")


async def my_reports(request: Request) -> Response:
    user = await require_user(request)
    reports = await Report.filter(user_id=user.id).order_by("-id").limit(100)
    return render(request, "reports/mine.html", {"reports": reports})


async def report_page(request: Request) -> Response:
    user = await require_user(request)
    report = await service.report_for(user, request.path_params["id"])
    updates = await ReportUpdate.filter(report_id=report.id).order_by("id").prefetch_related(
        "actor")
    staff_view = report.user_id != user.id
    rule = await rule_for(report.town_id, "report")
    return render(request, "reports/report.html", {
        "report": report, "updates": updates, "staff_view": staff_view,
        "reporter": await report.user if staff_view else None, "max_points": rule.points,
        "flashes": pop_flashes(request)})


async def report_photo(request: Request) -> Response:
    user = await require_user(request)
    report = await service.report_for(user, request.path_params["id"])
    photo = await ReportPhoto.get_or_none(report_id=report.id)
    if photo is None:
        raise NotFoundError()
    return Response(photo.content, media_type=photo.content_type,
                    headers={"cache-control": "private, max-age=300"})


REVIEW_FORM = [Field(name="decision", max_length=8, choices=["accept", "reject"]),
               Field(name="points", type=int, required=False, nullable=True, minimum=0),
               Field(name="note", max_length=500, required=False, allow_markup=True)]
ADVANCE_FORM = [Field(name="status", max_length=16, choices=["in_progress", "resolved"]),
                Field(name="note", max_length=500, required=False, allow_markup=True)]


async def _staff_step(request: Request, fields: list[Field], command) -> Response:
    """A staff form on a report: validate, run the command, flash the outcome, go back."""
    user = await require_user(request, Role.STAFF)
    form = await read_form(request)
    report_id = request.path_params["id"]
    try:
        await command(staff=user, report_id=report_id, **validate(form, fields))
        flash(request, _("Review saved."))
    except DomainError as error:
        if error.code == "not_found":
            raise
        flash_error(request, error)
    return redirect(f"/reports/{report_id}")


async def review(request: Request) -> Response:
    return await _staff_step(request, REVIEW_FORM, service.review_report)


async def advance(request: Request) -> Response:
    return await _staff_step(request, ADVANCE_FORM, service.advance_report)


async def queue(request: Request) -> Response:
    """Staff's queue, filtered by status and category; reporters' names visible to staff."""
    _user, village = await village_from_path(request, Role.STAFF)
    params = validate(dict(request.query_params), [
        Field(name="status", max_length=16, required=False,
              choices=[s.value for s in ReportStatus]),
        Field(name="category", max_length=16, required=False, choices=CATEGORIES)])
    query = Report.filter(village_id=village.id)
    if params["status"]:
        query = query.filter(status=params["status"])
    if params["category"]:
        query = query.filter(category=params["category"])
    reports = await query.order_by("-id").limit(200).prefetch_related("user")
    return render(request, "reports/queue.html", {
        "village": village, "reports": reports, "filters": params,
        "statuses": [s.value for s in ReportStatus], "categories": CATEGORIES})


routes = [
    Route("/reports", my_reports, name="reports"),
    Route("/reports/new", new_report_page, methods=["GET"], name="new_report"),
    Route("/reports/new", submit_report, methods=["POST"], name="submit_report"),
    Route("/reports/{id:bigid}", report_page, name="report"),
    Route("/reports/{id:bigid}/photo", report_photo, name="report_photo"),
    Route("/reports/{id:bigid}/review", review, methods=["POST"], name="review"),
    Route("/reports/{id:bigid}/advance", advance, methods=["POST"], name="advance"),
    Route("/console/villages/{id:id}/reports", queue, name="queue"),
]
