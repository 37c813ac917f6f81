"""积分明细: a resident's own ledger."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from torreya.ledger import queries
from torreya.templating import render
from torreya.validation import Field, validate
from torreya.web import require_user


async def my_ledger(request: Request) -> Response:
    user = await require_user(request)
    params = validate(dict(request.query_params),
                      [Field(name="cursor", type=int, required=False, minimum=0)])
    entries, next_cursor = await queries.ledger_page(user.id, cursor=params["cursor"])
    return render(request, "ledger/ledger.html", {
        "entries": entries, "next_cursor": next_cursor,
        "summary": await queries.account_summary(user)})


routes = [Route("/me/ledger", my_ledger, name="ledger")]
