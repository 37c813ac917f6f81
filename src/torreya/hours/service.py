"""Volunteer hours (志愿时长, SPEC §4.15): what a resident attended, counted from what is
already recorded — patrols' approved minutes and the minutes between check-in and check-out
at events that record leaving — and certificates of them, signed with the town's key.

Nothing here is a ledger fact: hours are read, never written, and a certificate is a signed
statement of what was read at its issue time.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_over
from torreya.db import now
from torreya.errors import ConflictError, InvalidRequestError, NotFoundError
from torreya.hours import certificate
from torreya.masking import mask_name
from torreya.models import (
    Checkin,
    Event,
    Patrol,
    PatrolParticipant,
    PatrolStatus,
    Role,
    Route,
    ServiceCertificate,
    Town,
    TownKey,
    User,
    Village,
)
from torreya.settings import LOCAL, Settings
from torreya.trust.signing import current_key, sign

# The longest period one certificate states (a school asks for a year or a term; five
# years covers a middle school and a high school).
LONGEST = timedelta(days=5 * 366)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class NoHoursError(ConflictError):
    code = "no_hours"
    message = "No volunteer hours were recorded in this period."


class CertificateRevokedError(ConflictError):
    code = "invalid_state"
    message = "This certificate is already revoked."


@dataclass(frozen=True)
class Item:
    kind: str  # patrol | event
    ref_id: int
    title: str
    minutes: int
    day: date


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The UTC moments from `start` 00:00 to the day after `end` 00:00, village time."""
    first = datetime.combine(start, time(), LOCAL).astimezone(UTC)
    last = datetime.combine(end + timedelta(days=1), time(), LOCAL).astimezone(UTC)
    return first, last


def year_bounds(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


async def items_of(user_ids: list[int], start: date, end: date) -> dict[int, list[Item]]:
    """Each resident's attended items in the days `start`..`end`, earliest first."""
    if not user_ids:
        return {}
    first, last = day_bounds(start, end)
    found: dict[int, list[Item]] = {user_id: [] for user_id in user_ids}
    checkins = await Checkin.filter(user_id__in=user_ids, minutes__gt=0, created_at__gte=first,
                                    created_at__lt=last).values(
        "user_id", "event_id", "minutes", "created_at")
    titles = dict(await Event.filter(id__in={c["event_id"] for c in checkins}).values_list(
        "id", "title")) if checkins else {}
    for c in checkins:
        found[c["user_id"]].append(Item("event", c["event_id"], titles.get(c["event_id"], ""),
                                        c["minutes"], c["created_at"].astimezone(LOCAL).date()))
    joined = await PatrolParticipant.filter(user_id__in=user_ids).values_list("patrol_id",
                                                                              "user_id")
    by_patrol: dict[int, list[int]] = {}
    for patrol_id, user_id in joined:
        by_patrol.setdefault(patrol_id, []).append(user_id)
    if by_patrol:
        patrols = await Patrol.filter(id__in=list(by_patrol), status=PatrolStatus.APPROVED,
                                      duration_minutes__gt=0, started_at__gte=first,
                                      started_at__lt=last).values(
            "id", "route_id", "duration_minutes", "started_at")
        routes = dict(await Route.filter(id__in={p["route_id"] for p in patrols}).values_list(
            "id", "name")) if patrols else {}
        for p in patrols:
            for user_id in by_patrol[p["id"]]:
                found[user_id].append(Item("patrol", p["id"], routes.get(p["route_id"], ""),
                                           p["duration_minutes"],
                                           p["started_at"].astimezone(LOCAL).date()))
    for items in found.values():
        items.sort(key=lambda item: (item.day, item.kind, item.ref_id))
    return found


async def items_for(user: User, start: date, end: date) -> list[Item]:
    return (await items_of([user.id], start, end))[user.id]


async def village_hours(village_ids: list[int], start: date, end: date
                        ) -> list[tuple[User, int, int]]:
    """(resident, minutes, items) of those with hours in the period, most minutes first."""
    residents = {u.id: u for u in await User.filter(village_id__in=village_ids,
                                                    role=Role.RESIDENT)}
    found = await items_of(list(residents), start, end)
    lines = [(residents[user_id], sum(i.minutes for i in items), len(items))
             for user_id, items in found.items() if items]
    lines.sort(key=lambda line: (-line[1], line[0].id))
    return lines


def validate_period(start: date, end: date) -> None:
    today = now().astimezone(LOCAL).date()
    if end < start:
        raise InvalidRequestError("Field %(name)s must be after %(other)s.", field="to",
                                  name="to", other="from")
    if end > today:
        raise InvalidRequestError("The period cannot end after today.", field="to")
    if end - start > LONGEST:
        raise InvalidRequestError("Field %(name)s is at most %(days)s days after %(other)s.",
                                  field="to", name="to", other="from", days=LONGEST.days)


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))


