"""API: households, their points and board, and yearly star ratings (SPEC §5.2
"Households")."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from torreya.accounts.service import resolve_village
from torreya.api.registry import Endpoints
from torreya.api.schema import Body, Id, Int, Maybe, Out, Query, QueryInt, Text
from torreya.boards.kept import Made
from torreya.db import get_one
from torreya.errors import NotFoundError
from torreya.households import service
from torreya.models import Household, Village
from torreya.web import require_user

api = Endpoints()  # this module's endpoints, in the order declared (routes.py)

Period = Literal[service.PERIODS]  # type: ignore[valid-type]


class HouseholdIn(Body):
    name: Text(40, description="How the village calls it: 赵建国家")
    head_user_id: Id


class HouseholdMemberIn(Body):
    user_id: Id


class HouseholdMemberOut(Out):
    user_id: int
    display_name: str


class HouseholdOut(Out):
    id: int
    name: str
    head_user_id: int | None
    members: list[HouseholdMemberOut]


class PeriodPoints(Out):
    week: int
    month: int
    year: int
    all: int


class Stars(Out):
    year: int
    stars: int


class HouseholdDetail(HouseholdOut):
    points: PeriodPoints
    stars: Stars | None


class HouseholdBoardQuery(Query):
    period: Period = "month"
    limit: QueryInt(1, 100) = 50


class HouseholdRank(Out):
    rank: int
    name: str
    points: int
    stars: int | None


class HouseholdBoard(Out):
    period: str
    items: list[HouseholdRank]


class RatingIn(Body):
    year: Int(2000, 2100)
    stars: Int(1, 5)
    note: Maybe(Text(500, markup=True, required=False), "") = ""


class RatingOut(Out):
    household_id: int
    year: int
    stars: int


async def _out(household: Household) -> HouseholdOut:
    return HouseholdOut(id=household.id, name=household.name,
                        head_user_id=household.head_id,
                        members=[HouseholdMemberOut(user_id=m.user_id, display_name=m.display_name)
                                 for m in await service.members(household.id)])


@api.endpoint("POST", "/villages/{id:id}/households", idempotent=True, body=HouseholdIn,
              returns=HouseholdOut, summary="A household, its head its first member",
              summary_zh="建立户（户主为第一位成员）", status=201, tag="households",
              errors=["forbidden", "not_found", "already_in_household", "invalid_request"])
async def create_household(request: Request, body: HouseholdIn) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    household = await service.create_household(actor=actor, village=village, name=body.name,
                                               head_user_id=body.head_user_id)
    return await _out(household)


@api.endpoint("POST", "/households/{id:id}/members", idempotent=True, body=HouseholdMemberIn,
              returns=HouseholdMemberOut, summary="Add a resident of the village",
              summary_zh="添加户成员", status=201, tag="households",
              errors=["forbidden", "not_found", "already_in_household", "invalid_request"])
async def add_household_member(request: Request, body: HouseholdMemberIn) -> object:
    actor = await require_user(request)
    member = await service.add_member(actor=actor, household_id=request.path_params["id"],
                                      user_id=body.user_id)
    return HouseholdMemberOut(user_id=member.user_id, display_name=member.display_name)


@api.endpoint("DELETE", "/households/{id:id}/members/{uid:id}", status=204,
              tag="households", summary="A member leaves (their points so far stay counted)",
              summary_zh="成员离户（已得积分仍计入本户）", errors=["forbidden", "not_found"])
async def remove_household_member(request: Request, body: None) -> object:
    actor = await require_user(request)
    await service.remove_member(actor=actor, household_id=request.path_params["id"],
                                user_id=request.path_params["uid"])
    return Response(status_code=204)


@api.endpoint("GET", "/households/{id:id}", returns=HouseholdDetail,
              summary="A household: members, points earned while members, latest stars",
              summary_zh="户的成员、积分和星级", tag="households",
              errors=["forbidden", "not_found"],
              description="Staff of the village and above, and the household's members.")
async def get_household(request: Request, body: None) -> object:
    actor = await require_user(request)
    household, _village = await service.household_for(actor, request.path_params["id"],
                                                      members_too=True)
    out = await _out(household)
    stars = (await service.latest_stars([household.id])).get(household.id)
    return HouseholdDetail(**out.model_dump(), points=PeriodPoints(
        **await service.points(household.id)),
        stars=Stars(year=stars[0], stars=stars[1]) if stars else None)


@api.endpoint("GET", "/villages/{id:id}/household-leaderboard", query=HouseholdBoardQuery,
              returns=HouseholdBoard, summary="The village's households by points earned",
              summary_zh="户积分排行榜（户名已遮挡）", auth=False, tag="households",
              errors=["not_found", "invalid_request"])
async def household_board(request: Request, body: None) -> object:
    params: HouseholdBoardQuery = request.state.query
    village_id, keep = request.path_params["id"], request.app.state.settings.BOARD_CACHE_SECONDS
    # the village is looked up when its board is not kept (a kept one was found lately)
    if not service.board_kept(village_id, params.period, limit=params.limit, keep=keep) \
            and await get_one(Village, id=village_id) is None:
        raise NotFoundError()
    lines = await service.board(village_id, params.period, limit=params.limit, keep=keep)

    def render(lines: list[service.BoardLine]) -> bytes:
        board = HouseholdBoard(period=params.period, items=[
            HouseholdRank(rank=x.rank, name=x.name, points=x.points, stars=x.stars)
            for x in lines])
        return board.__pydantic_serializer__.to_json(board)

    # the same for every reader (names masked): made once per kept board
    answer = _BOARD_ANSWERS.of((village_id, params.period, params.limit), lines, render) \
        if keep > 0 else render(lines)
    return Response(answer, media_type="application/json")


_BOARD_ANSWERS = Made()


@api.endpoint("POST", "/households/{id:id}/ratings", idempotent=True, body=RatingIn,
              returns=RatingOut, summary="The year's star rating (星级平安户)",
              summary_zh="年度星级评定", status=201, tag="households",
              errors=["forbidden", "not_found", "already_rated", "invalid_request"])
async def rate_household(request: Request, body: RatingIn) -> object:
    actor = await require_user(request)
    rating = await service.rate(actor=actor, household_id=request.path_params["id"],
                                year=body.year, stars=body.stars, note=body.note)
    return RatingOut(household_id=rating.household_id, year=rating.year, stars=rating.stars)



