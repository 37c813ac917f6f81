"""Report pages: the resident's form and timeline, the staff queue and review."""

from __future__ import annotations

from datetime import date

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.expressions import Q

from torreya.accounts.permissions import require_town
from torreya.db import now
from torreya.errors import DomainError, InvalidRequestError, NotFoundError
from torreya.i18n import gettext as _
from torreya.ledger.rules import rule_for
from torreya.models import (
    Report,
    ReportCategory,
    ReportFollower,
    ReportPhoto,
    ReportStatus,
    ReportUpdate,
    Role,
    Town,
    Village,
)
from torreya.reports import cases, service
from torreya.settings import LOCAL
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
                     status: int = 200, similar=(), had_photo: bool = False) -> Response:
    await require_user(request)
    return render(request, "reports/new.html", {"categories": CATEGORIES, "error": error,
                                                "values": values or {}, "similar": similar,
                                                "had_photo": had_photo}, status=status)


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
        if form.get("file_anyway") != "1" and user.village_id is not None:
            # the same problem reported lately nearby: follow it rather than file again
            similar = await cases.similar_cases(user.village_id, data["category"],
                                                data["location"] or "", exclude_user=user.id)
            if similar:
                return await new_report(request, values=dict(form), similar=similar,
                                        had_photo=content is not None)
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
    """The case: the reporter's timeline (and rating), the handlers' steps, or a
    follower's view (what, where, its progress: never who reported it or the photo)."""
    user = await require_user(request)
    report = await cases.case_for(user, request.path_params["id"])
    updates = await ReportUpdate.filter(report_id=report.id).order_by("id").prefetch_related(
        "actor")
    staff_view = report.user_id != user.id and await _handles(user, report)
    follower_view = report.user_id != user.id and not staff_view
    rule = await rule_for(report.town_id, "report")
    departments = {d.id: d for d in await cases.departments_of(report.town_id)}
    return render(request, "reports/report.html", {
        "report": report, "updates": updates, "staff_view": staff_view,
        "follower_view": follower_view,
        "reporter": await report.user if staff_view else None, "max_points": rule.points,
        "due": cases.due(report, await cases.rules_of(report.town_id)),
        "departments": departments, "followers": await ReportFollower.filter(
            report_id=report.id).count(), "today": now().astimezone(LOCAL).date().isoformat(),
        "flashes": pop_flashes(request)})


async def _handles(user, report) -> bool:
    try:
        await cases.require_handler(user, report)
    except DomainError:
        return False
    return True


async def report_photo(request: Request) -> Response:
    user = await require_user(request)
    report = await cases.case_for(user, request.path_params["id"])
    if report.user_id != user.id:
        await cases.require_handler(user, report)  # a follower does not see the photo
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


QUEUE_FILTERS = [
    Field(name="status", max_length=16, required=False,
          choices=[s.value for s in ReportStatus]),
    Field(name="category", max_length=16, required=False, choices=CATEGORIES),
    Field(name="overdue", max_length=1, required=False, choices=["1"])]


async def _queue(request: Request, query, *, title: str, back: tuple[str, str],
                 villages: dict[int, str] | None = None) -> Response:
    """A list of cases, filtered; the overdue ones first, in red, with how long overdue."""
    params = validate(dict(request.query_params), QUEUE_FILTERS)
    moment = now()
    rules = await cases.rules_by_town(set(await query.distinct().values_list(
        "town_id", flat=True)))
    if params["overdue"]:
        late = Q()
        for town_id, town_rules in rules.items():
            late |= Q(cases.overdue_filter(town_rules, moment), town_id=town_id)
        query = query.filter(late) if rules else query.filter(id=0)
    if params["status"]:
        query = query.filter(status=params["status"])
    if params["category"]:
        query = query.filter(category=params["category"])
    reports = await query.order_by("-id").limit(200).prefetch_related("user")
    departments = {d.id: d.name for town_id in rules
                   for d in await cases.departments_of(town_id)}
    return render(request, "reports/queue.html", {
        "title": title, "back": back, "lines": cases.overdue_first(reports, rules, moment),
        "filters": params, "villages": villages, "departments": departments,
        "statuses": [s.value for s in ReportStatus], "categories": CATEGORIES})


async def queue(request: Request) -> Response:
    """Staff's queue, filtered by status and category; reporters' names visible to staff."""
    _user, village = await village_from_path(request, Role.STAFF)
    return await _queue(request, Report.filter(village_id=village.id),
                        title=f"{_('Reports')} · {village.name}",
                        back=(f"/console/villages/{village.id}", village.name))


