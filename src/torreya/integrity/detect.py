"""The detectors, each reading what the changes already wrote, after they committed:

- `crowd_on_one_device`: the check-in devices a web process wrote (devices.py);
- `from_messages`: the outbox messages the delivery worker has just dispatched (manual
  adjustments, reports with photos, approved patrols);
- `earning_outliers`: a daily sweep of the last 30 days' earnings, village by village.

Each finding is raised through signals.raise_signal: one signal per incident, updated with
new evidence while open; after it is resolved only newer evidence raises it again.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections import deque
from datetime import datetime, timedelta

from PIL import Image
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from torreya.db import conn, fetch, now
from torreya.integrity.signals import Finding, raise_signal, resolved_since, town_thresholds
from torreya.models import (
    DeviceSighting,
    Event,
    FamilyHelper,
    HouseholdMember,
    LedgerEntry,
    PatrolScan,
    PhotoPrint,
    Report,
    ReportPhoto,
    Role,
    Route,
    SignalKind,
    Town,
    User,
)

# Check-in devices are kept this long; a signal keeps its own evidence.
KEEP_DAYS = 90

log = logging.getLogger("torreya")


async def _raise(finding: Finding) -> None:
    async with in_transaction() as connection:
        await raise_signal(connection, finding)


def _at(moment: datetime) -> str:
    return moment.isoformat()


# --- one device, many residents (代签) ---------------------------------------------------

# An open signal of a crowd is brought up to date at most this often by one process: a
# crowd of thousands (a village app behind one address) is not read again every flush.
UPDATE_EVERY = 60.0
_updated: dict[str, float] = {}  # incident → when this process last raised or updated it


def forget_updates() -> None:
    _updated.clear()


async def crowd_on_one_device(event_id: int, device: str, since: datetime) -> bool:
    """Residents' own check-ins at one event from one device, some of them new (from
    `since`): at least `device_residents` different residents within `device_minutes`
    raise a signal naming every resident checked in from that device at the event. Reads
    the window around the new ones, not the event's whole history. False when the
    incident's open signal was updated lately: the caller asks again later."""
    incident = f"event:{event_id}:{device}"
    moment = time.monotonic()
    if moment - _updated.get(incident, -UPDATE_EVERY) < UPDATE_EVERY:
        return False
    event = await Event.get_or_none(id=event_id)
    if event is None:
        return True
    limits = await town_thresholds(event.town_id)
    resolved = await resolved_since(SignalKind.ONE_DEVICE_MANY_RESIDENTS, incident)
    window = timedelta(minutes=limits.device_minutes)
    earliest = since - window if resolved is None else max(since - window, resolved)
    most = await _most_in_window(event_id, device, earliest, window, limits.device_residents)
    if not most:
        return True
    everyone = DeviceSighting.filter(event_id=event_id, device=device)
    if resolved is not None:
        everyone = everyone.filter(created_at__gt=resolved)
    users = await everyone.distinct().values_list("user_id", flat=True)
    latest = await everyone.order_by("-created_at", "-id").limit(EVIDENCE_ROWS)
    await _raise(Finding(
        kind=SignalKind.ONE_DEVICE_MANY_RESIDENTS, town_id=event.town_id,
        village_id=event.village_id, incident=incident, user_ids=list(users),
        evidence={"event_id": event.id, "event_title": event.title,
                  "device": "cookie" if device.startswith("cookie:") else "address",
                  "address": latest[0].address, "agent": latest[0].agent,
                  "most_in_window": most, "residents": len(users),
                  "minutes": limits.device_minutes,
                  "checkins": [{"checkin_id": r.checkin_id, "user_id": r.user_id,
                                "at": _at(r.created_at)} for r in reversed(latest)]}))
    for old in [k for k, at in _updated.items() if moment - at >= UPDATE_EVERY]:
        del _updated[old]
    _updated[incident] = moment
    return True


# A signal's evidence lists this many check-ins at most (the latest); it names everyone.
EVIDENCE_ROWS = 200


# Sightings read at a time: one address at a village event (its Wi-Fi, a benchmark's
# generator) may have thousands in ten minutes, and reading them all at once held every
# request of the process up for 100 ms.
PAGE = 500


