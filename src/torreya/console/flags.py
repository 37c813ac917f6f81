"""Unusual activity of the people who move points, flagged for the town admin (issue 17):
adjustments above the town's step-up size, many adjustments by one person in an hour, and
anything staff or admins did at night (22:00–06:00 Asia/Shanghai)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from torreya.db import now
from torreya.i18n import lazy_gettext
from torreya.models import AuditEvent, Role, Town, User
from torreya.settings import LOCAL

NIGHT_FROM, NIGHT_UNTIL = 22, 6
MANY_PER_HOUR = 20
LOOK_BACK = timedelta(days=7)
_QUIET_TAGS = ("accounts:login:", "accounts:step_up:", "accounts:password:")


@dataclass(frozen=True)
class Flag:
    event: AuditEvent
    reason: object  # a lazily translated text


async def unusual_activity(viewer: User, *, limit: int = 2000) -> list[Flag]:
    """The last week's flagged records in the viewer's town (town admins and the platform);
    nothing for others."""
    if viewer.role not in (Role.TOWN_ADMIN, Role.PLATFORM_ADMIN):
        return []
    query = AuditEvent.filter(created_at__gte=now() - LOOK_BACK,
                              actor__role__in=[Role.STAFF, Role.VILLAGE_ADMIN,
                                               Role.TOWN_ADMIN])
    if viewer.role == Role.TOWN_ADMIN:
        query = query.filter(town_id=viewer.town_id)
    events = await query.prefetch_related("actor").order_by("-id").limit(limit)
    sizes = {t.id: t.step_up_points for t in await Town.filter(
        id__in={e.town_id for e in events if e.town_id})}
    hours = Counter((e.actor_id, e.created_at.replace(minute=0, second=0, microsecond=0))
                    for e in events if e.tag == "ledger:adjustment:create")
    flags = []
    for event in events:
        if event.tag.startswith(_QUIET_TAGS):
            continue
        delta = (event.data or {}).get("delta")
        hour = event.created_at.replace(minute=0, second=0, microsecond=0)
        local = event.created_at.astimezone(LOCAL)
        if (event.tag == "ledger:adjustment:create" and isinstance(delta, int)
                and abs(delta) > sizes.get(event.town_id, 10**9)):
            flags.append(Flag(event, lazy_gettext("large adjustment")))
        elif event.tag == "ledger:adjustment:create" and hours[(event.actor_id, hour)] > (
                MANY_PER_HOUR):
            flags.append(Flag(event, lazy_gettext("many adjustments in one hour")))
        elif local.hour >= NIGHT_FROM or local.hour < NIGHT_UNTIL:
            flags.append(Flag(event, lazy_gettext("at night")))
    return flags
