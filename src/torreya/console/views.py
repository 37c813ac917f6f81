"""The committee console: towns, villages, people, rosters, adjustments, audit log."""

from __future__ import annotations

import uuid

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from torreya import audit, idempotency
from torreya.accounts import service
from torreya.accounts.permissions import (
    assignable_roles,
    rank,
    require_over,
    require_town,
)
from torreya.api.accounts import AdjustmentIn
from torreya.api.schema import validate_form
from torreya.console import queries, workbench
from torreya.console.flags import unusual_activity
from torreya.db import now
from torreya.errors import DomainError, NotFoundError
from torreya.i18n import gettext as _
from torreya.integrity.views import thresholds_form
from torreya.ledger import queries as ledger_queries
from torreya.ledger.rules import KIND_LABELS, update_rule
from torreya.ledger.service import adjust_points
from torreya.models import (
    CheckinRefusal,
    Department,
    EarningRule,
    Event,
    Role,
    Town,
    User,
    Village,
)
from torreya.reports import cases
from torreya.signin.family import helpers_of
from torreya.signin.phones import mask_phone, normalize_phone, readable_phone
from torreya.templating import render
from torreya.validation import Field, validate
from torreya.web import (
    confirm_big_action,
    flash,
    flash_error,
    needs_step_up_for,
    pop_flashes,
    read_form,
    redirect,
    require_user,
    village_from_path,
)


async def dashboard(request: Request) -> Response:
    user = await require_user(request, Role.STAFF)

    towns = await queries.towns_for(user)
    villages = await queries.villages_for(user)
    work = await workbench.village_work(villages)
    sort = request.query_params.get("sort", "")
    queues = workbench.queues_for(user)
    for w in work:  # counted for the tiles shown, the total too
        w.counts = {q.key: w.counts[q.key] for q in queues}
    if sort in {q.key for q in queues} | {"total"}:
        work.sort(key=lambda w: -(w.total if sort == "total" else w.counts[sort]))
    return render(request, "console/dashboard.html", {
        "towns": towns, "villages": villages, "flashes": pop_flashes(request),
        "work": work, "queues": queues,
        "events": await workbench.events_ahead(villages),
        "village_names": {v.id: v.name for v in villages},
        "failing": await workbench.failing_deliveries([t.id for t in towns])
        if user.rank >= rank(Role.TOWN_ADMIN) else 0,
        "department": await Department.get_or_none(id=user.department_id)
        if user.department_id else None})


async def create_town(request: Request) -> Response:
    user = await require_user(request, Role.PLATFORM_ADMIN)
    form = await read_form(request)
    try:
        data = validate(form, [Field(name="name", max_length=100),
                               Field(name="code", max_length=32),
                               Field(name="currency_name", max_length=32)])
        town = await service.create_town(actor=user, **data)
        flash(request, _("Town %(name)s created.", name=town.name))
    except DomainError as error:
        flash_error(request, error)
    return redirect("/console/")


async def town_page(request: Request) -> Response:
    user = await require_user(request, Role.TOWN_ADMIN)
    town = await Town.get_or_none(id=request.path_params["id"])
    if town is None:
        raise NotFoundError()
    require_town(user, town.id, Role.TOWN_ADMIN)
    villages = await queries.villages_for(user, town.id)
    admins = await User.filter(town_id=town.id, role=Role.TOWN_ADMIN).order_by("id")
    rules = await EarningRule.filter(town_id=town.id).order_by("id")
    return render(request, "console/town.html",
                  {"town": town, "villages": villages, "admins": admins, "rules": rules,
                   "kind_labels": KIND_LABELS, "flashes": pop_flashes(request),
                   "thresholds": thresholds_form(town),
                   "departments": await cases.departments_of(town.id),
                   "members": await _department_members(town.id)})


async def _department_members(town_id: int) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for department_id, name in await User.filter(
            town_id=town_id, department_id__not_isnull=True).order_by("id").values_list(
            "department_id", "display_name"):
        found.setdefault(department_id, []).append(name)
    return found


