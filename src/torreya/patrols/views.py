"""Patrol pages for phones outdoors: the group, the patrol, plates, review, print sheets."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as Path

from torreya import qr
from torreya.accounts.permissions import require_town, require_village
from torreya.api.patrols import RouteIn
from torreya.api.schema import validate_form
from torreya.db import now
from torreya.errors import DomainError, ForbiddenError, NotFoundError
from torreya.i18n import gettext as _
from torreya.ledger.periods import period_key, period_start
from torreya.ledger.queries import currency_name
from torreya.ledger.rules import rule_for
from torreya.models import (
    Checkpoint,
    EarningTotal,
    Group,
    GroupMember,
    Patrol,
    PatrolParticipant,
    PatrolScan,
    PatrolStatus,
    Role,
    Route,
    Town,
    User,
    Village,
)
from torreya.patrols import service
from torreya.patrols.codes import plate_code, read_plate_code
from torreya.signin.phones import normalize_phone
from torreya.templating import render
from torreya.validation import Field, validate
from torreya.web import (
    flash,
    flash_error,
    pop_flashes,
    read_form,
    redirect,
    require_user,
    village_from_path,
)


async def my_groups(request: Request) -> Response:
    user = await require_user(request)
    memberships = await GroupMember.filter(user_id=user.id).prefetch_related("group")
    return render(request, "patrols/groups.html", {"memberships": memberships})


async def group_page(request: Request) -> Response:
    user = await require_user(request)
    group = await service.group_for(user, request.path_params["id"])
    member = await service.membership(user, group)
    if member is None and user.rank < 1:
        raise NotFoundError()
    members = await GroupMember.filter(group_id=group.id).order_by("-role", "id"
                                                                   ).prefetch_related("user")
    month = period_key("month", now())
    totals = {t.user_id: t.total for t in await EarningTotal.filter(
        user_id__in=[m.user_id for m in members], kind="patrol", period=month)}
    patrols = await Patrol.filter(group_id=group.id).order_by("-id").limit(30).prefetch_related(
        "route", "leader")
    minutes: dict[int, int] = {}
    for p in await Patrol.filter(group_id=group.id, status=PatrolStatus.APPROVED,
                                 started_at__gte=_month_start()).prefetch_related("participants"):
        for part in p.participants:
            minutes[part.user_id] = minutes.get(part.user_id, 0) + (p.duration_minutes or 0)
    board = sorted(((totals.get(m.user_id, 0), m.user) for m in members if m.approved),
                   key=lambda row: -row[0])
    can_lead = member is not None and member.role == "leader"
    try:
        await service.require_leader_or_admin(user, group)
        can_manage = True
    except ForbiddenError:
        can_manage = False
    invite_url = f"{request.app.state.settings.BASE_URL}/groups/join/{group.invite_code}"
    return render(request, "patrols/group.html", {
        "group": group, "members": members, "patrols": patrols, "board": board,
        "hours": {k: round(v / 60, 1) for k, v in minutes.items()},
        "routes": await Route.filter(group_id=group.id).order_by("id"),
        "can_lead": can_lead, "can_manage": can_manage, "flashes": pop_flashes(request),
        "invite_url": invite_url, "invite_qr": qr.svg(invite_url) if can_manage else ""})


def _month_start():
    return period_start("month", now())


async def join_group_page(request: Request) -> Response:
    user = await require_user(request)
    group = await Group.get_or_none(invite_code=request.path_params["code"])
    if group is None or group.town_id != user.town_id:
        raise NotFoundError("This invitation is not valid.")
    return render(request, "patrols/join_group.html", {
        "group": group, "code": request.path_params["code"],
        "member": await GroupMember.get_or_none(group_id=group.id, user_id=user.id)})


async def join_group(request: Request) -> Response:
    user = await require_user(request)
    await read_form(request)
    member = await service.request_to_join(user=user, invite_code=request.path_params["code"])
    flash(request, _("Request sent; a leader will approve it."))
    return redirect(f"/groups/{member.group_id}")


async def approve_member(request: Request) -> Response:
    user = await require_user(request)
    group = await service.group_for(user, request.path_params["id"])
    await read_form(request)
    await service.approve_member(actor=user, group=group, user_id=request.path_params["uid"])
    return redirect(f"/groups/{group.id}")


async def add_member(request: Request) -> Response:
    user = await require_user(request)
    group = await service.group_for(user, request.path_params["id"])
    form = await read_form(request)
    try:
        await service.require_leader_or_admin(user, group)  # before the number is looked up
        data = validate(form, [Field(name="phone", max_length=32),
                               Field(name="role", max_length=8, choices=["member", "leader"])])
        person = await service.person_by_phone(group, normalize_phone(data["phone"]))
        await service.add_member(actor=user, group=group, user_id=person.id, role=data["role"])
        flash(request, _("%(name)s added.", name=person.display_name))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/groups/{group.id}")


async def create_route(request: Request) -> Response:
    user = await require_user(request)
    group = await service.group_for(user, request.path_params["id"])
    form = await read_form(request)
    try:
        body = validate_form(RouteIn, form)  # the API's model: one plate per line
        await service.create_route(actor=user, group=group, **body.model_dump())
        flash(request, _("Route saved. Print the plates and put them up along the route."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/groups/{group.id}")


async def start_patrol(request: Request) -> Response:
    user = await require_user(request)
    group = await service.group_for(user, request.path_params["id"])
    form = await read_form(request)
    try:
        data = validate(form, [Field(name="route_id", type=int, minimum=1)])
        patrol = await service.start_patrol(leader=user, group=group, route_id=data["route_id"])
    except DomainError as error:
        flash_error(request, error)
        return redirect(f"/groups/{group.id}")
    return redirect(f"/patrols/{patrol.id}")


async def _patrol_view(request: Request) -> tuple[User, Patrol, bool, bool]:
    """The patrol, for its participants, its group's members, and reviewers in reach."""
    user = await require_user(request)
    patrol = await Patrol.get_or_none(id=request.path_params["id"])
    if patrol is None:
        raise NotFoundError()
    participant = await PatrolParticipant.exists(patrol_id=patrol.id, user_id=user.id)
    group = await Group.get(id=patrol.group_id)
    member = await service.membership(user, group)
    reviewer = False
    if not participant and member is None:
        require_village(user, await Village.get(id=patrol.village_id), Role.STAFF)
    if user.rank >= 2:
        try:
            require_village(user, await Village.get(id=patrol.village_id), Role.VILLAGE_ADMIN)
            reviewer = patrol.leader_id != user.id
        except DomainError:
            reviewer = False
    return user, patrol, participant, reviewer