async def _most_in_window(event_id: int, device: str, earliest: datetime, window: timedelta,
                          enough: int) -> int:
    """The most different residents checked in from `device` at the event within any
    `window` after `earliest`, or 0 when fewer than `enough`: counted in the database
    first, then one pass over the sightings in time order, a page at a time."""
    counted = await fetch(conn(), "SELECT COUNT(DISTINCT user_id) AS n FROM device_sightings"
                          " WHERE event_id = ? AND device = ? AND created_at > ?",
                          [event_id, device, earliest])
    if int(counted[0]["n"]) < enough:
        return 0
    sightings = DeviceSighting.filter(event_id=event_id, device=device,
                                      created_at__gt=earliest)
    crowd, after = _Crowd(window), (earliest, 0)
    while True:
        page = await sightings.filter(
            Q(created_at__gt=after[0]) | Q(created_at=after[0], id__gt=after[1]),
        ).order_by("created_at", "id").limit(PAGE).values_list("id", "user_id", "created_at")
        for _id, user_id, at in page:
            crowd.add(user_id, at)
        if len(page) < PAGE:
            break
        after = (page[-1][2], page[-1][0])
    return crowd.most if crowd.most >= enough else 0


class _Crowd:
    """The most different residents within any `window` of sightings fed in time order:
    a count per resident inside the window, which slides as they come."""

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self.inside: dict[int, int] = {}
        self.kept: deque[tuple[int, datetime]] = deque()
        self.most = 0

    def add(self, user_id: int, at: datetime) -> None:
        self.kept.append((user_id, at))
        self.inside[user_id] = self.inside.get(user_id, 0) + 1
        while at - self.kept[0][1] > self.window:
            gone, _at = self.kept.popleft()
            self.inside[gone] -= 1
            if not self.inside[gone]:
                del self.inside[gone]
        self.most = max(self.most, len(self.inside))


# --- from the outbox ---------------------------------------------------------------------

async def from_messages(messages: list[dict]) -> None:
    """Look at the messages just dispatched; a detector that fails is logged and the others
    go on (a signal is a hint: the outbox is not held up for it)."""
    for message in messages:
        kind = message["event_type"]
        if kind not in ("ledger.entry_created", "report.created", "patrol.approved"):
            continue
        payload = message["payload"]
        data = payload if isinstance(payload, dict) else json.loads(payload)
        try:
            if kind == "ledger.entry_created":
                if data["kind"] == "adjustment" and data["delta"] > 0:
                    await concentrated_adjustments(int(data["id"]))
            elif kind == "report.created":
                await duplicate_photo(int(data["id"]))
            else:
                await patrol_pace(int(data["id"]))
        except Exception:
            log.exception("integrity: detecting on %s %s failed", kind, data.get("id"))


async def concentrated_adjustments(entry_id: int) -> None:
    """A manual positive adjustment: the actor's to this resident within `adjustment_days`
    (at least `adjustments` of them), and any adjustment between family helper links."""
    entry = await LedgerEntry.get_or_none(id=entry_id)
    if entry is None or entry.actor_id is None:
        return
    actor = await User.get_or_none(id=entry.actor_id)
    resident = await User.get_or_none(id=entry.user_id)
    if actor is None or resident is None or resident.village_id is None:
        return
    limits = await town_thresholds(entry.town_id)
    kind = SignalKind.ADJUSTMENTS_CONCENTRATED
    incident = f"actor:{actor.id}:user:{resident.id}"
    since = max(now() - timedelta(days=limits.adjustment_days),
                await resolved_since(kind, incident) or datetime.min.replace(tzinfo=now().tzinfo))
    entries = await LedgerEntry.filter(
        user_id=resident.id, actor_id=actor.id, kind="adjustment", delta__gt=0,
        created_at__gt=since).order_by("id")
    family = await _family_link(actor, resident)
    if len(entries) < limits.adjustments and not family:
        return
    await _raise(Finding(
        kind=kind, town_id=entry.town_id, village_id=resident.village_id, incident=incident,
        user_ids=[resident.id],
        evidence={"actor_id": actor.id, "actor_name": actor.display_name,
                  "count": len(entries), "days": limits.adjustment_days,
                  "points": sum(e.delta for e in entries), "family_link": family,
                  "entries": [{"entry_id": e.id, "delta": e.delta, "memo": e.memo,
                               "at": _at(e.created_at)} for e in entries]}))


