"""Public pages of trust: a receipt (/r/<code>) and a town's keys and signed heads."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from torreya import qr
from torreya.errors import NotFoundError
from torreya.ledger.queries import currency_name
from torreya.models import Town, TownKey
from torreya.templating import render
from torreya.trust import receipts
from torreya.trust.signing import heads_of


async def receipt_page(request: Request) -> Response:
    code = request.path_params["code"][:40]
    found = await receipts.receipt(code)
    if found is None:
        return render(request, "trust/receipt.html", {"found": None, "code": code},
                      status=404)
    url = f"{request.app.state.settings.BASE_URL}/r/{found['code']}"
    return render(request, "trust/receipt.html", {
        "found": found, "code": found["code"], "qr_svg": qr.svg(url),
        "when": datetime.fromisoformat(found["created_at"].replace("Z", "+00:00")),
        "currency": await currency_name(found["town_id"])})


async def town_trust(request: Request) -> Response:
    town = await Town.get_or_none(id=request.path_params["id"])
    if town is None:
        raise NotFoundError()
    return render(request, "trust/town.html", {
        "town": town, "heads": await heads_of(town.id),
        "keys": await TownKey.filter(town_id=town.id).order_by("-id")})


routes = [
    Route("/r/{code}", receipt_page, name="receipt"),
    Route("/towns/{id:id}/trust", town_trust, name="town_trust"),
]