async def issue(settings: Settings, *, actor: User, holder: User, start: date,
                end: date) -> ServiceCertificate:
    """Sign a certificate of `holder`'s hours in `start`..`end` with the town's current
    key. The holder asks for their own (or a family helper for them, their login being
    theirs); staff of the village for a resident without a phone. Raises no_hours."""
    if actor.id != holder.id:
        require_over(actor, holder, Role.STAFF)
    if holder.role != Role.RESIDENT:
        raise ConflictError("Only residents have volunteer hours.", code="invalid_state")
    validate_period(start, end)
    items = await items_for(holder, start, end)
    minutes = sum(item.minutes for item in items)
    if not minutes:
        raise NoHoursError()
    town = await Town.get(id=holder.town_id)
    village = await Village.get_or_none(id=holder.village_id) if holder.village_id else None
    key = await current_key(settings, town.id)
    issued_at = now().replace(microsecond=0)
    salt = certificate.new_salt()
    for _attempt in range(3):  # a code drawn twice (1 in 10^18) draws again
        code = _new_code()
        text = certificate.payload(
            code=code, holder=mask_name(holder.display_name), salt=salt,
            full_name=holder.display_name, town=town.name, town_id=town.id,
            village=village.name if village else "", minutes=minutes, items=len(items),
            start=start, end=end, issued_at=issued_at, key_id=key.id)
        signature = sign(settings, key, text.encode()).hex()
        try:
            async with in_transaction() as connection:
                issued = await ServiceCertificate.create(
                    code=code, user=holder, town_id=town.id, village_id=holder.village_id,
                    period_from=start, period_to=end, minutes=minutes, items=len(items),
                    key_id=key.id, payload=text, signature=signature, issued_at=issued_at,
                    issued_by=actor, using_db=connection)
                await audit.record(actor, "hours:certificate:issue", connection=connection,
                                   subject=f"user:{holder.id}", town_id=town.id,
                                   village_id=holder.village_id,
                                   data={"code": code, "minutes": minutes,
                                         "from": start.isoformat(), "to": end.isoformat()})
            return issued
        except IntegrityError:
            continue
    raise ConflictError("Please try again.")  # pragma: no cover - three codes drawn twice


async def by_code(code: str) -> ServiceCertificate:
    found = await ServiceCertificate.get_or_none(code=code.strip().upper()[:24])
    if found is None:
        raise NotFoundError("No certificate has this number.")
    return found


async def revoke(*, actor: User, code: str, reason: str) -> ServiceCertificate:
    """Staff of the holder's village revoke a certificate (issued in error, hours
    corrected): it stays listed, as revoked, and its verify address says so."""
    found = await by_code(code)
    holder = await User.get(id=found.user_id)
    require_over(actor, holder, Role.STAFF)
    reason = reason.strip()
    if not reason:
        raise InvalidRequestError("Please give a reason.", field="reason")
    async with in_transaction() as connection:
        done = await ServiceCertificate.filter(id=found.id, revoked_at=None).using_db(
            connection).update(revoked_at=now(), revoked_by_id=actor.id,
                               revoke_reason=reason[:200])
        if not done:
            raise CertificateRevokedError()
        await audit.record(actor, "hours:certificate:revoke", connection=connection,
                           subject=f"user:{holder.id}", town_id=found.town_id,
                           village_id=found.village_id,
                           data={"code": found.code, "reason": reason[:200]})
    return await by_code(code)


async def public_doc(found: ServiceCertificate) -> dict:
    """What anyone may see of a certificate: the signed fields but the name's salt and
    hash, its status, the signature and the payload, and the key that checks it."""
    signed = json.loads(found.payload)
    key = await TownKey.get_or_none(id=found.key_id)
    return {
        "code": found.code, "status": "revoked" if found.revoked_at else "valid",
        "holder": signed["holder"], "town": signed["town"], "village": signed["village"],
        "minutes": signed["minutes"], "items": signed["items"], "from": signed["from"],
        "to": signed["to"], "issued_at": signed["issued_at"], "key_id": signed["key_id"],
        "public_key": key.public_key if key else "",
        "revoked_at": certificate.issued_text(found.revoked_at) if found.revoked_at else None,
        "signature": found.signature, "payload": found.payload,
    }


async def certificates_of(user: User) -> list[ServiceCertificate]:
    return await ServiceCertificate.filter(user_id=user.id).order_by("-id").limit(50)
