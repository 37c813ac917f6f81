"""Pages of 亲属代办: a resident names their helpers and sees what they did; staff set
helpers for residents from the console."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from torreya.errors import DomainError, NotFoundError
from torreya.i18n import gettext as _
from torreya.models import Role, User
from torreya.signin import family
from torreya.signin.phones import mask_phone
from torreya.templating import render
from torreya.web import (
    confirm_big_action,
    confirm_first,
    confirmed,
    current_helper,
    flash,
    flash_error,
    pop_flashes,
    read_form,
    redirect,
    require_user,
)


async def my_family(request: Request) -> Response:
    """Settings → family helpers: who may act for me, and what they did."""

    user = await require_user(request)
    if request.method == "POST":
        form = await read_form(request)
        try:
            if form.get("action") == "remove":
                await family.remove_helper(actor=user, member=user,
                                           helper_id=_int(form.get("helper_id")))
                flash(request, _("Removed: that number can no longer act for you."))
            else:
                if not await confirmed(request, user, form):
                    return confirm_first("/me/family")
                helper = await family.add_helper(
                    actor=user, member=user, phone=str(form.get("phone", ""))[:32],
                    name=str(form.get("name", ""))[:64])
                flash(request, _("%(name)s can now log in with their number and act for "
                                 "you. They are told by SMS.", name=helper.name))
        except DomainError as error:
            flash_error(request, error)
        return redirect("/me/family")
    return render(request, "signin/family.html", {
        "flashes": pop_flashes(request), "acting": current_helper(request),
        "helpers": [{"id": h.id, "name": h.name, "phone": mask_phone(h.phone),
                     "since": h.created_at} for h in await family.helpers_of(user)],
        "acts": await family.acts_for(user)})


async def helpers_of_resident(request: Request) -> Response:
    """Console: staff add or remove a resident's family helper (POST only)."""

    staff = await require_user(request, Role.STAFF)
    person = await User.get_or_none(id=request.path_params["id"])
    if person is None:
        raise NotFoundError()
    form = await read_form(request)
    try:
        if form.get("action") == "remove":
            await family.remove_helper(actor=staff, member=person,
                                       helper_id=_int(form.get("helper_id")))
            flash(request, _("Removed: that number can no longer act for %(name)s.",
                             name=person.display_name))
        else:
            await confirm_big_action(request, staff, form)  # naming who may act for them
            helper = await family.add_helper(actor=staff, member=person,
                                             phone=str(form.get("phone", ""))[:32],
                                             name=str(form.get("name", ""))[:64])
            flash(request, _("%(helper)s can now act for %(name)s; they are told by SMS.",
                             helper=helper.name, name=person.display_name))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/users/{person.id}")


def _int(value: object) -> int:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 10 else 0


routes = [
    Route("/me/family", my_family, methods=["GET", "POST"], name="my_family"),
    Route("/users/{id:id}/helpers", helpers_of_resident, methods=["POST"],
          name="helpers_of_resident"),
]
