"""Signals: raised (one per incident, updated while open), listed, resolved by a person."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import require_village
from torreya.db import fetch, now
from torreya.errors import ConflictError, NotFoundError
from torreya.integrity.thresholds import Thresholds, of_town
from torreya.models import Role, Signal, SignalKind, SignalStatus, Town, Village
from torreya.outbox.service import Message, emit


class AlreadyResolvedError(ConflictError):
    code = "invalid_state"
    message = "This signal was already resolved."


@dataclass(frozen=True)
class Finding:
    """What a detector found: the incident and its evidence as of now."""

    kind: SignalKind
    town_id: int
    village_id: int
    incident: str
    user_ids: list[int]
    evidence: dict = field(default_factory=dict)


async def resolved_since(kind: SignalKind, incident: str) -> datetime | None:
    """When the latest signal of this incident was resolved: only what happened after it
    may raise it again (a dismissed signal does not come back with the same evidence)."""
    last = await Signal.filter(kind=kind, incident=incident).exclude(
        status=SignalStatus.OPEN).order_by("-resolved_at").first()
    return last.resolved_at if last else None


async def raise_signal(connection: BaseDBAsyncClient, finding: Finding) -> int:
    """Open a signal for the incident, or bring its open one up to date: one statement,
    safe when two workers find the same incident at once (the partial unique index of
    migration 0029). A new signal is also the outbox event `signal.raised`. Returns its id."""
    moment = now()
    users = sorted(set(finding.user_ids))
    rows = await fetch(connection, (
        "INSERT INTO signals (town_id, village_id, kind, incident, user_ids, evidence, status,"
        " note, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'open', '', ?, ?)"
        " ON CONFLICT (kind, incident) WHERE status = 'open' DO UPDATE SET"
        " user_ids = excluded.user_ids, evidence = excluded.evidence,"
        " updated_at = excluded.updated_at RETURNING id, created_at, updated_at"),
        [finding.town_id, finding.village_id, str(finding.kind), finding.incident,
         json.dumps(users), json.dumps(finding.evidence, ensure_ascii=False, default=str),
         moment, moment])
    row = rows[0]
    if row["created_at"] == row["updated_at"]:  # new: the update moves only updated_at
        await emit(connection, Message(event_type="signal.raised", town_id=finding.town_id,
                                       data={"id": int(row["id"]), "kind": str(finding.kind),
                                             "village_id": finding.village_id,
                                             "user_ids": users, "created_at": moment}))
    return int(row["id"])


async def village_signals(actor, village: Village, *, status: SignalStatus | None,
                          limit: int = 200) -> list[Signal]:
    """The village's signals, newest first (staff and above of the village)."""
    require_village(actor, village, Role.STAFF)
    query = Signal.filter(village_id=village.id)
    if status is not None:
        query = query.filter(status=status)
    return await query.order_by("-id").limit(limit)


async def open_count(village_id: int) -> int:
    return await Signal.filter(village_id=village_id, status=SignalStatus.OPEN).count()


async def signal_for(actor, signal_id: int, minimum: Role = Role.STAFF) -> tuple[Signal, Village]:
    """A signal the actor may see (another village's is not found)."""
    signal = await Signal.get_or_none(id=signal_id)
    village = await Village.get_or_none(id=signal.village_id) if signal else None
    if signal is None or village is None:
        raise NotFoundError()
    require_village(actor, village, minimum)
    return signal, village


async def resolve(actor, signal_id: int, *, decision: str, note: str) -> Signal:
    """Dismiss or confirm (village admin and above), with a note; audit logged. Confirming
    changes nothing by itself: the signal page offers the tools (an adjustment, ending a
    resident's logins). Raises not_found, forbidden, invalid_state (already resolved)."""
    signal, village = await signal_for(actor, signal_id, Role.VILLAGE_ADMIN)
    status = SignalStatus.CONFIRMED if decision == "confirm" else SignalStatus.DISMISSED
    moment = now()
    async with in_transaction() as connection:
        changed = await Signal.filter(id=signal.id, status=SignalStatus.OPEN).using_db(
            connection).update(status=status, note=note, resolved_by_id=actor.id,
                               resolved_at=moment)
        if not changed:
            raise AlreadyResolvedError()
        await audit.record(actor, f"integrity:signal:{decision}", connection=connection,
                           subject=f"signal:{signal.id}", town_id=village.town_id,
                           village_id=village.id,
                           data={"kind": str(signal.kind), "note": note,
                                 "user_ids": signal.user_ids})
    signal.status, signal.note, signal.resolved_at = status, note, moment
    signal.resolved_by_id = actor.id
    return signal


async def town_thresholds(town_id: int) -> Thresholds:
    town = await Town.get(id=town_id)
    return of_town(town.integrity)
