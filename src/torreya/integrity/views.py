"""The review queue's pages: a village's signals (the workbench's tile), one signal with its
evidence and the tools a confirmation may call for, and a town's thresholds."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import rank, require_town
from torreya.errors import DomainError
from torreya.i18n import gettext as _
from torreya.integrity import signals
from torreya.integrity.thresholds import FORM, Thresholds, of_town, to_store
from torreya.models import LedgerEntry, Role, SignalStatus, Town, User
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

STATUSES = tuple(s.value for s in SignalStatus)


async def queue(request: Request) -> Response:
    user, village = await village_from_path(request, Role.STAFF)
    status = request.query_params.get("status", "open")
    status = status if status in STATUSES else "open"
    found = await signals.village_signals(user, village, status=SignalStatus(status))
    people = await _names({uid for s in found for uid in s.user_ids})
    return render(request, "integrity/queue.html", {
        "village": village, "signals": found, "status": status, "statuses": STATUSES,
        "people": people, "flashes": pop_flashes(request)})


async def signal_page(request: Request) -> Response:
    user = await require_user(request, Role.STAFF)
    signal, village = await signals.signal_for(user, request.path_params["id"])
    evidence = signal.evidence
    ids = set(signal.user_ids)
    ids.update(x["user_id"] for key in ("checkins", "earlier", "too_fast")
               for x in evidence.get(key, []))
    if evidence.get("actor_id"):
        ids.add(evidence["actor_id"])
    entry_ids = [e["entry_id"] for e in evidence.get("entries", [])]
    entries = await LedgerEntry.filter(id__in=entry_ids).order_by("id") if entry_ids else []
    resolver = await User.get_or_none(id=signal.resolved_by_id) if signal.resolved_by_id else None
    return render(request, "integrity/signal.html", {
        "signal": signal, "village": village, "evidence": evidence,
        "people": await _names(ids), "entries": entries, "resolver": resolver,
        "may_resolve": user.rank >= rank(Role.VILLAGE_ADMIN),
        "memo": _("Correction after integrity check #%(id)s", id=signal.id),
        "flashes": pop_flashes(request)})


async def resolve(request: Request) -> Response:
    user = await require_user(request, Role.VILLAGE_ADMIN)
    signal_id = request.path_params["id"]
    form = await read_form(request)
    try:
        data = validate(form, [Field(name="decision", choices=("dismiss", "confirm")),
                               Field(name="note", required=False, max_length=500,
                                     allow_markup=True)])
        done = await signals.resolve(user, signal_id, decision=data["decision"],
                                     note=data.get("note") or "")
        flash(request, _("Dismissed.") if done.status == SignalStatus.DISMISSED
              else _("Confirmed. Use the tools below if the points or logins need it."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/signals/{signal_id}")


async def _names(ids: set[int]) -> dict[int, User]:
    return {u.id: u for u in await User.filter(id__in=list(ids))} if ids else {}


async def update_thresholds(request: Request) -> Response:
    """A town's thresholds (town admins): only what differs from the defaults is kept."""
    user = await require_user(request, Role.TOWN_ADMIN)
    town_id = request.path_params["id"]
    require_town(user, town_id, Role.TOWN_ADMIN)
    form = await read_form(request)
    try:
        data = validate(form, [Field(name=name, type=int, minimum=least, maximum=most)
                               for name, _label, least, most in FORM])
        chosen = to_store(Thresholds(**data))
        async with in_transaction() as connection:
            await Town.filter(id=town_id).using_db(connection).update(integrity=chosen)
            await audit.record(user, "integrity:thresholds", connection=connection,
                               subject=f"town:{town_id}", town_id=town_id, data=data)
        flash(request, _("Saved."))
    except DomainError as error:
        flash_error(request, error)
    return redirect(f"/console/towns/{town_id}#integrity")


def thresholds_form(town: Town) -> list[tuple[str, str, int, int, int]]:
    """(name, label, value, least, most) for the town page's form."""
    current = of_town(town.integrity)
    return [(name, str(label), getattr(current, name), least, most)
            for name, label, least, most in FORM]


routes = [
    Route("/console/villages/{id:id}/signals", queue, name="signals"),
    Route("/console/signals/{id:bigid}", signal_page, name="signal"),
    Route("/console/signals/{id:bigid}/resolve", resolve, methods=["POST"],
          name="resolve_signal"),
    Route("/console/towns/{id:id}/integrity", update_thresholds, methods=["POST"],
          name="integrity_thresholds"),
]
