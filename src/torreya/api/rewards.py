"""API: catalogs, redemptions and vouchers."""

from __future__ import annotations

from starlette.requests import Request

from torreya.accounts.service import resolve_village
from torreya.api.registry import endpoint, json
from torreya.rewards import queries, service
from torreya.validation import Field
from torreya.web import require_user


def reward_json(reward) -> dict:
    return {"id": reward.id, "name": reward.name, "cost": reward.cost, "stock": reward.stock,
            "per_user_limit": reward.per_user_limit, "limit_period": reward.limit_period,
            "category": str(reward.category), "description": reward.description,
            "village_id": reward.village_id,
            "available_from": reward.available_from.isoformat() if reward.available_from
            else None,
            "available_until": reward.available_until.isoformat() if reward.available_until
            else None}


@endpoint("POST", "/villages/{id:id}/rewards", idempotent=True,
          summary="Add an item to the village catalog",
          status=201, tag="rewards",
          body=[Field(name="name", max_length=80), Field(name="cost", type=int, minimum=1,
                                                         maximum=1_000_000),
                Field(name="stock", type=int, required=False, nullable=True, minimum=0,
                      maximum=1_000_000),
                Field(name="per_user_limit", type=int, required=False, nullable=True,
                      minimum=1, maximum=1000),
                Field(name="limit_period", required=False, nullable=True, max_length=8,
                      choices=service.LIMIT_PERIODS),
                Field(name="description", required=False, max_length=500),
                Field(name="category", required=False, max_length=16,
                      choices=["goods", "service", "honour"])],
          errors=["forbidden", "not_found", "invalid_request"])
async def create_reward(request: Request, body: dict) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    body["category"] = body["category"] or "goods"
    reward = await service.create_reward(actor=actor, village=village,
                                         fields=service.RewardFields(**body))
    return json(reward_json(reward), 201)


@endpoint("GET", "/villages/{id:id}/rewards", summary="The village catalog (with town-wide items)",
          tag="rewards", errors=["not_found"])
async def list_rewards(request: Request, body: dict) -> object:
    actor = await require_user(request)
    village = await resolve_village(actor, request.path_params["id"])
    rewards = await queries.catalog(village, include_inactive=False)
    return json({"items": [reward_json(r) for r in rewards]})


@endpoint("POST", "/redemptions", idempotent=True,
          returns="id:int reward_id:int status voucher_code balance:int expires_at:time",
          summary="Redeem points for an item; honours Idempotency-Key",
          status=201, tag="rewards", body=[Field(name="reward_id", type=int, minimum=1)],
          errors=["not_found", "forbidden", "not_available", "out_of_stock", "limit_reached",
                  "insufficient_points"])
async def redeem(request: Request, body: dict) -> object:
    user = await require_user(request)
    result = await service.redeem_reward(user=user, reward_id=body["reward_id"])
    r = result.redemption
    return json({"id": r.id, "reward_id": r.reward_id, "status": str(r.status),
                 "voucher_code": r.voucher_code, "balance": result.balance,
                 "expires_at": r.expires_at.isoformat()}, 201)


@endpoint("POST", "/vouchers/{code}/fulfil", idempotent=True, returns="id:int status",
          summary="Staff hand over the item of a voucher",
          tag="rewards", errors=["not_found", "forbidden", "invalid_state"])
async def fulfil(request: Request, body: dict) -> object:
    staff = await require_user(request)
    redemption = await service.fulfil_voucher(staff=staff, code=request.path_params["code"])
    return json({"id": redemption.id, "status": str(redemption.status)})


@endpoint("POST", "/redemptions/{id:bigid}/cancel", idempotent=True,
          returns="id:int status balance:int",
          summary="Cancel a pending voucher (refund)",
          tag="rewards", errors=["not_found", "forbidden", "invalid_state"])
async def cancel(request: Request, body: dict) -> object:
    actor = await require_user(request)
    redemption, balance = await service.cancel_redemption(actor=actor,
                                                          redemption_id=request.path_params["id"])
    return json({"id": redemption.id, "status": str(redemption.status), "balance": balance})


@endpoint("GET", "/me/redemptions", summary="My vouchers, newest first", tag="rewards")
async def my_redemptions(request: Request, body: dict) -> object:
    user = await require_user(request)
    items = await queries.vouchers_of(user.id)
    return json({"items": [{"id": r.id, "reward_id": r.reward_id, "name": r.reward.name,
                            "status": str(r.status), "voucher_code": r.voucher_code,
                            "cost": r.cost, "created_at": r.created_at.isoformat(),
                            "expires_at": r.expires_at.isoformat()} for r in items]})
