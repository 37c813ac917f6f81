"""An event as a check-in reads it: by id, from a worker's own copy, and whether it is open."""

from __future__ import annotations

from datetime import datetime

from torreya.db import get_one, now
from torreya.models import Event


def is_open(event: Event, moment: datetime | None = None) -> bool:
    moment = moment or now()
    return event.starts_at <= moment <= event.ends_at


# Events are never changed once created (no command updates or deletes them), so each
# worker keeps the ones it has read: the hottest read of every check-in costs nothing after
# the first. Keep in sync: a command that changes events must call `forget_events()`.
_EVENTS: dict[int, Event] = {}
_EVENTS_KEPT = 2048


async def event_by_id(event_id: int) -> Event | None:
    event = _EVENTS.get(event_id)
    if event is None:
        event = await get_one(Event, id=event_id)
        if event is not None:
            if len(_EVENTS) >= _EVENTS_KEPT:
                _EVENTS.clear()
            _EVENTS[event_id] = event
    return event


def forget_events() -> None:
    """A new database (tests, a new app): ids may name other events now."""
    _EVENTS.clear()
