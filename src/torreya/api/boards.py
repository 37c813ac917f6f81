"""API: leaderboards of villages, towns and groups (public; names masked)."""

from __future__ import annotations

from starlette.requests import Request

from torreya.api.registry import endpoint, json
from torreya.boards import queries
from torreya.boards.views import board_params
from torreya.errors import NotFoundError
from torreya.models import Group, Town, Village
from torreya.validation import Field

QUERY = [Field(name="period", max_length=8, required=False, choices=queries.PERIODS),
         Field(name="limit", type=int, required=False, minimum=1, maximum=100)]


async def _board(request: Request, scope: str, model) -> object:
    subject = await model.get_or_none(id=request.path_params["id"])
    if subject is None:
        raise NotFoundError()
    params = board_params(request)
    period = params["period"] or "month"
    rows, _mine = await queries.rank_residents(scope=scope, scope_id=subject.id, period=period,
                                               limit=params["limit"] or 20)
    return json({"period": period, "items": [
        {"rank": r.rank, "display_name": r.display_name, "points": r.points} for r in rows]})


@endpoint("GET", "/villages/{id:id}/leaderboard", returns="period items:list",
          summary="Village leaderboard", auth=False,
          tag="boards", query=QUERY, errors=["not_found", "invalid_request"])
async def village_board(request: Request, body: dict) -> object:
    return await _board(request, "village", Village)


@endpoint("GET", "/towns/{id:id}/leaderboard", returns="period items:list",
          summary="Town leaderboard", auth=False,
          tag="boards", query=QUERY, errors=["not_found", "invalid_request"])
async def town_board(request: Request, body: dict) -> object:
    return await _board(request, "town", Town)


@endpoint("GET", "/groups/{id:id}/leaderboard", returns="period items:list",
          summary="Volunteer group leaderboard",
          auth=False, tag="boards", query=QUERY, errors=["not_found", "invalid_request"])
async def group_board(request: Request, body: dict) -> object:
    return await _board(request, "group", Group)