async def patrol_page(request: Request) -> Response:
    user, patrol, participant, reviewer = await _patrol_view(request)
    route = await Route.get(id=patrol.route_id)
    checkpoints = await Checkpoint.filter(route_id=route.id).order_by("position")
    scans = await PatrolScan.filter(patrol_id=patrol.id).order_by("id").prefetch_related(
        "checkpoint", "user")
    people = await PatrolParticipant.filter(patrol_id=patrol.id).prefetch_related("user")
    join_url = (f"{request.app.state.settings.BASE_URL}/patrols/{patrol.id}/join"
                f"?code={patrol.join_code}")
    covered = {s.checkpoint_id for s in scans}
    rule = await rule_for(patrol.town_id, "patrol")
    minutes = (patrol.duration_minutes if patrol.duration_minutes is not None
               else int((now() - patrol.started_at).total_seconds() // 60))
    awards = (await service.planned_awards(patrol, rule)
              if reviewer and patrol.status == "submitted" else [])
    return render(request, "patrols/patrol.html", {
        "minutes": minutes, "per_member": service.points_for_minutes(minutes, rule),
        "per_hour": rule.points, "awards": awards, "currency": await currency_name(
            patrol.town_id),
        "patrol": patrol, "route": route, "checkpoints": checkpoints, "scans": scans,
        "people": people, "participant": participant, "reviewer": reviewer,
        "is_leader": patrol.leader_id == user.id, "covered": covered,
        "join_qr": qr.svg(join_url) if patrol.leader_id == user.id else "",
        "join_url": join_url, "flashes": pop_flashes(request)})


async def join_patrol_page(request: Request) -> Response:
    user = await require_user(request)
    patrol = await Patrol.get_or_none(id=request.path_params["id"])
    if patrol is None:
        raise NotFoundError()
    # Another town's patrol is not found (its route's name is the town's own business).
    require_town(user, (await Group.get(id=patrol.group_id)).town_id, Role.RESIDENT)
    return render(request, "patrols/join_patrol.html", {
        "patrol": patrol, "code": request.query_params.get("code", "")[:16],
        "route": await Route.get(id=patrol.route_id)})


async def join_patrol(request: Request) -> Response:
    user = await require_user(request)
    form = await read_form(request)
    patrol_id = request.path_params["id"]
    try:
        await service.join_patrol(user=user, patrol_id=patrol_id,
                                  join_code=str(form.get("join_code", ""))[:16])
        flash(request, _("You joined the patrol. Scan each checkpoint plate on the way."))
    except DomainError as error:
        if error.code == "not_found":
            raise
        flash_error(request, error)
    return redirect(f"/patrols/{patrol_id}")


async def plate_page(request: Request) -> Response:
    """A plate scanned with any camera: record it for the user's active patrol on its route."""
    user = await require_user(request)
    checkpoint_id = read_plate_code(request.app.state.settings, request.path_params["code"])
    checkpoint = await Checkpoint.get_or_none(id=checkpoint_id) if checkpoint_id else None
    if checkpoint is None:
        raise NotFoundError("This checkpoint code is not valid for this patrol.")
    patrols = await Patrol.filter(
        route_id=checkpoint.route_id, status=PatrolStatus.ACTIVE,
        id__in=await PatrolParticipant.filter(user_id=user.id).values_list("patrol_id",
                                                                           flat=True))
    return render(request, "patrols/plate.html", {
        "checkpoint": checkpoint, "patrols": patrols, "code": request.path_params["code"]})


async def record_plate(request: Request) -> Response:
    user = await require_user(request)
    form = await read_form(request)
    try:
        data = validate(form, [Field(name="patrol_id", type=int, minimum=1),
                               Field(name="latitude", max_length=20, required=False),
                               Field(name="longitude", max_length=20, required=False)])
        from torreya.validation import coordinate

        result = await service.record_scan(
            request.app.state.settings, user=user, patrol_id=data["patrol_id"],
            code=request.path_params["code"], latitude=coordinate(data["latitude"], 90),
            longitude=coordinate(data["longitude"], 180))
        flash(request, _("Checkpoint recorded: %(name)s", name=result.checkpoint.name))
        return redirect(f"/patrols/{data['patrol_id']}")
    except DomainError as error:
        if error.code == "not_found":
            raise
        flash_error(request, error)
        return redirect(f"/cp/{request.path_params['code']}")


async def _act(request: Request, action) -> Response:
    user = await require_user(request)
    form = await read_form(request)
    patrol_id = request.path_params["id"]
    try:
        await action(user, patrol_id, form)
    except DomainError as error:
        if error.code == "not_found":
            raise
        flash_error(request, error)
    return redirect(f"/patrols/{patrol_id}")


async def finish(request: Request) -> Response:
    return await _act(request, lambda u, pid, f: service.finish_patrol(leader=u, patrol_id=pid))


async def approve(request: Request) -> Response:
    return await _act(request, lambda u, pid, f: service.approve_patrol(actor=u, patrol_id=pid))


async def reject(request: Request) -> Response:
    return await _act(request, lambda u, pid, f: service.reject_patrol(
        actor=u, patrol_id=pid, reason=str(f.get("reason", "")).strip()[:500]))


async def plate_sheet(request: Request) -> Response:
    """An A4 sheet with every plate of a route, to print and laminate."""
    user = await require_user(request)
    route = await Route.get_or_none(id=request.path_params["id"])
    if route is None:
        raise NotFoundError()
    group = await service.group_for(user, route.group_id)
    await service.require_leader_or_admin(user, group)
    settings = request.app.state.settings
    plates = []
    for checkpoint in await Checkpoint.filter(route_id=route.id).order_by("position"):
        code = plate_code(settings, checkpoint.id)
        plates.append((checkpoint, qr.svg(f"{settings.BASE_URL}/cp/{code}"), code))
    return render(request, "patrols/sheet.html", {"route": route, "group": group,
                                                  "plates": plates})


async def town_groups(request: Request) -> Response:
    user = await require_user(request, Role.TOWN_ADMIN)
    town = await Town.get_or_none(id=request.path_params["id"])
    if town is None:
        raise NotFoundError()
    require_town(user, town.id, Role.TOWN_ADMIN)
    if request.method == "POST":
        form = await read_form(request)
        try:
            data = validate(form, [Field(name="name", max_length=80)])
            await service.create_group(actor=user, town_id=town.id, name=data["name"])
            flash(request, _("Group created."))
        except DomainError as error:
            flash_error(request, error)
        return redirect(f"/console/towns/{town.id}/groups")
    groups = await Group.filter(town_id=town.id).order_by("id")
    return render(request, "patrols/town_groups.html", {"town": town, "groups": groups,
                                                        "flashes": pop_flashes(request)})


async def review_queue(request: Request) -> Response:
    _user, village = await village_from_path(request, Role.VILLAGE_ADMIN)
    status = validate(dict(request.query_params), [
        Field(name="status", max_length=16, required=False,
              choices=[s.value for s in PatrolStatus])])["status"]
    query = Patrol.filter(village_id=village.id)
    if status:
        query = query.filter(status=status)
    patrols = await query.order_by("-id").limit(100).prefetch_related("route", "leader",
                                                                      "group")
    return render(request, "patrols/queue.html", {"village": village, "patrols": patrols,
                                                  "status": status})


routes = [
    Path("/groups", my_groups, name="groups"),
    Path("/groups/{id:id}", group_page, name="group"),
    Path("/groups/join/{code}", join_group_page, methods=["GET"], name="join_group_page"),
    Path("/groups/join/{code}", join_group, methods=["POST"], name="join_group"),
    Path("/groups/{id:id}/members", add_member, methods=["POST"], name="add_member"),
    Path("/groups/{id:id}/members/{uid:id}/approve", approve_member, methods=["POST"],
         name="approve_member"),
    Path("/groups/{id:id}/routes", create_route, methods=["POST"], name="create_route"),
    Path("/groups/{id:id}/patrols", start_patrol, methods=["POST"], name="start_patrol"),
    Path("/patrols/{id:id}", patrol_page, name="patrol"),
    Path("/patrols/{id:id}/join", join_patrol_page, methods=["GET"], name="join_patrol_page"),
    Path("/patrols/{id:id}/join", join_patrol, methods=["POST"], name="join_patrol"),
    Path("/patrols/{id:id}/finish", finish, methods=["POST"], name="finish"),
    Path("/patrols/{id:id}/approve", approve, methods=["POST"], name="approve"),
    Path("/patrols/{id:id}/reject", reject, methods=["POST"], name="reject"),
    Path("/cp/{code}", plate_page, methods=["GET"], name="plate"),
    Path("/cp/{code}", record_plate, methods=["POST"], name="record_plate"),
    Path("/routes/{id:id}/sheet", plate_sheet, name="sheet"),
    Path("/console/towns/{id:id}/groups", town_groups, methods=["GET", "POST"],
         name="town_groups"),
    Path("/console/villages/{id:id}/patrols", review_queue, name="patrol_queue"),
]
