"""Who may act where. Pure policy over loaded models; no queries.

Objects outside the actor's tenant are reported as not found (a probe learns nothing);
inside it, a role that is too low is forbidden.
"""

from __future__ import annotations

from torreya.errors import ForbiddenError, NotFoundError
from torreya.models import Role, User, Village
from torreya.models.tenancy import ROLE_RANK


def rank(role: Role | str) -> int:
    return ROLE_RANK[Role(role)]


def is_platform_admin(user: User) -> bool:
    return user.role == Role.PLATFORM_ADMIN


def in_town(user: User, town_id: int) -> bool:
    return is_platform_admin(user) or user.town_id == town_id


def in_village(user: User, village: Village) -> bool:
    """The village is inside the user's reach: their own, or any of their town for a town admin."""
    if is_platform_admin(user):
        return True
    if user.role == Role.TOWN_ADMIN:
        return user.town_id == village.town_id
    return user.village_id == village.id


def require_role(user: User, minimum: Role) -> None:
    if user.rank < rank(minimum):
        raise ForbiddenError()


def require_town(user: User, town_id: int, minimum: Role) -> None:
    if not in_town(user, town_id):
        raise NotFoundError()
    require_role(user, minimum)


def require_village(user: User, village: Village, minimum: Role) -> None:
    if not in_village(user, village):
        raise NotFoundError()
    require_role(user, minimum)


def require_over(actor: User, target: User, minimum: Role) -> None:
    """The actor may act on the target person: same tenant, high enough role."""
    if is_platform_admin(actor):
        return
    if actor.role == Role.TOWN_ADMIN:
        reach = target.town_id == actor.town_id
    else:
        reach = target.village_id is not None and target.village_id == actor.village_id
    if not reach and actor.id != target.id:
        raise NotFoundError()
    require_role(actor, minimum)


def assignable_roles(actor: User) -> list[Role]:
    """Roles this actor may give to a new user (never above their own; platform via CLI)."""
    if actor.rank < rank(Role.VILLAGE_ADMIN):
        return []
    return [r for r in Role if r != Role.PLATFORM_ADMIN and rank(r) <= actor.rank]
