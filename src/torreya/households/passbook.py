"""积分存折: a paper passbook for residents without phones. Staff print the entries since the
last print (date, reason, points, balance), in large type on A5, and mark it printed; the
next print continues after it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_over
from torreya.errors import NotFoundError
from torreya.i18n import gettext as _
from torreya.models import LedgerEntry, PassbookPrint, Role, User, Village
from torreya.templating import render
from torreya.validation import Field, validate
from torreya.web import flash, read_form, redirect, require_user

# Lines one print holds at most (two A5 pages in large type); more wait for the next print.
LINES = 40


async def _resident(request: Request) -> tuple[User, User]:
    actor = await require_user(request, Role.STAFF)
    person = await User.get_or_none(id=request.path_params["id"])
    if person is None or person.role != Role.RESIDENT:
        raise NotFoundError()
    require_over(actor, person, Role.STAFF)
    return actor, person


async def printed_up_to(user_id: int) -> int:
    last = await PassbookPrint.filter(user_id=user_id).order_by("-up_to_entry_id").first()
    return last.up_to_entry_id if last else 0


async def passbook_page(request: Request) -> Response:
    _actor, person = await _resident(request)
    since = await printed_up_to(person.id)
    entries = await LedgerEntry.filter(user_id=person.id, id__gt=since).order_by("id").limit(
        LINES)
    brought = entries[0].balance_after - entries[0].delta if entries else person.balance
    village = await Village.get_or_none(id=person.village_id) if person.village_id else None
    return render(request, "households/passbook.html", {
        "person": person, "village": village, "entries": entries, "brought": brought,
        "continued": since > 0, "more": len(entries) == LINES})


async def mark_printed(request: Request) -> Response:
    actor, person = await _resident(request)
    form = await read_form(request)
    data = validate(form, [Field(name="up_to", type=int, minimum=1)])
    up_to = data["up_to"]
    since = await printed_up_to(person.id)
    count = await LedgerEntry.filter(user_id=person.id, id__gt=since, id__lte=up_to).count()
    if up_to > since and count:
        async with in_transaction() as connection:
            await PassbookPrint.create(user=person, up_to_entry_id=up_to, entries=count,
                                       printed_by=actor, using_db=connection)
            await audit.record(actor, "households:passbook:print", connection=connection,
                               subject=f"user:{person.id}", town_id=person.town_id,
                               village_id=person.village_id, data={"up_to": up_to,
                                                                   "entries": count})
        flash(request, _("Marked as printed. The next print continues from here."))
    return redirect(f"/console/users/{person.id}")


routes = [
    Route("/console/users/{id:id}/passbook", passbook_page, name="passbook"),
    Route("/console/users/{id:id}/passbook/printed", mark_printed, methods=["POST"],
          name="passbook_printed"),
]
