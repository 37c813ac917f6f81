"""The households' pages: the village's list (console), one household with its members,
points and ratings, the printable 星级户红榜, and the resident's 我家."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from torreya.accounts.permissions import rank
from torreya.db import now
from torreya.errors import DomainError
from torreya.households import service
from torreya.i18n import gettext as _
from torreya.models import HouseholdRating, Role, Town
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


async def village_households(request: Request) -> Response:
    user, village = await village_from_path(request, Role.STAFF)
    return render(request, "households/list.html", {
        "village": village, "households": await service.village_households(village),
        "may_manage": user.rank >= rank(Role.VILLAGE_ADMIN), "year": now().year,
        "flashes": pop_flashes(request)})


async def create(request: Request) -> Response:
    user, village = await village_from_path(request, Role.VILLAGE_ADMIN)
    form = await read_form(request)
    try:
        data = validate(form, [Field(name="name", max_length=40),
                               Field(name="head", max_length=40)])
        head = await service.find_resident(village, data["head"], field="head")
        household = await service.create_household(actor=user, village=village,
                                                   name=data["name"], head_user_id=head.id)
        flash(request, _("Household %(name)s added.", name=household.name))
        return redirect(f"/console/households/{household.id}")
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/villages/{village.id}/households")


async def household_page(request: Request) -> Response:
    user = await require_user(request, Role.STAFF)
    household, village = await service.household_for(user, request.path_params["id"])
    ratings = await HouseholdRating.filter(household_id=household.id).order_by("-year")
    town = await Town.get(id=village.town_id)
    return render(request, "households/household.html", {
        "criteria": town.star_criteria or [], "star_bonus": town.star_bonus,
        "evidence": await service.evidence(household.id, now().year),
        "household": household, "village": village,
        "members": await service.members(household.id),
        "points": await service.points(household.id), "ratings": ratings,
        "rated_this_year": any(r.year == now().year for r in ratings), "year": now().year,
        "may_manage": user.rank >= rank(Role.VILLAGE_ADMIN), "flashes": pop_flashes(request)})


async def add_member(request: Request) -> Response:
    user = await require_user(request, Role.VILLAGE_ADMIN)
    household_id = request.path_params["id"]
    form = await read_form(request)
    try:
        _household, village = await service.household_for(user, household_id,
                                                           Role.VILLAGE_ADMIN)
        data = validate(form, [Field(name="person", max_length=40),
                               Field(name="move", required=False, max_length=2)])
        person = await service.find_resident(village, data["person"], field="person")
        await service.add_member(actor=user, household_id=household_id, user_id=person.id,
                                 move=bool(data.get("move")))
        flash(request, _("%(name)s added.", name=person.display_name))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/households/{household_id}")


async def remove_member(request: Request) -> Response:
    user = await require_user(request, Role.VILLAGE_ADMIN)
    household_id = request.path_params["id"]
    await read_form(request)
    try:
        await service.remove_member(actor=user, household_id=household_id,
                                    user_id=request.path_params["uid"])
        flash(request, _("Removed from the household. Their points so far stay counted."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/households/{household_id}")


async def dissolve(request: Request) -> Response:
    user = await require_user(request, Role.VILLAGE_ADMIN)
    household_id = request.path_params["id"]
    await read_form(request)
    try:
        _household, village = await service.household_for(user, household_id,
                                                           Role.VILLAGE_ADMIN)
        await service.dissolve(actor=user, household_id=household_id)
        flash(request, _("The household is dissolved. Its points so far stay in its history."))
        return redirect(f"/console/villages/{village.id}/households")
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/households/{household_id}")


async def rate(request: Request) -> Response:
    user = await require_user(request, Role.VILLAGE_ADMIN)
    household_id = request.path_params["id"]
    form = await read_form(request)
    try:
        data = validate(form, [Field(name="year", type=int, minimum=2000, maximum=2100),
                               Field(name="stars", type=int, minimum=1, maximum=5),
                               Field(name="note", required=False, max_length=500,
                                     allow_markup=True)])
        await service.rate(actor=user, household_id=household_id, year=data["year"],
                           stars=data["stars"], note=data.get("note") or "")
        flash(request, _("Rated."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/households/{household_id}")


async def honour_roll(request: Request) -> Response:
    """星级户红榜: the year's rated households, most stars first, to print (A4/A3) for the
    village's notice board."""
    _user, village = await village_from_path(request, Role.STAFF)
    # a year the column holds, or 422 naming it (a huge number was a database error)
    year = validate(dict(request.query_params), [
        Field(name="year", type=int, required=False, minimum=2000, maximum=2100)]).get(
        "year") or now().year
    return render(request, "households/honour_roll.html", {
        "village": village, "year": year,
        "rated": await service.rated_in(village, year)})


async def my_household(request: Request) -> Response:
    user = await require_user(request)
    household = await service.household_of(user.id)
    context: dict = {"household": household}
    if household is not None:
        stars = (await service.latest_stars([household.id])).get(household.id)
        context.update(members=await service.members(household.id),
                       points=await service.points(household.id), stars=stars)
    return render(request, "households/mine.html", context)


routes = [
    Route("/console/villages/{id:id}/households", village_households, name="households"),
    Route("/console/villages/{id:id}/households/new", create, methods=["POST"],
          name="create_household"),
    Route("/console/villages/{id:id}/honour-roll", honour_roll, name="honour_roll"),
    Route("/console/households/{id:id}", household_page, name="household"),
    Route("/console/households/{id:id}/members", add_member, methods=["POST"],
          name="add_household_member"),
    Route("/console/households/{id:id}/members/{uid:id}/remove", remove_member,
          methods=["POST"], name="remove_household_member"),
    Route("/console/households/{id:id}/dissolve", dissolve, methods=["POST"],
          name="dissolve_household"),
    Route("/console/households/{id:id}/ratings", rate, methods=["POST"],
          name="rate_household"),
    Route("/me/household", my_household, name="my_household"),
]
