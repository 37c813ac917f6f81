"""API: catalogs, redemptions and vouchers."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

from torreya.accounts.service import resolve_village
from torreya.api.registry import Endpoints
from torreya.api.schema import Body, Id, Int, Maybe, Moment, OneOf, Out, Text, Time
from torreya.models import RedemptionStatus as RedemptionStatusEnum
from torreya.models import RewardCategory
from torreya.rewards import queries, service
from torreya.web import require_person, require_user

LimitPeriod = Literal[service.LIMIT_PERIODS]  # type: ignore[valid-type]
Category = OneOf(RewardCategory)
RedemptionStatus = OneOf(RedemptionStatusEnum)


api = Endpoints()  # this module's endpoints, in the order declared (routes.py)


class RewardIn(Body):
    name: Text(80)
    cost: Int(1, 1_000_000)
    stock: Int(0, 1_000_000) | None = None
    per_user_limit: Int(1, 1000) | None = None
    limit_period: LimitPeriod | None = None
    description: Maybe(Text(500, required=False), "") = ""
    category: Maybe(Category, "goods") = "goods"
    available_from: Moment | None = None
    available_until: Moment | None = None


class RewardOut(Out):
    id: int
    name: str
    cost: int
    stock: int | None
    per_user_limit: int | None
    limit_period: LimitPeriod | None
    category: Category
    description: str
    village_id: int | None
    available_from: Time | None
    available_until: Time | None


class Catalog(Out):
    items: list[RewardOut]


class RedeemIn(Body):
    reward_id: Id


class RedemptionOut(Out):
    id: int
    reward_id: int
    status: RedemptionStatus
    voucher_code: str
    balance: int
    expires_at: Time


class StatusOut(Out):
    id: int
    status: RedemptionStatus


class CancelledOut(StatusOut):
    balance: int


class VoucherOut(Out):
    id: int
    reward_id: int
    name: str
    status: RedemptionStatus
    voucher_code: str
    cost: int
    created_at: Time
    expires_at: Time


class Vouchers(Out):
    items: list[VoucherOut]


def reward_out(reward) -> RewardOut:
    return RewardOut(id=reward.id, name=reward.name, cost=reward.cost, stock=reward.stock,
                     per_user_limit=reward.per_user_limit, limit_period=reward.limit_period,
                     category=str(reward.category), description=reward.description,
                     village_id=reward.village_id, available_from=reward.available_from,
                     available_until=reward.available_until)


@api.endpoint("POST", "/villages/{id:id}/rewards", idempotent=True, body=RewardIn,
              returns=RewardOut, summary="Add an item to the village catalog",
              summary_zh="在村的兑换目录里添加物品", status=201, tag="rewards",
              errors=["forbidden", "not_found", "invalid_request"],
              links={"redeem": ("redeem", {"requestBody": {"reward_id": "$response.body#/id"}})})
async def create_reward(request: Request, body: RewardIn) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    reward = await service.create_reward(actor=actor, village=village,
                                         fields=service.RewardFields(**body.model_dump()))
    return reward_out(reward)


@api.endpoint("GET", "/villages/{id:id}/rewards", returns=Catalog,
              summary="The village catalog (with town-wide items)",
              summary_zh="村的兑换目录（含全镇通用的物品）", tag="rewards",
              errors=["not_found", "forbidden"])
async def list_rewards(request: Request, body: None) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    rewards = await queries.catalog(village, include_inactive=False)
    return Catalog(items=[reward_out(r) for r in rewards])


@api.endpoint("POST", "/redemptions", idempotent=True, body=RedeemIn, returns=RedemptionOut,
              summary="Redeem points for an item; honours Idempotency-Key",
              summary_zh="用积分兑换物品，得到兑换券", status=201, tag="rewards",
              errors=["not_found", "forbidden", "not_available", "out_of_stock", "limit_reached",
                      "insufficient_points", "invalid_request"],
              links={"fulfil": ("fulfil", {"parameters": {"code": "$response.body#/voucher_code"}}),
                     "cancel": ("cancel", {"parameters": {"id": "$response.body#/id"}})})
async def redeem(request: Request, body: RedeemIn) -> object:
    user, helper = await require_person(request)
    result = await service.redeem_reward(user=user, reward_id=body.reward_id, helper=helper)
    r = result.redemption
    return RedemptionOut(id=r.id, reward_id=r.reward_id, status=str(r.status),
                         voucher_code=r.voucher_code, balance=result.balance,
                         expires_at=r.expires_at)


@api.endpoint("POST", "/vouchers/{code}/fulfil", idempotent=True, returns=StatusOut,
              summary="Staff hand over the item of a voucher",
              summary_zh="工作人员核销兑换券、交付物品",
              tag="rewards", errors=["not_found", "forbidden", "invalid_state"])
async def fulfil(request: Request, body: None) -> object:
    staff = await require_user(request)
    redemption = await service.fulfil_voucher(staff=staff, code=request.path_params["code"])
    return StatusOut(id=redemption.id, status=str(redemption.status))


@api.endpoint("POST", "/redemptions/{id:bigid}/cancel", idempotent=True, returns=CancelledOut,
              summary="Cancel a pending voucher (refund)",
              summary_zh="取消未交付的兑换券（退回积分）",
              tag="rewards", errors=["not_found", "forbidden", "invalid_state"])
async def cancel(request: Request, body: None) -> object:
    actor, helper = await require_person(request)
    redemption, balance = await service.cancel_redemption(
        actor=actor, redemption_id=request.path_params["id"], helper=helper)
    return CancelledOut(id=redemption.id, status=str(redemption.status), balance=balance)


@api.endpoint("GET", "/me/redemptions", returns=Vouchers, summary="My vouchers, newest first",
              summary_zh="我的兑换券，最新的在前", tag="rewards")
async def my_redemptions(request: Request, body: None) -> object:
    user = await require_user(request)
    items = await queries.vouchers_of(user.id)
    return Vouchers(items=[VoucherOut(id=r.id, reward_id=r.reward_id, name=r.reward.name,
                                      status=str(r.status), voucher_code=r.voucher_code,
                                      cost=r.cost, created_at=r.created_at,
                                      expires_at=r.expires_at) for r in items])