async def _family_link(actor: User, resident: User) -> str | None:
    """How the actor and the resident are family, if they are: linked as family helpers,
    or members of one household now."""
    if actor.phone and await FamilyHelper.exists(member_id=resident.id, phone=actor.phone):
        return "actor_helps_resident"
    if resident.phone and await FamilyHelper.exists(member_id=actor.id, phone=resident.phone):
        return "resident_helps_actor"
    # the actor's own household: through their account, or the resident account that has
    # their phone (a clerk is a villager too, with an account of each kind)
    selves = [actor.id]
    if actor.phone:
        selves += await User.filter(phone=actor.phone, role=Role.RESIDENT).exclude(
            id=resident.id).values_list("id", flat=True)
    theirs = set(await HouseholdMember.filter(user_id__in=selves, left_at=None).values_list(
        "household_id", flat=True))
    if theirs and await HouseholdMember.exists(user_id=resident.id, left_at=None,
                                               household_id__in=list(theirs)):
        return "same_household"
    return None


def photo_print(content: bytes) -> str:
    """A 64-bit difference hash: the image in grey at 9×8, each pixel compared with its right
    neighbour. A re-encoding or a resize of a photo keeps nearly every bit."""
    with Image.open(io.BytesIO(content)) as image:
        small = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
        pixels = small.tobytes()  # one byte a pixel, row by row
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = bits << 1 | (pixels[row * 9 + col] > pixels[row * 9 + col + 1])
    return f"{bits:016x}"


def distance(one: str, other: str) -> int:
    return (int(one, 16) ^ int(other, 16)).bit_count()


async def duplicate_photo(report_id: int) -> None:
    """A report's photo the same as (or a re-encoding of) another resident's earlier one."""
    report = await Report.get_or_none(id=report_id)
    photo = await ReportPhoto.get_or_none(report_id=report_id) if report else None
    if report is None or photo is None:
        return
    mine = photo_print(bytes(photo.content))
    await PhotoPrint.get_or_create(report_id=report.id, defaults={
        "town_id": report.town_id, "user_id": report.user_id, "print": mine,
        "created_at": report.created_at})
    limits = await town_thresholds(report.town_id)
    matches = [(other, distance(mine, other.print)) for other in await PhotoPrint.filter(
        town_id=report.town_id, report_id__lt=report.id).exclude(user_id=report.user_id)]
    matches = [(other, d) for other, d in matches if d <= limits.photo_distance]
    if not matches:
        return
    await _raise(Finding(
        kind=SignalKind.DUPLICATE_PHOTO, town_id=report.town_id, village_id=report.village_id,
        incident=f"report:{report.id}",
        user_ids=[report.user_id, *(other.user_id for other, _ in matches)],
        evidence={"report_id": report.id, "user_id": report.user_id,
                  "at": _at(report.created_at),
                  "earlier": [{"report_id": other.report_id, "user_id": other.user_id,
                               "at": _at(other.created_at), "difference": d}
                              for other, d in matches]}))


async def patrol_pace(patrol_id: int) -> None:
    """An approved patrol whose scans came faster than its route can be walked: between two
    plates at least `walk_minutes` for each place apart in the route's order."""
    scans = await PatrolScan.filter(patrol_id=patrol_id).prefetch_related(
        "checkpoint", "patrol").order_by("created_at", "id")
    if len(scans) < 2:
        return
    patrol = scans[0].patrol
    route = await Route.get(id=patrol.route_id)
    fast = []
    by_user: dict[int, list[PatrolScan]] = {}
    for scan in scans:
        by_user.setdefault(scan.user_id, []).append(scan)
    for user_id, walked in by_user.items():
        for before, after in zip(walked, walked[1:], strict=False):
            apart = abs(after.checkpoint.position - before.checkpoint.position)
            needed = apart * route.walk_minutes * 60
            took = (after.created_at - before.created_at).total_seconds()
            if took < needed:
                fast.append({"user_id": user_id, "from": before.checkpoint.name,
                             "to": after.checkpoint.name, "seconds": int(took),
                             "least_seconds": needed, "at": _at(after.created_at)})
    if not fast:
        return
    await _raise(Finding(
        kind=SignalKind.PATROL_PACE, town_id=patrol.town_id, village_id=patrol.village_id,
        incident=f"patrol:{patrol.id}", user_ids=[f["user_id"] for f in fast],
        evidence={"patrol_id": patrol.id, "route_id": route.id, "route_name": route.name,
                  "walk_minutes": route.walk_minutes, "scans": len(scans), "too_fast": fast}))


