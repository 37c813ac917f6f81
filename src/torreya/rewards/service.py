"""Commands on catalogs and vouchers: redeem, fulfil, cancel, expire, manage items.

Redeeming is one transaction: the redemption row claims the client's Idempotency-Key,
a conditional UPDATE takes stock, the ledger debits the balance (conditional too), and the
per-resident limit is counted after the account row is locked. Lock order is always
reward row, then account row, so redeem and cancel cannot deadlock.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import in_village, require_village
from torreya.db import now
from torreya.errors import ConflictError, ForbiddenError, InvalidRequestError, NotFoundError
from torreya.images import reencoded
from torreya.ledger.periods import period_start
from torreya.ledger.service import Posting, post_entry
from torreya.models import (
    Redemption,
    RedemptionStatus,
    Reward,
    RewardImage,
    Role,
    StockMovement,
    Town,
    User,
    Village,
)
from torreya.outbox.service import Message, emit
from torreya.rewards.codes import new_voucher_code, normalize_voucher_code
from torreya.signin.family import Acting

LIMIT_PERIODS = ("day", "week", "month", "year")
OPEN = (RedemptionStatus.PENDING, RedemptionStatus.FULFILLED)


class OutOfStockError(ConflictError):
    code = "out_of_stock"
    message = "Sorry, this item is out of stock."


class LimitReachedError(ConflictError):
    code = "limit_reached"
    message = "You have reached the limit for this item."


class NotAvailableError(ConflictError):
    code = "not_available"
    message = "This item is not available now."


class InvalidStateError(ConflictError):
    code = "invalid_state"
    message = "This voucher was already used, cancelled or has expired."


@dataclass(frozen=True)
class RedeemResult:
    redemption: Redemption
    balance: int
    replayed: bool


def is_available(reward: Reward, moment: datetime | None = None) -> bool:
    moment = moment or now()
    return reward.is_active and not (
        (reward.available_from and moment < reward.available_from)
        or (reward.available_until and moment > reward.available_until)
    )


def visible_to(reward: Reward, user: User) -> bool:
    return reward.town_id == user.town_id and reward.village_id in (None, user.village_id)


def redemption_message(event_type: str, redemption: Redemption, *,
                       actor: User | None) -> Message:
    """The outbox message about a voucher (its code stays out: it is what staff scan)."""
    return Message(event_type=event_type, town_id=redemption.town_id, data={
        "id": redemption.id, "reward_id": redemption.reward_id, "user_id": redemption.user_id,
        "village_id": redemption.village_id, "cost": redemption.cost,
        "status": str(redemption.status), "actor_id": actor.id if actor else None,
        "created_at": redemption.created_at, "expires_at": redemption.expires_at,
        "closed_at": redemption.closed_at})


async def redeem_reward(*, user: User, reward_id: int, staff: User | None = None,
                        helper: Acting | None = None) -> RedeemResult:
    """Spend points on an item and get a pending voucher.

    With `staff`, village staff redeem at the counter for a resident without a phone: the
    entry is marked as a proxy action with the staff member as actor. The redemption, its
    stock movement, ledger entry, audit record and outbox messages commit together.
    Raises not_found (not in the user's catalog), forbidden (not a resident), not_available,
    out_of_stock, limit_reached, insufficient_points. Retries are made harmless by the
    caller's idempotency key (`torreya.idempotency`).
    """
    if staff is not None:
        from torreya.accounts.permissions import require_over

        require_over(staff, user, Role.STAFF)
    reward = await Reward.get_or_none(id=reward_id)
    if reward is None or not visible_to(reward, user):
        raise NotFoundError("This item is not in your village's catalog.")
    if user.role != Role.RESIDENT:
        raise ForbiddenError("Only residents can redeem points.")
    if not is_available(reward):
        raise NotAvailableError()
    town = await Town.get(id=reward.town_id)
    for _attempt in range(3):
        try:
            async with in_transaction() as connection:
                redemption = await _redeem(connection, user, reward, town, staff, helper)
            return RedeemResult(redemption, user.balance, False)
        except IntegrityError as error:
            if "voucher_code" not in str(error):
                raise
            # the random voucher code collided: draw another
    raise ConflictError("Please try again.")


async def _redeem(connection: BaseDBAsyncClient, user: User, reward: Reward, town: Town,
                  staff: User | None, helper: Acting | None) -> Redemption:
    moment = now()
    redemption = await Redemption.create(
        reward=reward, user=user, town_id=reward.town_id, village_id=user.village_id,
        cost=reward.cost, status=RedemptionStatus.PENDING, voucher_code=new_voucher_code(),
        idem_key=f"redeem:{uuid.uuid4().hex}",
        expires_at=moment + timedelta(days=town.voucher_days), created_at=moment,
        using_db=connection)
    if reward.stock is not None:
        taken = await Reward.filter(id=reward.id, stock__gte=1).using_db(connection).update(
            stock=F("stock") - 1)
        if not taken:
            raise OutOfStockError()
        await StockMovement.create(reward=reward, village_id=reward.village_id,
                                   town_id=reward.town_id, delta=-1, reason="redeem",
                                   redemption=redemption, actor=staff or user,
                                   created_at=moment, using_db=connection)
    entry = await post_entry(
        Posting(user=user, delta=-reward.cost, kind="redemption", memo=reward.name,
               idem_key=f"redemption:{redemption.id}", source_type="redemption",
               source_id=redemption.id, actor=staff or user, proxy=staff is not None,
               helper=helper),
        connection,
        also=[redemption_message("redemption.created", redemption, actor=staff or user)])
    if reward.per_user_limit is not None:
        # Counted after post_entry locked the account row: concurrent redemptions by the
        # same resident are serialised there and see each other here.
        query = Redemption.filter(user_id=user.id, reward_id=reward.id, status__in=OPEN)
        if reward.limit_period:
            query = query.filter(created_at__gte=period_start(reward.limit_period, moment))
        if await query.using_db(connection).count() > reward.per_user_limit:
            raise LimitReachedError()
    await audit.record(staff or user, "rewards:redemption:" + ("proxy" if staff else "create"),
                       connection=connection, subject=f"redemption:{redemption.id}",
                       town_id=user.town_id, village_id=user.village_id,
                       entry_id=entry.id if staff else None,
                       data={"reward": reward.id, "cost": reward.cost, "for": user.id})
    return redemption


async def _village_of(redemption: Redemption) -> Village:
    return await Village.get(id=redemption.village_id)


async def fulfil_voucher(*, staff: User, code: str, audit_data: dict | None = None
                         ) -> Redemption:
    """Staff hand over the item. Raises not_found (unknown or another village's code),
    invalid_state (already fulfilled, cancelled or expired). `audit_data` adds to the
    audit record (an offline scan's two times)."""
    normalized = normalize_voucher_code(code)
    redemption = await Redemption.get_or_none(voucher_code=normalized) if normalized else None
    if redemption is None or not in_village(staff, await _village_of(redemption)):
        raise NotFoundError("No voucher with this code.")
    require_village(staff, await _village_of(redemption), Role.STAFF)
    if redemption.status == RedemptionStatus.PENDING and redemption.expires_at < now():
        await _close(redemption, RedemptionStatus.EXPIRED, actor=None)
        raise InvalidStateError()
    moment = now()
    async with in_transaction() as connection:
        done = await Redemption.filter(id=redemption.id, status=RedemptionStatus.PENDING
                                       ).using_db(connection).update(
            status=RedemptionStatus.FULFILLED, closed_at=moment, closed_by_id=staff.id)
        if not done:
            raise InvalidStateError()
        redemption.status, redemption.closed_at = RedemptionStatus.FULFILLED, moment
        await audit.record(staff, "rewards:voucher:fulfil", connection=connection,
                           subject=f"redemption:{redemption.id}", town_id=redemption.town_id,
                           village_id=redemption.village_id, data=audit_data)
        await emit(connection, redemption_message("redemption.fulfilled", redemption,
                                                  actor=staff))
    return redemption


async def cancel_redemption(*, actor: User, redemption_id: int, helper: Acting | None = None
                            ) -> tuple[Redemption, int]:
    """The owner or village staff cancel a pending voucher: points back, stock back.

    Returns the redemption and the owner's new balance. Raises not_found, invalid_state.
    """
    redemption = await Redemption.get_or_none(id=redemption_id)
    if redemption is None:
        raise NotFoundError()
    if redemption.user_id != actor.id:
        require_village(actor, await _village_of(redemption), Role.STAFF)
    balance = await _close(redemption, RedemptionStatus.CANCELLED, actor=actor,
                           helper=helper)
    if balance is None:
        raise InvalidStateError()
    return redemption, balance


async def _close(redemption: Redemption, status: RedemptionStatus, *, actor: User | None,
                 helper: Acting | None = None) -> int | None:
    """Cancel or expire a pending redemption with its refund, audit record and outbox
    message; None if it was not pending."""
    reward = await Reward.get(id=redemption.reward_id)
    owner = await User.get(id=redemption.user_id)
    moment = now()
    async with in_transaction() as connection:
        claimed = await Redemption.filter(id=redemption.id, status=RedemptionStatus.PENDING
                                          ).using_db(connection).update(
            status=status, closed_at=moment, closed_by_id=actor.id if actor else None)
        if not claimed:
            return None
        redemption.status, redemption.closed_at = status, moment
        if reward.stock is not None:
            await Reward.filter(id=reward.id).using_db(connection).update(stock=F("stock") + 1)
            await StockMovement.create(reward=reward, village_id=reward.village_id,
                                       town_id=reward.town_id, delta=1, reason=str(status),
                                       redemption=redemption, actor=actor, created_at=moment,
                                       using_db=connection)
        event_type = ("redemption.cancelled" if status == RedemptionStatus.CANCELLED
                      else "redemption.expired")
        entry = await post_entry(
            Posting(user=owner, delta=redemption.cost, kind="refund", memo=reward.name,
                   idem_key=f"refund:{redemption.id}", source_type="redemption",
                   source_id=redemption.id, actor=actor, helper=helper),
            connection, also=[redemption_message(event_type, redemption, actor=actor)])
        tag = ("rewards:redemption:cancel" if status == RedemptionStatus.CANCELLED
               else "rewards:voucher:expire")
        await audit.record(actor, tag, connection=connection,
                           subject=f"redemption:{redemption.id}", town_id=redemption.town_id,
                           village_id=redemption.village_id,
                           entry_id=entry.id if actor and actor.id != owner.id else None,
                           data={"refund": redemption.cost, "for": owner.id})
    return owner.balance


async def expire_vouchers(*, limit: int = 500) -> int:
    """Refund pending vouchers past their expiry (each with its own audit record); safe to
    run from every worker at once."""
    due = await Redemption.filter(status=RedemptionStatus.PENDING, expires_at__lt=now()
                                  ).order_by("id").limit(limit)
    expired = 0
    for redemption in due:
        if await _close(redemption, RedemptionStatus.EXPIRED, actor=None) is not None:
            expired += 1
    return expired


# -- the catalog -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RewardFields:
    name: str
    cost: int
    stock: int | None = None
    per_user_limit: int | None = None
    description: str = ""
    category: str = "goods"
    limit_period: str | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None


def _check(fields: RewardFields) -> None:
    if fields.cost <= 0:
        raise InvalidRequestError("Field %(name)s must be at least %(min)s.", field="cost",
                                  name="cost", min=1)
    if fields.limit_period is not None and fields.limit_period not in LIMIT_PERIODS:
        raise InvalidRequestError("Field %(name)s must be one of: %(choices)s.",
                                  field="limit_period", name="limit_period",
                                  choices=", ".join(LIMIT_PERIODS))
    if (fields.available_from and fields.available_until
            and fields.available_until <= fields.available_from):
        raise InvalidRequestError("The end must be after the start.", field="available_until")


async def create_reward(*, actor: User, village: Village, fields: RewardFields,
                        image: bytes = b"") -> Reward:
    """A village's new item, with the picture uploaded with it (`image`; none: empty). The
    picture is re-encoded first, once: a bad one refuses the item before anything is
    written, and the item and its picture are written together."""
    require_village(actor, village, Role.VILLAGE_ADMIN)
    _check(fields)
    picture = await reencoded(image) if image else None
    async with in_transaction() as connection:
        # Console items get a key too, so an exported pack re-imports without duplicates.
        reward = await Reward.create(town_id=village.town_id, village=village,
                                     key=f"{village.code}-{secrets.token_hex(4)}",
                                     using_db=connection, **fields.__dict__)
        if fields.stock:
            await StockMovement.create(reward=reward, village_id=village.id,
                                       town_id=village.town_id, delta=fields.stock,
                                       reason="initial", actor=actor, created_at=now(),
                                       using_db=connection)
        await audit.record(actor, "rewards:reward:create", connection=connection,
                           subject=f"reward:{reward.id}", town_id=village.town_id,
                           village_id=village.id,
                           data={"name": reward.name, "cost": reward.cost,
                                 "stock": reward.stock})
        if picture is not None:
            await _store_picture(connection, actor, reward, picture)
    return reward


async def restock(*, actor: User, reward: Reward, delta: int) -> Reward:
    """Add (or write off, negative) stock; recorded as a public movement."""
    village = await Village.get(id=reward.village_id) if reward.village_id else None
    if village is not None:
        require_village(actor, village, Role.VILLAGE_ADMIN)
    else:
        from torreya.accounts.permissions import require_town

        require_town(actor, reward.town_id, Role.TOWN_ADMIN)
    if reward.stock is None:
        raise InvalidRequestError("This item has unlimited stock.", field="delta")
    async with in_transaction() as connection:
        changed = await Reward.filter(id=reward.id, stock__gte=-delta).using_db(connection
                                                                                ).update(
            stock=F("stock") + delta)
        if not changed:
            raise OutOfStockError("Not that many left to write off.")
        await StockMovement.create(reward=reward, village_id=reward.village_id,
                                   town_id=reward.town_id, delta=delta, reason="restock",
                                   actor=actor, created_at=now(), using_db=connection)
        await reward.refresh_from_db(using_db=connection)
        await audit.record(actor, "rewards:stock:change", connection=connection,
                           subject=f"reward:{reward.id}", town_id=reward.town_id,
                           village_id=reward.village_id,
                           data={"delta": delta, "stock": reward.stock})
    return reward


async def update_reward(*, actor: User, reward: Reward, fields: RewardFields) -> Reward:
    """Change an item's name, cost, limits or window. Stock changes go through `restock`
    (they are public movements), so `fields.stock` is ignored here."""
    village = await Village.get(id=reward.village_id) if reward.village_id else None
    if village is None:
        raise ForbiddenError("Town-wide items are managed through the scheme pack.")
    require_village(actor, village, Role.VILLAGE_ADMIN)
    _check(fields)
    values = {k: v for k, v in fields.__dict__.items() if k != "stock"}
    before = {k: getattr(reward, k) for k in ("name", "cost", "per_user_limit")}
    async with in_transaction() as connection:
        await Reward.filter(id=reward.id).using_db(connection).update(**values)
        await reward.refresh_from_db(using_db=connection)
        await audit.record(actor, "rewards:reward:update", connection=connection,
                           subject=f"reward:{reward.id}", town_id=reward.town_id,
                           village_id=reward.village_id,
                           data={"before": before,
                                 "after": {k: getattr(reward, k) for k in before}})
    return reward


async def set_reward_active(*, actor: User, reward: Reward, active: bool) -> None:
    village = await Village.get(id=reward.village_id) if reward.village_id else None
    if village is None:
        raise ForbiddenError("Town-wide items are managed through the scheme pack.")
    require_village(actor, village, Role.VILLAGE_ADMIN)
    async with in_transaction() as connection:
        await Reward.filter(id=reward.id).using_db(connection).update(is_active=active)
        await audit.record(actor, "rewards:reward:" + ("activate" if active else "deactivate"),
                           connection=connection, subject=f"reward:{reward.id}",
                           town_id=reward.town_id, village_id=reward.village_id)


async def set_reward_image(*, actor: User, reward: Reward, data: bytes) -> None:
    village = await Village.get(id=reward.village_id) if reward.village_id else None
    if village is None:
        raise ForbiddenError("Town-wide items are managed through the scheme pack.")
    require_village(actor, village, Role.VILLAGE_ADMIN)
    picture = await reencoded(data)
    async with in_transaction() as connection:
        await _store_picture(connection, actor, reward, picture)


async def _store_picture(connection, actor: User, reward: Reward,
                         picture: tuple[bytes, str]) -> None:
    """`reward`'s picture, re-encoded (images.reencoded), in place of any it had."""
    content, content_type = picture
    await RewardImage.filter(reward_id=reward.id).using_db(connection).delete()
    await RewardImage.create(reward=reward, content=content, content_type=content_type,
                             using_db=connection)
    await Reward.filter(id=reward.id).using_db(connection).update(has_image=True)
    reward.has_image = True
    await audit.record(actor, "rewards:reward:image", connection=connection,
                       subject=f"reward:{reward.id}", town_id=reward.town_id,
                       village_id=reward.village_id, data={"bytes": len(content)})
