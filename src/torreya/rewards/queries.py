"""Reads of catalogs, vouchers and stock movements."""

from __future__ import annotations

from tortoise.expressions import Q

from torreya.models import Redemption, RedemptionStatus, Reward, StockMovement, Village


async def catalog(village: Village, *, include_inactive: bool) -> list[Reward]:
    """The village's own items and the town-wide ones, cheapest first."""
    query = Reward.filter(Q(village_id=village.id) | Q(village_id=None), town_id=village.town_id)
    if not include_inactive:
        query = query.filter(is_active=True)
    return await query.order_by("cost", "id")


async def vouchers_of(user_id: int, limit: int = 50) -> list[Redemption]:
    return await Redemption.filter(user_id=user_id).order_by("-id").limit(limit
                                                                         ).prefetch_related("reward")


async def pending_pickups(village: Village, limit: int = 200) -> list[Redemption]:
    return await Redemption.filter(village_id=village.id, status=RedemptionStatus.PENDING
                                   ).order_by("id").limit(limit).prefetch_related("reward",
                                                                                   "user")


async def stock_movements(village: Village, limit: int = 100) -> list[StockMovement]:
    """Movements of the village's items and of town-wide items picked up in this village."""
    query = StockMovement.filter(Q(village_id=village.id) | Q(
        village_id=None, redemption__village_id=village.id), town_id=village.town_id)
    return await query.order_by("-id").limit(limit).prefetch_related("reward", "redemption__user")