# --- earning outliers (daily) ------------------------------------------------------------

async def earning_outliers(town_id: int) -> int:
    """Residents whose last 30 days' earned points are above `outlier_factor` × the village
    median and in its top `outlier_top_percent`, in villages of at least
    `outlier_min_residents` earning residents. One signal per resident per month.
    Medians and ranks are worked out in the database, which answers only the outliers: a
    county town's 300,000 residents' sums read and ranked here had held every request of
    the process up for 150 ms."""
    limits = await town_thresholds(town_id)
    moment = now()
    found = await fetch(conn(), (
        "WITH earned AS (SELECT e.user_id, u.village_id, SUM(e.delta) AS points"
        " FROM ledger_entries e JOIN users u ON u.id = e.user_id WHERE e.town_id = ?"
        " AND e.counts_as_earned AND e.delta > 0 AND e.created_at >= ?"
        " AND u.village_id IS NOT NULL GROUP BY e.user_id, u.village_id),"
        " ranked AS (SELECT user_id, village_id, points,"
        " ROW_NUMBER() OVER (PARTITION BY village_id ORDER BY points DESC, user_id) AS place,"
        " ROW_NUMBER() OVER (PARTITION BY village_id ORDER BY points, user_id) AS up,"
        " COUNT(*) OVER (PARTITION BY village_id) AS residents FROM earned),"
        # the median: the middle one, or the mean of the middle two
        " middles AS (SELECT village_id, AVG(points) AS middle FROM ranked"
        " WHERE up IN ((residents + 1) / 2, (residents + 2) / 2) GROUP BY village_id)"
        " SELECT r.user_id, r.village_id, r.points, r.place, r.residents, m.middle"
        " FROM ranked r JOIN middles m ON m.village_id = r.village_id"
        " WHERE r.residents >= ? AND r.place <= (r.residents * ? + 99) / 100"  # ⌈n·p/100⌉
        " AND r.points > CAST(? AS INTEGER) * m.middle ORDER BY r.village_id, r.place"),
        [town_id, moment - timedelta(days=30), limits.outlier_min_residents,
         limits.outlier_top_percent, limits.outlier_factor])
    for row in found:
        middle = float(row["middle"])
        user_id = row["user_id"]
        await _raise(Finding(
            kind=SignalKind.EARNING_OUTLIER, town_id=town_id, village_id=row["village_id"],
            incident=f"user:{user_id}:{moment:%Y-%m}", user_ids=[user_id],
            evidence={"user_id": user_id, "points": int(row["points"]),
                      "median": int(middle) if middle.is_integer() else middle,
                      "factor": limits.outlier_factor, "residents": int(row["residents"]),
                      "rank": int(row["place"]), "days": 30}))
    return len(found)


# A day between sweeps, per process (several workers may each sweep: one signal per
# incident all the same).
SWEEP_EVERY = timedelta(days=1)
_swept: list[datetime] = []


async def daily_sweep() -> int:
    """Earning outliers in every town, and old check-in devices forgotten; once a day."""
    moment = now()
    if _swept and moment - _swept[0] < SWEEP_EVERY:
        return 0
    _swept[:] = [moment]
    await DeviceSighting.filter(created_at__lt=moment - timedelta(days=KEEP_DAYS)).delete()
    raised = 0
    for town_id in await Town.all().values_list("id", flat=True):
        raised += await earning_outliers(town_id)
    return raised
