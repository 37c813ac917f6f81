"""API: leaderboards of villages, towns and groups (public; names masked)."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

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
    params: BoardQuery = request.state.query
    scope_id, keep = request.path_params["id"], request.app.state.settings.BOARD_CACHE_SECONDS
    # the subject is looked up when its board is not kept (a kept one was found lately)
    if not queries.is_kept(scope=scope, scope_id=scope_id, period=params.period,
                           limit=params.limit, keep=keep) and await get_one(
            model, id=scope_id) is None:
        raise NotFoundError()

    def render(rows: list[queries.BoardRow]) -> bytes:
        board = Board(period=params.period, items=[
            Rank(rank=r.rank, display_name=r.display_name, points=r.points) for r in rows])
        return board.__pydantic_serializer__.to_json(board)

    # the same for every reader (names masked, no viewer): made once per kept top
    return Response(await queries.rendered_top(
        scope=scope, scope_id=scope_id, period=params.period, limit=params.limit, keep=keep,
        render=render), media_type="application/json")


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