async def _town_form(request: Request, fields: list[Field], command, done: str) -> Response:
    """A town admin's form on the town page: run it, say so, back to the town."""
    user = await require_user(request, Role.TOWN_ADMIN)
    town = await Town.get_or_none(id=request.path_params["id"])
    if town is None:
        raise NotFoundError()
    require_town(user, town.id, Role.TOWN_ADMIN)
    form = await read_form(request)
    try:
        await command(user, town, validate(form, fields))
        flash(request, done)
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/towns/{town.id}#cases")


async def case_rules(request: Request) -> Response:
    return await _town_form(
        request, [Field(name="ack_hours", type=int, minimum=1, maximum=8760),
                  Field(name="resolve_hours", type=int, minimum=1, maximum=8760)],
        lambda user, town, data: cases.set_rules(actor=user, town=town, **data),
        _("Case deadlines saved."))


async def create_department(request: Request) -> Response:
    return await _town_form(
        request, [Field(name="name", max_length=40)],
        lambda user, town, data: cases.create_department(actor=user, town=town,
                                                         name=data["name"]),
        _("Department added."))


async def department_member(request: Request) -> Response:
    user = await require_user(request, Role.TOWN_ADMIN)
    department = await cases.department_for(user, request.path_params["id"])
    form = await read_form(request)
    try:
        data = validate(form, [Field(name="person", max_length=64)])
        try:
            phone = normalize_phone(data["person"], field="person")
        except DomainError:
            phone = None
        person = await User.filter(Q(username=data["person"]) | Q(phone=phone),
                                   town_id=department.town_id).first()
        if person is None:
            raise NotFoundError("No staff member of the town has this username or mobile.")
        await cases.add_member(actor=user, department=department, user_id=person.id)
        flash(request, _("%(name)s added.", name=person.display_name))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/towns/{department.town_id}#cases")


async def create_village(request: Request) -> Response:
    user = await require_user(request, Role.TOWN_ADMIN)
    town_id = request.path_params["id"]
    form = await read_form(request)
    try:
        data = validate(form, [Field(name="name", max_length=100),
                               Field(name="code", max_length=32)])
        village = await service.create_village(actor=user, town_id=town_id, **data)
        flash(request, _("Village %(name)s created.", name=village.name))
    except DomainError as error:
        if error.code == "not_found":
            raise
        flash_error(request, error)
    return redirect(f"/console/towns/{town_id}")


async def create_town_admin(request: Request) -> Response:
    user = await require_user(request, Role.TOWN_ADMIN)
    town_id = request.path_params["id"]
    form = await read_form(request)
    await _create_user(request, user, form, role=Role.TOWN_ADMIN, town_id=town_id)
    return redirect(f"/console/towns/{town_id}")


async def _town_admin_form(request: Request) -> tuple[User, int, FormData]:
    """The town admin, the `{id}` town within their reach, and the submitted form."""
    user = await require_user(request, Role.TOWN_ADMIN)
    town_id = request.path_params["id"]
    require_town(user, town_id, Role.TOWN_ADMIN)
    return user, town_id, await read_form(request)


