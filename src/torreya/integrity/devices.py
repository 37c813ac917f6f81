"""The devices residents' own check-ins come from, noted after the check-in answered and
written in batches: the check-in's transaction (and the express batch) stays as it was, and
what the hot path pays is one list append.

A device is what sent the check-in request (SPEC §4.13): the device cookie the check-in
pages set on first visit, else the client's address and User-Agent together (an app or a
browser refusing cookies). A family helper acting for a resident is not noted: they are
registered to act for them.

Each web process notes its own and writes them every few seconds (`run`, in the app's
lifespan) and when it stops; then it looks at each (event, device) it wrote for the
one_device_many_residents pattern (detect.crowd_on_one_device). A process killed loses what
it had not written yet: a signal is a hint, not a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from torreya.db import conn, insert_rows
from torreya.integrity.detect import crowd_on_one_device
from torreya.models import Event

log = logging.getLogger("torreya")

COOKIE = "torreya_device"
COOKIE_DAYS = 3650
FLUSH_SECONDS = 2.0

_pending: list[dict] = []


def device_of(request: Request) -> tuple[str, str, str]:
    """(device key, client address, User-Agent) of a request."""
    address = request.client.host if request.client else ""
    agent = request.headers.get("user-agent", "")[:200]
    cookie = request.cookies.get(COOKIE, "")
    if 16 <= len(cookie) <= 64 and cookie.isalnum():
        return f"cookie:{cookie}", address, agent
    digest = hashlib.sha256(f"{address}\n{agent}".encode()).hexdigest()[:40]
    return f"agent:{digest}", address, agent


def remember(request: Request, response: Response, *, secure: bool) -> Response:
    """Give a browser its device cookie on its first check-in page."""
    if COOKIE not in request.cookies:
        response.set_cookie(COOKIE, secrets.token_hex(16), max_age=COOKIE_DAYS * 86400,
                            httponly=True, samesite="lax", secure=secure)
    return response


def noted(request: Request, *, checkin_id: int, event: Event, user_id: int,
          moment: datetime, helper_id: int | None) -> None:
    """A resident's own check-in succeeded: note where it came from (nothing written now)."""
    if helper_id is not None:
        return
    device, address, agent = device_of(request)
    _pending.append({"checkin_id": checkin_id, "event_id": event.id, "user_id": user_id,
                     "town_id": event.town_id, "village_id": event.village_id,
                     "device": device, "address": address[:64], "agent": agent,
                     "created_at": moment})


async def flush() -> int:
    """Write what this process noted, then look for crowds on one device. Returns how many
    were written."""
    taken = _pending[:]
    del _pending[:len(taken)]
    if not taken:
        return 0
    try:
        for start in range(0, len(taken), 500):
            await insert_rows(conn(), "device_sightings", taken[start:start + 500])
    except Exception:  # the database away: noted again, written next time
        _pending[:0] = taken
        raise
    new: dict[tuple[int, str], datetime] = {}
    for row in taken:
        key = (row["event_id"], row["device"])
        new[key] = min(new.get(key, row["created_at"]), row["created_at"])
    for (event_id, device), since in sorted(new.items()):
        await crowd_on_one_device(event_id, device, since)
    return len(taken)


async def run(stop: asyncio.Event) -> None:
    """Write the noted sightings every few seconds until `stop`, then once more."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
        try:
            await flush()
        except Exception:
            log.exception("integrity: writing check-in devices failed")
