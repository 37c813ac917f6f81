"""Leaderboards (public, masked names), the meeting-room display, resident settings, and the
committee dashboard with its monthly CSV."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from torreya.accounts import sessions
from torreya.accounts.permissions import require_town, require_village
from torreya.boards import dashboard, queries
from torreya.boards.levels import level_for
from torreya.db import now, reading
from torreya.errors import NotFoundError
from torreya.hours import service as hours
from torreya.households import service as households
from torreya.i18n import gettext as _
from torreya.ledger import expiry
from torreya.masking import mask_name
from torreya.models import (
    CheckinRefusal,
    Group,
    LedgerEntry,
    Role,
    Town,
    User,
    UserIdentity,
    Village,
)
from torreya.reports import cases
from torreya.settings import LOCAL
from torreya.signin.providers import configured
from torreya.spreadsheet import csv_response
from torreya.templating import render
from torreya.trust.signing import signed_head_for_report
from torreya.validation import Field, validate
from torreya.web import (
    current_helper,
    current_sid,
    current_user,
    flash,
    pop_flashes,
    read_form,
    redirect,
    require_user,
)

SCOPES = {"villages": ("village", Village), "towns": ("town", Town), "groups": ("group", Group)}


def board_params(request: Request) -> dict:
    return validate(dict(request.query_params), [
        Field(name="period", max_length=8, required=False, choices=queries.PERIODS),
        Field(name="limit", type=int, required=False, minimum=1, maximum=100)])


async def _subject(request: Request):
    scope, model = SCOPES[request.path_params["scope"]]
    subject = await model.get_or_none(id=request.path_params["id"])
    if subject is None:
        raise NotFoundError()
    return scope, subject


async def board_page(request: Request) -> Response:
    scope, subject = await _subject(request)
    params = board_params(request)
    period = params["period"] or "month"
    viewer = await current_user(request)
    rows, mine = await queries.rank_residents(
        scope=scope, scope_id=subject.id, period=period, limit=params["limit"] or 50,
        viewer=viewer, keep=request.app.state.settings.BOARD_CACHE_SECONDS)

    town = subject if scope == "town" else await Town.get_or_none(id=subject.town_id)
    levels = town.levels if town else None
    return render(request, "boards/board.html", {
        "subject": subject, "scope": request.path_params["scope"], "rows": rows, "mine": mine,
        "period": period, "periods": queries.PERIODS,
        "level_of": lambda points: level_for(points, levels).name})


async def display(request: Request) -> Response:
    """Big screen for the meeting room: refreshes itself (static/js/display.js)."""
    _scope, subject = await _subject(request)
    seconds = validate(dict(request.query_params), [
        Field(name="refresh", type=int, required=False, minimum=1, maximum=3600)])["refresh"]
    tab = "households" if (_scope == "village"
                           and request.query_params.get("tab") == "households") else "residents"
    return render(request, "boards/display.html", {
        "subject": subject, "scope": request.path_params["scope"], "refresh": seconds or 30,
        "tab": tab})


async def display_json(request: Request) -> Response:
    scope, subject = await _subject(request)
    if scope == "village" and request.query_params.get("tab") == "households":
        # the households' tab: the month's board of households, names masked (赵*家)
        rows = [queries.BoardRow(line.rank, 0, line.name, line.points)
                for line in await households.board(
                    subject.id, "month", limit=10,
                    keep=request.app.state.settings.BOARD_CACHE_SECONDS)]
    else:
        rows, _mine = await queries.rank_residents(
            scope=scope, scope_id=subject.id, period="month", limit=10,
            keep=request.app.state.settings.BOARD_CACHE_SECONDS)
    recent = LedgerEntry.filter(counts_as_earned=True).order_by("-id").limit(8)
    if scope == "village":
        recent = recent.filter(user__village_id=subject.id)
    elif scope == "town":
        recent = recent.filter(town_id=subject.id)
    else:
        from torreya.models import GroupMember

        members = await GroupMember.filter(group_id=subject.id).values_list("user_id", flat=True)
        recent = recent.filter(user_id__in=members)
    entries = await recent.prefetch_related("user")
    activity = [{"name": queries.public_name(e.user), "points": e.delta, "what": what}
                for e, what in zip(entries, await queries.public_whats(entries), strict=True)]
    groups = []
    if scope != "group":
        town_id = subject.id if scope == "town" else subject.town_id
        for group in await Group.filter(town_id=town_id).order_by("id").limit(5):
            top, _mine = await queries.rank_residents(scope="group", scope_id=group.id,
                                                      period="month", limit=1000)
            groups.append({"name": group.name, "points": sum(r.points for r in top)})
        groups.sort(key=lambda g: -g["points"])
    return JSONResponse({
        "title": subject.name,
        "items": [{"rank": r.rank, "name": r.display_name, "points": r.points} for r in rows],
        "recent": activity, "groups": groups}, headers={"cache-control": "no-store"})


async def settings_page(request: Request) -> Response:
    user = await require_user(request)
    if request.method == "POST":
        form = await read_form(request)
        hide = form.get("hide_from_boards") == "on"
        sms = form.get("sms_notifications") == "on"
        await User.filter(id=user.id).update(hide_from_boards=hide, sms_notifications=sms)
        queries.forget_boards()  # this worker's at once; the others' within seconds
        flash(request, _("Settings saved."))
        return redirect("/me/settings")

    owner = current_helper(request) is None  # a helper sees none of the ways in
    logins = await sessions.active_sessions(user) if owner else []
    identities = await UserIdentity.filter(user_id=user.id).order_by("id") if owner else []
    return render(request, "boards/settings.html", {
        "flashes": pop_flashes(request), "public_name": mask_name(user.display_name),
        "logins": [{"id": s.id, "device": sessions.device_label(s.user_agent), "ip": s.ip,
                    "last_seen": s.last_seen_at, "kind": s.kind,
                    "this": s.id == current_sid(request)} for s in logins],
        "history": await sessions.login_history(user) if owner else [],
        "identities": identities,
        "to_link": [p for p in configured(request)
                    if owner and p.issuer not in {i.issuer for i in identities}]})


# -- committee dashboard ----------------------------------------------------------------------


async def _dashboard_scope(request: Request):
    user = await require_user(request, Role.VILLAGE_ADMIN)
    if request.path_params["scope"] == "villages":
        village = await Village.get_or_none(id=request.path_params["id"])
        if village is None:
            raise NotFoundError()
        require_village(user, village, Role.VILLAGE_ADMIN)
        return village, [village], village.town_id
    town = await Town.get_or_none(id=request.path_params["id"])
    if town is None:
        raise NotFoundError()
    require_town(user, town.id, Role.TOWN_ADMIN)
    return town, await Village.filter(town_id=town.id).order_by("id"), town.id


async def dashboard_page(request: Request) -> Response:
    subject, villages, town_id = await _dashboard_scope(request)
    ids = [v.id for v in villages]
    months = dashboard.last_months(6)

    async def read(db) -> dict:  # figures that may lag a second: the replica, if any
        series = [(month, await dashboard.figures(ids, month, db)) for month in months]
        return {"series": series, "current": series[-1][1],
                "outstanding": await dashboard.outstanding_points(ids, db),
                "activities": await dashboard.top_activities(ids, months[-1], db),
                "low_stock": await dashboard.low_stock(ids, town_id, db=db),
                "refused": await CheckinRefusal.filter(village_id__in=ids).using_db(db).count(),
                "signal_weeks": await dashboard.signals_by_week(ids, db=db)}

    town = await Town.get(id=town_id)
    _key, since, _end = dashboard.month_bounds(months[0])
    return render(request, "boards/dashboard.html", {
        "subject": subject, "scope": request.path_params["scope"], **await reading(read),
        "satisfaction": await cases.satisfaction(town_id=town_id, since=since, until=now()),
        "by_department": await cases.satisfaction(town_id=town_id, since=since, until=now(),
                                                  by="department_id")
        if request.path_params["scope"] == "towns" else {},
        "departments": await cases.departments_of(town_id),
        "villages": villages, "currency": town.currency_name,
        "expiring": await expiry.due_by_month(town, ids),
        "month": months[-1], "months": months, "town_id": town_id})


async def monthly_csv(request: Request) -> Response:
    """平安月报: one row per village (and a total row for a town) for the chosen month."""
    subject, villages, _town_id = await _dashboard_scope(request)
    month = validate(dict(request.query_params), [
        Field(name="month", max_length=7, required=False)])["month"]
    try:
        dashboard.month_bounds(month)
    except ValueError:
        from torreya.errors import InvalidRequestError

        raise InvalidRequestError("Field %(name)s must be a date and time.", field="month",
                                  name="month") from None
    rows: list[list[object]] = [
        [_("Village")] + [_(c) for c in dashboard.COLUMNS] + [_("outstanding_points")]]
    ids = [v.id for v in villages]

    async def read(db) -> tuple[dict, dict]:  # the replica, if any
        return (await dashboard.figures_by_village(ids, month, db),
                await dashboard.outstanding_by_village(ids, db))

    per_village, owed = await reading(read)
    total = dashboard.MonthFigures()
    for village in villages:
        figures = per_village[village.id]
        total.add(figures)
        rows.append([village.name] + [getattr(figures, c) for c in dashboard.COLUMNS]
                    + [owed.get(village.id, 0)])
    if len(villages) > 1:
        total.patrol_hours = round(total.patrol_hours, 1)
        rows.append([_("Total")] + [getattr(total, c) for c in dashboard.COLUMNS]
                    + [sum(owed.values())])
    _key, start, end = dashboard.month_bounds(month)
    homes = [[village.name, line.rank, line.name, line.points, line.stars or ""]
             for village in villages
             for line in await households.board_between(village.id, start, end, limit=20,
                                                         mask=False, period="month")]
    if homes:  # the households' board of the month, for the committee (full names)
        rows.append([])
        rows.append([_("Village"), _("Rank"), _("Household"), _("Points"), _("Stars")])
        rows += homes
    rated = await cases.satisfaction(town_id=_town_id, since=start, until=end)
    if any(rated.get(v.id) for v in villages):  # 满意率: the reporters' ratings of the month
        rows.append([])
        rows.append([_("Village"), _("Ratings"), _("Satisfied (4–5 stars)"),
                     _("Satisfaction rate (%)"), _("Average stars")])
        rows += [[v.name, rated[v.id].ratings, rated[v.id].satisfied, rated[v.id].rate,
                  rated[v.id].stars] for v in villages if rated.get(v.id)]
    first_day = start.astimezone(LOCAL).date()
    last_day = (end.astimezone(LOCAL) - timedelta(days=1)).date()
    names = {v.id: v.name for v in villages}
    served = await hours.village_hours(ids, first_day, last_day)
    if served:  # the month's volunteer hours by resident (志愿时长)
        rows.append([])
        rows.append([_("Village"), _("Name"), _("Volunteer hours"), _("Minutes"),
                     _("Patrols and events")])
        rows += [[names.get(person.village_id, ""), person.display_name,
                  round(minutes / 60, 1), minutes, count] for person, minutes, count in served]
    label = month or dashboard.last_months(1)[0]
    head = await signed_head_for_report(_town_id, label) if _town_id else None
    if head is not None:  # the footer: what ties the figures to the signed ledger
        rows.append([])
        rows.append([_("Ledger signed record"), head["period"], head["seq"], head["total"],
                     head["hash"], head["public_key"], head["signature"]])
        rows.append([_("Check it at"),
                     f"{request.app.state.settings.BASE_URL}/towns/{_town_id}/trust"])
    return csv_response(f"report-{label}.csv", rows)


def _scoped(endpoint, scope: str):
    """The endpoint with the scope ("villages", "towns", "groups") bound from its path."""
    async def handler(request: Request) -> Response:
        request.path_params["scope"] = scope
        return await endpoint(request)

    handler.__name__ = f"{endpoint.__name__}_{scope}"
    return handler


routes = [Route("/me/settings", settings_page, methods=["GET", "POST"], name="settings")]
for _scope in SCOPES:
    routes += [
        Route(f"/{_scope}/{{id:id}}/leaderboard", _scoped(board_page, _scope)),
        Route(f"/{_scope}/{{id:id}}/display", _scoped(display, _scope)),
        Route(f"/{_scope}/{{id:id}}/display.json", _scoped(display_json, _scope)),
    ]
for _scope in ("villages", "towns"):
    routes += [
        Route(f"/console/{_scope}/{{id:id}}/dashboard", _scoped(dashboard_page, _scope)),
        Route(f"/console/{_scope}/{{id:id}}/report.csv", _scoped(monthly_csv, _scope)),
    ]