async def update_rules(request: Request) -> Response:
    user, town_id, form = await _town_admin_form(request)

    try:
        # Validate every row before changing any: a bad cap leaves all rules as they were.
        changes = []
        for rule in await EarningRule.filter(town_id=town_id).order_by("id"):
            data = validate(form, [
                Field(name=f"{rule.kind}_points", type=int, minimum=0, maximum=100_000),
                Field(name=f"{rule.kind}_cap_day", type=int, required=False, minimum=0),
                Field(name=f"{rule.kind}_cap_month", type=int, required=False, minimum=0),
                Field(name=f"{rule.kind}_cap_year", type=int, required=False, minimum=0),
                Field(name=f"{rule.kind}_needs_review", type=bool, required=False)])
            changes.append((rule, {k.split("_", 1)[1]: v for k, v in data.items()}))
        async with in_transaction():
            for rule, values in changes:
                await update_rule(actor=user, rule=rule, **values)
        flash(request, _("Earning rules saved."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/towns/{town_id}")


async def update_step_up(request: Request) -> Response:
    """The town's size of adjustment that needs the password again; itself a big action."""
    user, town_id, form = await _town_admin_form(request)
    try:
        data = validate(form, [Field(name="step_up_points", type=int, minimum=1,
                                     maximum=1_000_000)])
        await confirm_big_action(request, user, form)
        async with in_transaction() as connection:
            await Town.filter(id=town_id).using_db(connection).update(**data)
            await audit.record(user, "accounts:town:step_up", connection=connection,
                               subject=f"town:{town_id}", town_id=town_id, data=data)
        flash(request, _("Saved."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/towns/{town_id}")


async def village_page(request: Request) -> Response:
    user, village = await village_from_path(request, Role.STAFF)
    search = request.query_params.get("q", "")[:40]
    people = await queries.users_of_village(village, search=search)
    events = await Event.filter(village_id=village.id).order_by("-starts_at").limit(30)
    return render(request, "console/village.html", {
        "village": village, "town": await Town.get(id=village.town_id), "people": people,
        "events": events, "search": search, "roles": assignable_roles(user),
        "flashes": pop_flashes(request), "import_result": None})


async def _create_user(request: Request, actor: User, form, **placement) -> None:
    try:
        data = validate(form, [
            Field(name="username", max_length=64, min_length=3),
            Field(name="display_name", max_length=64),
            Field(name="password", max_length=256, min_length=8, required=False, nullable=True),
            Field(name="phone", max_length=32, required=False, nullable=True),
            Field(name="role", max_length=16, required=False, nullable=True,
                  choices=[r.value for r in Role])])
        role = placement.pop("role", None) or Role(data.pop("role") or Role.RESIDENT)
        data.pop("role", None)
        user = await service.create_user(actor=actor, new=service.NewUser(role=role, **data,
                                                                         **placement))
        flash(request, _("User %(name)s created.", name=user.display_name))
    except DomainError as error:
        flash_error(request, error)


async def create_village_user(request: Request) -> Response:
    user, village = await village_from_path(request, Role.VILLAGE_ADMIN)
    form = await read_form(request)
    await _create_user(request, user, form, village_id=village.id)
    return redirect(f"/console/villages/{village.id}")


async def import_roster(request: Request) -> Response:
    user, village = await village_from_path(request, Role.VILLAGE_ADMIN)
    form = await read_form(request, max_files=1)
    try:
        upload = form.get("roster")
        data = await upload.read() if upload is not None and hasattr(upload, "read") else b""
    finally:
        await form.close()
    result = await service.import_residents(actor=user, village=village, data=data)
    people = await queries.users_of_village(village)
    events = await Event.filter(village_id=village.id).order_by("-starts_at").limit(30)
    return render(request, "console/village.html", {
        "village": village, "town": await Town.get(id=village.town_id), "people": people,
        "events": events, "search": "", "roles": assignable_roles(user), "flashes": [],
        "import_result": result}, status=200 if not result.problems else 422)


async def user_page(request: Request) -> Response:
    actor = await require_user(request, Role.STAFF)
    person = await User.get_or_none(id=request.path_params["id"])
    if person is None:
        raise NotFoundError()
    require_over(actor, person, Role.STAFF)
    entries, _next = await ledger_queries.ledger_page(person.id, cursor=None, limit=30)
    catalog = []
    if person.role == Role.RESIDENT and person.village_id:
        from torreya.rewards.queries import catalog as village_catalog
        from torreya.rewards.service import is_available

        village = await Village.get(id=person.village_id)
        catalog = [r for r in await village_catalog(village, include_inactive=False)
                   if is_available(r) and r.cost <= person.balance
                   and (r.stock is None or r.stock > 0)]
    return render(request, "console/user.html", {
        "person": person, "entries": entries, "flashes": pop_flashes(request),
        "catalog": catalog,
        # prefilled from a confirmed integrity signal's tools
        "memo": request.query_params.get("memo", "")[:200],
        "currency": await ledger_queries.currency_name(person.town_id),
        # The whole number for the committee; staff see it masked (SPEC §3, privacy).
        "phone": readable_phone(person.phone) if actor.rank >= rank(Role.VILLAGE_ADMIN)
        else mask_phone(person.phone),
        "step_up_points": (await Town.get(id=person.town_id)).step_up_points
        if person.town_id else 0,
        "idem_key": uuid.uuid4().hex,
        "helpers": [{"id": h.id, "name": h.name,
                     "phone": readable_phone(h.phone) if actor.rank >= rank(Role.VILLAGE_ADMIN)
                     else mask_phone(h.phone)} for h in await helpers_of(person)]})


async def adjust(request: Request) -> Response:
    actor = await require_user(request, Role.VILLAGE_ADMIN)
    person = await User.get_or_none(id=request.path_params["id"])
    if person is None:
        raise NotFoundError()
    require_over(actor, person, Role.VILLAGE_ADMIN)
    form = await read_form(request)
    try:
        # The API's model for the change; the page's own fields beside it.
        data = validate_form(AdjustmentIn, form).model_dump() | validate(form, [
            Field(name="idem_key", max_length=255),
            Field(name="proxy", type=bool, required=False)])
        if data["delta"] == 0:
            raise DomainError("Field %(name)s must not be zero.", name="delta")
        if await needs_step_up_for(person, data["delta"]):
            await confirm_big_action(request, actor, form)

        async def run() -> dict:
            entry = await adjust_points(actor=actor, target=person, delta=data["delta"],
                                        memo=data["memo"], proxy=data["proxy"])
            return {"entry_id": entry.id}

        body = {k: data[k] for k in ("delta", "memo", "proxy")}
        await idempotency.once_for_form(user_id=actor.id, scope="console:adjust",
                                        key=data["idem_key"], path=request.url.path,
                                        body=body, run=run)
        flash(request, _("Points adjusted."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/users/{person.id}")


async def audit_log(request: Request) -> Response:
    user = await require_user(request, Role.VILLAGE_ADMIN)
    params = validate(dict(request.query_params), [Field(name="before", type=int, required=False,
                                                         minimum=1)])

    events = await queries.audit_events_for(user, before=params["before"])
    flags = [] if params["before"] else await unusual_activity(user)
    return render(request, "console/audit.html", {"events": events, "flags": flags})


async def refusals_today(request: Request) -> Response:
    """The village's scans refused today (the workbench's tile): when, who, which event and
    why in words, so staff can help the person at the door."""
    _user, village = await village_from_path(request, Role.STAFF)
    refusals = await CheckinRefusal.filter(
        village_id=village.id, created_at__gte=workbench.today_start(now())
    ).order_by("-id").prefetch_related("user", "event").limit(200)
    return render(request, "checkins/refusals.html", {"village": village,
                                                      "refusals": refusals})


routes = [
    Route("/", dashboard, name="dashboard"),
    Route("/villages/{id:id}/refusals", refusals_today, name="refusals"),
    Route("/towns", create_town, methods=["POST"], name="create_town"),
    Route("/towns/{id:id}", town_page, name="town"),
    Route("/towns/{id:id}/villages", create_village, methods=["POST"], name="create_village"),
    Route("/towns/{id:id}/admins", create_town_admin, methods=["POST"], name="create_town_admin"),
    Route("/towns/{id:id}/rules", update_rules, methods=["POST"], name="update_rules"),
    Route("/towns/{id:id}/step-up", update_step_up, methods=["POST"], name="update_step_up"),
    Route("/towns/{id:id}/case-rules", case_rules, methods=["POST"], name="case_rules"),
    Route("/towns/{id:id}/departments", create_department, methods=["POST"],
          name="create_department"),
    Route("/departments/{id:id}/members", department_member, methods=["POST"],
          name="department_member"),
    Route("/villages/{id:id}", village_page, name="village"),
    Route("/villages/{id:id}/users", create_village_user, methods=["POST"], name="create_user"),
    Route("/villages/{id:id}/import", import_roster, methods=["POST"], name="import"),
    Route("/users/{id:id}", user_page, name="user"),
    Route("/users/{id:id}/adjust", adjust, methods=["POST"], name="adjust"),
    Route("/audit", audit_log, name="audit"),
]