async def town_queue(request: Request) -> Response:
    """The town's own queue: the cases escalated to it for being overdue, across villages."""
    user = await require_user(request, Role.TOWN_ADMIN)
    town = await Town.get_or_none(id=request.path_params["id"])
    if town is None:
        raise NotFoundError()
    require_town(user, town.id, Role.TOWN_ADMIN)
    names = dict(await Village.filter(town_id=town.id).values_list("id", "name"))
    return await _queue(request, Report.filter(town_id=town.id, escalated_at__not_isnull=True),
                        title=f"{_('Cases escalated to the town')} · {town.name}",
                        back=(f"/console/towns/{town.id}", town.name), villages=names)


async def department_queue(request: Request) -> Response:
    """A department's cases across the town's villages."""
    user = await require_user(request, Role.STAFF)
    department = await cases.department_for(user, request.path_params["id"])
    names = dict(await Village.filter(town_id=department.town_id).values_list("id", "name"))
    return await _queue(request, Report.filter(department_id=department.id),
                        title=f"{_('Cases')} · {department.name}", back=("/console/",
                                                                        _("Console")),
                        villages=names)


async def _case_step(request: Request, fields: list[Field], command, done: str) -> Response:
    """A form on a case (assign, rate, follow, visit): run it, say so, back to the case."""
    user = await require_user(request)
    form = await read_form(request)
    report_id = request.path_params["id"]
    try:
        await command(user, report_id, validate(form, fields))
        flash(request, done)
    except DomainError as error:
        if error.code == "not_found":
            raise
        flash_error(request, error)
    return redirect(f"/reports/{report_id}")


async def assign(request: Request) -> Response:
    return await _case_step(
        request, [Field(name="department_id", type=int, minimum=1)],
        lambda user, report_id, data: cases.assign(actor=user, report_id=report_id,
                                                   department_id=data["department_id"]),
        _("The case was sent to the department."))


async def rate(request: Request) -> Response:
    return await _case_step(
        request, [Field(name="stars", type=int, minimum=1, maximum=5),
                  Field(name="comment", max_length=500, required=False, allow_markup=True)],
        lambda user, report_id, data: cases.rate(user=user, report_id=report_id,
                                                 stars=data["stars"],
                                                 comment=data["comment"] or ""),
        _("Thank you for your rating."))


async def follow(request: Request) -> Response:
    return await _case_step(
        request, [], lambda user, report_id, _data: cases.follow(user=user,
                                                                 report_id=report_id),
        _("You follow this case now: you will be told of each change."))


async def visit(request: Request) -> Response:
    async def command(user, report_id, data):
        try:
            day = date.fromisoformat(data["date"])
        except ValueError:
            raise InvalidRequestError("Field %(name)s must be a date (YYYY-MM-DD).",
                                      field="date", name="date") from None
        await cases.record_visit(actor=user, report_id=report_id, day=day, note=data["note"])

    return await _case_step(request, [Field(name="date", max_length=10),
                                      Field(name="note", max_length=500, allow_markup=True)],
                            command, _("The follow-up visit is recorded."))


routes = [
    Route("/reports", my_reports, name="reports"),
    Route("/reports/new", new_report_page, methods=["GET"], name="new_report"),
    Route("/reports/new", submit_report, methods=["POST"], name="submit_report"),
    Route("/reports/{id:bigid}", report_page, name="report"),
    Route("/reports/{id:bigid}/photo", report_photo, name="report_photo"),
    Route("/reports/{id:bigid}/review", review, methods=["POST"], name="review"),
    Route("/reports/{id:bigid}/advance", advance, methods=["POST"], name="advance"),
    Route("/reports/{id:bigid}/assign", assign, methods=["POST"], name="assign"),
    Route("/reports/{id:bigid}/rating", rate, methods=["POST"], name="rate"),
    Route("/reports/{id:bigid}/follow", follow, methods=["POST"], name="follow"),
    Route("/reports/{id:bigid}/visit", visit, methods=["POST"], name="visit"),
    Route("/console/villages/{id:id}/reports", queue, name="queue"),
    Route("/console/towns/{id:id}/reports", town_queue, name="town_queue"),
    Route("/console/departments/{id:id}", department_queue, name="department_queue"),
]
