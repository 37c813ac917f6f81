"""Residents at village scale (a real village has 1,000–3,000): pages of 50, search by
name, username or the last digits of a phone, filters, the same list as CSV, and bulk
actions on the ticked rows: print member cards (A4 sheets of 8), issue new cards,
deactivate or reactivate. Every bulk change is in the audit log, one record per person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from torreya import audit, qr
from torreya.accounts import sessions
from torreya.accounts.permissions import rank
from torreya.checkins import signed
from torreya.checkins.codes import member_code
from torreya.checkins.service import reissue_card
from torreya.db import conn, fetch
from torreya.errors import DomainError, ForbiddenError
from torreya.i18n import gettext as _
from torreya.models import Role, User
from torreya.signin.phones import mask_phone, readable_phone
from torreya.spreadsheet import csv_response
from torreya.templating import render
from torreya.terms import N_
from torreya.web import flash, flash_error, pop_flashes, read_form, redirect, village_from_path

PAGE = 50
MAX_BULK = 400  # rows one bulk action takes (8 pages of 50 and a print run of 50 sheets)
FILTERS = {
    "": "",
    "inactive": " AND NOT u.is_active",
    "no_phone": " AND (u.phone IS NULL OR u.phone = '')",
    "never_checked_in": " AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.user_id = u.id)",
    "family": " AND EXISTS (SELECT 1 FROM family_helpers f WHERE f.member_id = u.id)",
}
FILTER_LABELS = {"": N_("Everyone"), "inactive": N_("Inactive"), "no_phone": N_("No phone"),
                 "never_checked_in": N_("Never checked in"),
                 "family": N_("Family-managed")}


@dataclass(frozen=True)
class Listing:
    rows: list[dict]
    total: int
    page: int
    pages: int


def _where(village_id: int, search: str, which: str) -> tuple[str, list]:
    sql = " FROM users u WHERE u.village_id = ? AND u.role = 'resident'" + FILTERS[which]
    values: list[object] = [village_id]
    search = search.strip()
    if search:
        pattern = "%" + re.sub(r"([%_\\])", r"\\\1", search.lower()) + "%"
        # A phone is found by its last 4 digits or the whole number, nothing between: a
        # search by any run of digits would let someone who sees only 138****0001 read the
        # hidden digits off the hits, one query at a time.
        if search.isdigit() and len(search) == 4:
            sql += " AND (u.phone LIKE ? OR LOWER(u.username) LIKE ? ESCAPE '\\')"
            values += ["%" + search, pattern]
        elif search.isdigit() and len(search) == 11:
            sql += " AND (u.phone = ? OR LOWER(u.username) LIKE ? ESCAPE '\\')"
            values += ["+86" + search, pattern]
        else:
            sql += (" AND (LOWER(u.display_name) LIKE ? ESCAPE '\\'"
                    " OR LOWER(u.username) LIKE ? ESCAPE '\\')")
            values += [pattern, pattern]
    return sql, values


async def residents(village_id: int, *, search: str = "", which: str = "", page: int = 1,
                    per_page: int | None = PAGE) -> Listing:
    where, values = _where(village_id, search, which if which in FILTERS else "")
    [count] = await fetch(conn(), "SELECT COUNT(*) AS n" + where, values)
    total = int(count["n"])
    pages = max(1, -(-total // per_page)) if per_page else 1
    page = min(max(page, 1), pages)
    limit = f" LIMIT {int(per_page)} OFFSET {(page - 1) * int(per_page)}" if per_page else ""
    rows = await fetch(conn(), (
        "SELECT u.id, u.display_name, u.username, u.phone, u.balance, u.lifetime_points,"
        " u.is_active,"
        " EXISTS (SELECT 1 FROM family_helpers f WHERE f.member_id = u.id) AS family,"
        " EXISTS (SELECT 1 FROM checkins c WHERE c.user_id = u.id) AS checked_in"
        + where + " ORDER BY u.id" + limit), values)
    for row in rows:
        for flag in ("is_active", "family", "checked_in"):
            row[flag] = bool(row[flag])
    return Listing(rows, total, page, pages)


def _params(request: Request) -> tuple[str, str, int]:
    query = request.query_params
    which = query.get("filter", "")
    page = query.get("page", "1")
    return (query.get("q", "")[:40], which if which in FILTERS else "",
            int(page) if page.isdigit() and len(page) < 6 else 1)


def _phone_for(viewer: User, phone: str | None) -> str:
    """The whole number for the committee; staff see it masked (SPEC §3, privacy)."""
    if not phone:
        return ""
    return readable_phone(phone) if viewer.rank >= rank(Role.VILLAGE_ADMIN) else mask_phone(phone)


async def residents_page(request: Request) -> Response:
    user, village = await village_from_path(request, Role.STAFF)
    search, which, page = _params(request)
    listing = await residents(village.id, search=search, which=which, page=page)
    for row in listing.rows:
        row["phone_shown"] = _phone_for(user, row["phone"])
    return render(request, "console/residents.html", {
        "village": village, "listing": listing, "search": search, "which": which,
        "filters": FILTER_LABELS, "flashes": pop_flashes(request),
        "can_deactivate": user.rank >= rank(Role.VILLAGE_ADMIN)})


async def residents_csv(request: Request) -> Response:
    user, village = await village_from_path(request, Role.STAFF)
    search, which, _page = _params(request)
    listing = await residents(village.id, search=search, which=which, per_page=None)
    await audit.record(user, "console:residents:export", connection=None,
                       subject=f"village:{village.id}", village_id=village.id,
                       data={"rows": len(listing.rows), "filter": which, "q": search})
    return csv_response(f"residents-{village.code}.csv", [
        [_("Name"), _("Username"), _("Mobile"), _("Balance"), _("Earned in total"),
         _("Active"), _("Family helpers"), _("Checked in")],
        *([r["display_name"], r["username"], _phone_for(user, r["phone"]), r["balance"],
           r["lifetime_points"], _yes(r["is_active"]), _yes(r["family"]),
           _yes(r["checked_in"])] for r in listing.rows)])


def _yes(flag: bool) -> str:
    return _("yes") if flag else _("no")


async def bulk(request: Request) -> Response:
    """The ticked rows: cards (a printable sheet), reissue, deactivate, activate."""
    user, village = await village_from_path(request, Role.STAFF)
    form = await read_form(request)
    back = str(form.get("back", ""))
    back = back if back.startswith(f"/console/villages/{village.id}/residents") \
        else f"/console/villages/{village.id}/residents"
    ids = [int(v) for v in form.getlist("id") if str(v).isdigit() and len(str(v)) < 12]
    people = await User.filter(id__in=ids[:MAX_BULK], village_id=village.id,
                               role=Role.RESIDENT).order_by("id")
    if not people:
        flash(request, _("Tick at least one resident first."), "error")
        return redirect(back)
    action = str(form.get("action", ""))
    settings = request.app.state.settings
    try:
        if action == "cards":
            await audit.record(user, "console:cards:print", connection=None,
                               subject=f"village:{village.id}", village_id=village.id,
                               data={"users": [p.id for p in people]})
            return await card_sheet(request, people)
        if action == "reissue":
            for person in people:
                await reissue_card(settings, actor=user, resident=person)
            flash(request, _("New cards for %(count)s residents: print them; the old ones no "
                             "longer work.", count=len(people)))
        elif action in ("deactivate", "activate"):
            await set_active(actor=user, people=people, active=action == "activate")
            flash(request, _("%(count)s residents are now active.", count=len(people))
                  if action == "activate" else
                  _("%(count)s residents are deactivated: they cannot log in or earn "
                    "points.", count=len(people)))
        else:
            flash(request, _("Choose what to do with the ticked residents."), "error")
    except DomainError as error:
        flash_error(request, error)
    return redirect(back)


async def set_active(*, actor: User, people: list[User], active: bool) -> None:
    """Deactivate (logins end, no points) or reactivate residents; village admins up."""
    if actor.rank < rank(Role.VILLAGE_ADMIN):
        raise ForbiddenError()
    async with in_transaction() as connection:
        for person in people:
            await User.filter(id=person.id).using_db(connection).update(is_active=active)
            if not active:
                await sessions.end_all(connection, person)
            await audit.record(actor, "accounts:user:" + ("activate" if active
                                                          else "deactivate"),
                               connection=connection, subject=f"user:{person.id}",
                               town_id=person.town_id, village_id=person.village_id)


async def card_sheet(request: Request, people: list[User]) -> Response:
    """A4 sheets of 8 member cards (2 × 4), name and QR, for residents without a phone.
    The QR is the signed card (a staff phone checks it without signal); the short code
    printed under it is for typing."""
    settings = request.app.state.settings
    cards = []
    for person in people:
        code = member_code(settings, user_id=person.id, serial=person.card_serial)
        url = f"{settings.BASE_URL}/card/{await signed.card_code(settings, person)}"
        cards.append({"name": person.display_name, "code": code, "qr_svg": qr.svg(url)})
    sheets = [cards[i:i + 8] for i in range(0, len(cards), 8)]
    return render(request, "console/card_sheet.html", {"sheets": sheets})


routes = [
    Route("/console/villages/{id:id}/residents", residents_page, name="residents"),
    Route("/console/villages/{id:id}/residents.csv", residents_csv, name="residents_csv"),
    Route("/console/villages/{id:id}/residents/bulk", bulk, methods=["POST"],
          name="residents_bulk"),
]
