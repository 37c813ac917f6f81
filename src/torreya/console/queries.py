"""Reads for the committee console, always scoped to what the viewer may see."""

from __future__ import annotations

from torreya.accounts.permissions import is_platform_admin
from torreya.models import AuditEvent, Role, Town, User, Village


async def towns_for(user: User) -> list[Town]:
    if is_platform_admin(user):
        return await Town.all().order_by("id")
    if user.town_id is None:
        return []
    return await Town.filter(id=user.town_id)


async def villages_for(user: User, town_id: int | None = None) -> list[Village]:
    query = Village.all()
    if is_platform_admin(user):
        if town_id is not None:
            query = query.filter(town_id=town_id)
    elif user.role == Role.TOWN_ADMIN:
        query = query.filter(town_id=user.town_id)
    else:
        query = query.filter(id=user.village_id or 0)
    return await query.order_by("id")


async def audit_events_for(user: User, *, before: int | None = None, limit: int = 50
                           ) -> list[AuditEvent]:
    query = AuditEvent.all().prefetch_related("actor")
    if not is_platform_admin(user):
        if user.role == Role.TOWN_ADMIN:
            query = query.filter(town_id=user.town_id)
        else:
            query = query.filter(village_id=user.village_id or 0)
    if before:
        query = query.filter(id__lt=before)
    return await query.order_by("-id").limit(limit)


async def users_of_village(village: Village, *, search: str = "", limit: int = 200
                           ) -> list[User]:
    query = User.filter(village_id=village.id)
    if search:
        query = query.filter(display_name__icontains=search) | User.filter(
            village_id=village.id, username__icontains=search)
    return await query.order_by("role", "id").limit(limit)
