"""API: leaderboards of villages, towns and groups (public; names masked)."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

from torreya.api.registry import Endpoints
from torreya.api.schema import Out, Query, QueryInt
from torreya.boards import queries
from torreya.db import get_one
from torreya.errors import NotFoundError
from torreya.models import Group, Town, Village

Period = Literal[queries.PERIODS]  # type: ignore[valid-type]


api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


class BoardQuery(Query):
    period: Period = "month"
    limit: QueryInt(1, 100) = 20


class Rank(Out):
    rank: int
    display_name: str
    points: int


class Board(Out):
    period: Period
    items: list[Rank]


async def _board(request: Request, scope: str, model) -> object:
    subject = await get_one(model, id=request.path_params["id"])
    if subject is None:
        raise NotFoundError()
    params: BoardQuery = request.state.query
    rows, _mine = await queries.rank_residents(
        scope=scope, scope_id=subject.id, period=params.period, limit=params.limit,
        keep=request.app.state.settings.BOARD_CACHE_SECONDS)
    return Board(period=params.period, items=[
        Rank(rank=r.rank, display_name=r.display_name, points=r.points) for r in rows])


@api.endpoint("GET", "/villages/{id:id}/leaderboard", query=BoardQuery, returns=Board,
              summary="Village leaderboard", summary_zh="村排行榜（姓名已遮挡）", auth=False,
              tag="boards", errors=["not_found", "invalid_request"])
async def village_board(request: Request, body: None) -> object:
    return await _board(request, "village", Village)


@api.endpoint("GET", "/towns/{id:id}/leaderboard", query=BoardQuery, returns=Board,
              summary="Town leaderboard", summary_zh="镇排行榜（姓名已遮挡）", auth=False,
              tag="boards", errors=["not_found", "invalid_request"])
async def town_board(request: Request, body: None) -> object:
    return await _board(request, "town", Town)


@api.endpoint("GET", "/groups/{id:id}/leaderboard", query=BoardQuery, returns=Board,
              summary="Volunteer group leaderboard", summary_zh="志愿队排行榜（姓名已遮挡）",
              auth=False, tag="boards", errors=["not_found", "invalid_request"])
async def group_board(request: Request, body: None) -> object:
    return await _board(request, "group", Group)
