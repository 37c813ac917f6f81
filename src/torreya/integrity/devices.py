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
from tortoise.transactions import in_transaction

from torreya.db import conn, insert_rows, is_postgres
from torreya.integrity.detect import crowd_on_one_device, forget_updates
from torreya.models import Event

log = logging.getLogger("torreya")

COOKIE = "torreya_device"
COOKIE_DAYS = 3650
FLUSH_SECONDS = 2.0

_pending: list[dict] = []
# (event, device) → the earliest sighting written but not yet looked at (an incident
# updated lately is looked at again later, detect.UPDATE_EVERY)
_unread: dict[tuple[int, str], datetime] = {}


def forget() -> None:
    """A new database (tests, a new app): nothing noted, nothing waiting."""
    _pending.clear()
    _unread.clear()
    forget_updates()


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
    if not taken and not _unread:
        return 0
    try:
        await _write(taken)
    except Exception:  # the database away: noted again, written next time
        _pending[:0] = taken
        raise
    for row in taken:
        key = (row["event_id"], row["device"])
        _unread[key] = min(_unread.get(key, row["created_at"]), row["created_at"])
    for (event_id, device), since in sorted(_unread.items()):
        # The app's flusher and another flush (a test's, the last one at shutdown) may look
        # at the same device at once: whichever finishes first settles it, and a sighting
        # noted meanwhile (an earlier `since`) stays to be looked at.
        if await crowd_on_one_device(event_id, device, since) \
                and _unread.get((event_id, device)) == since:
            del _unread[(event_id, device)]
    return len(taken)


async def _write(rows: list[dict]) -> None:
    """One COPY on PostgreSQL (a few thousand rows a flush under a crowd's load cost the
    database less so than as an INSERT's parameters); on SQLite INSERTs of 500 rows in one
    transaction."""
    client = conn()
    if not rows:
        return
    if is_postgres(client):
        columns = list(rows[0])
        async with client.acquire_connection() as connection:
            await connection.copy_records_to_table(
                "device_sightings", columns=columns,
                records=[tuple(row[c] for c in columns) for row in rows])
        return
    async with in_transaction() as connection:  # one commit, one flush to disk
        for start in range(0, len(rows), 500):
            await insert_rows(connection, "device_sightings", rows[start:start + 500])


async def run(stop: asyncio.Event) -> None:
    """Write the noted sightings every few seconds until `stop`, then once more."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
        try:
            await flush()
        except Exception:
            log.exception("integrity: writing check-in devices failed")
