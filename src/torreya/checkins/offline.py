"""Offline staff scanning (issue 15): the kit a staff phone keeps for an event, and the sync
that applies the scans it queued without signal, each exactly once and judged at the
moment it was made.

The kit holds the town's public keys (to verify signed cards and vouchers), the revocation
list (reissued cards, deactivated residents) and the event. A sync is a batch of
`{nonce, code, scanned_at}`; each scan's nonce is claimed in the transaction that applies
it, so a queue sent twice (a second tab, a retry after a lost answer, two phones that
shared it) is applied once and the repeat is answered with the first outcome.

The card scans that simply succeed are credited in sets, through the express check-in's
batches (`_credit_in_sets`); every other scan (a voucher, a refusal, a repeat, a resident's
second scan) is applied one by one (`_sync_one`), which says why.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import Field
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya.accounts.permissions import require_village
from torreya.api.schema import Body, Moment, Text, validate_model
from torreya.audit import acting_helper, request_ip
from torreya.checkins import signed as signed_codes
from torreya.checkins.checkout import check_out
from torreya.checkins.codes import read_member_code
from torreya.checkins.service import credit_check_in, may_check_in, may_take_part
from torreya.db import insert_rows, now, replaying
from torreya.errors import DomainError, NotFoundError
from torreya.i18n import gettext as _
from torreya.ledger import batch as ledger_batch
from torreya.ledger.batch import BatchCheckin
from torreya.ledger.rules import rule_for
from torreya.ledger.writer import AlreadyCheckedInError
from torreya.masking import mask_name
from torreya.models import (
    CheckinRefusal,
    EarningRule,
    Event,
    OfflineScan,
    Redemption,
    RedemptionStatus,
    Role,
    TownKey,
    User,
    Village,
)
from torreya.rewards.codes import normalize_voucher_code
from torreya.rewards.service import InvalidStateError, fulfil_voucher
from torreya.settings import Settings
from torreya.trust.encoding import utc_text
from torreya.trust.signing import current_key

MAX_BATCH = 500
CHUNK = 50
# Card scans credited in one set (ledger/batch.py write_batch): two sets to a 200-scan sync, so the
# second's checking overlaps the first's writing (docs/benchmarks.md: 50 and 200 were slower).
SET = 100
# Chunks applied at once on PostgreSQL, each on its own connection.
LANES = 4
# A phone's clock may be a little ahead; a queue may wait a fortnight for signal.
CLOCK_SLACK = timedelta(minutes=5)
MAX_AGE = timedelta(days=14)


async def _staff_event(staff: User, event_id: int) -> Event:
    event = await Event.get_or_none(id=event_id)
    if event is None:
        raise NotFoundError()
    require_village(staff, await Village.get(id=event.village_id), Role.STAFF)
    return event


async def kit(settings: Settings, *, staff: User, event_id: int) -> dict:
    """What a staff phone needs to scan this event offline."""
    event = await _staff_event(staff, event_id)
    await current_key(settings, event.town_id)  # a town's first kit makes its key
    keys = await TownKey.filter(town_id=event.town_id).order_by("id")
    revoked = await User.filter(town_id=event.town_id, role=Role.RESIDENT).filter(
        card_serial__gt=1).values_list("id", "card_serial")
    inactive = await User.filter(town_id=event.town_id, role=Role.RESIDENT,
                                 is_active=False).values_list("id", flat=True)
    return {
        "event": {"id": event.id, "title": event.title, "town_id": event.town_id,
                  "village_id": event.village_id, "points": event.points,
                  "checkout": event.checkout,
                  "starts_at": utc_text(event.starts_at), "ends_at": utc_text(event.ends_at)},
        "keys": [{"id": k.id, "public_key": signed_codes.public_key_b64(k)} for k in keys],
        # a card whose serial is lower than the resident's current one was reissued
        "revoked": {"serials": {str(user): serial for user, serial in revoked},
                    "inactive": list(inactive)},
        "made_at": utc_text(now()),
    }


@dataclass(frozen=True)
class QueuedScan:
    nonce: str
    code: str
    scanned_at: datetime


class ScanIn(Body):
    nonce: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$",
                                description="Random, made by the phone for each scan")]
    code: Text(signed_codes.MAX_LENGTH, markup=True,
               description="The signed (S1.…) or typed code as scanned")
    scanned_at: Moment


class ScanBatch(Body):
    scans: list[ScanIn] = Field(min_length=1, max_length=MAX_BATCH)


def read_batch(data: object) -> list[QueuedScan]:
    """A sync body `{"scans": [{"nonce", "code", "scanned_at"}, …]}`, or 422 naming the
    first bad field (`scans[3].nonce`). A scan time the server finds impossible (ahead of
    it, or weeks old) is the scan's own refusal, not the batch's."""
    return scans_of(validate_model(ScanBatch, data))


def scans_of(batch: ScanBatch) -> list[QueuedScan]:
    """The batch's scans, each nonce once (a phone that queued one twice)."""
    seen: set[str] = set()
    scans = []
    for item in batch.scans:
        if item.nonce not in seen:
            seen.add(item.nonce)
            scans.append(QueuedScan(item.nonce, item.code, item.scanned_at))
    return scans


class ScanTimeError(DomainError):
    status = 422
    code = "invalid_scan_time"
    message = "The phone's clock said this scan was made at an impossible time."


class CardRevokedError(DomainError):
    status = 409
    code = "card_revoked"
    message = "This card was replaced by a new one and no longer works."


class InvalidCardError(DomainError):
    status = 422
    code = "invalid_token"
    message = "This code is not a genuine member card or voucher of this town."


async def sync(settings: Settings, *, staff: User, event_id: int, scans: list[QueuedScan]
               ) -> list[dict]:
    """Apply each queued scan once; the outcome of each, in order (see `_result`)."""
    event = await _staff_event(staff, event_id)
    keys = {k.id: k for k in await TownKey.filter(town_id=event.town_id)}
    rule = await rule_for(event.town_id, "checkin")
    results: dict[int, dict] = {}
    await _credit_in_sets(settings, staff, event, scans, keys, results)

    async def run(chunk: Chunk) -> None:
        # The chunk's residents in one read (whose cards they are is checked scan by scan).
        ids = chunk.resident_ids
        residents = {user.id: user for user in await User.filter(id__in=ids)} if ids else {}
        # A few dozen scans commit together, each in a savepoint of its own (a refusal or a
        # repeat undoes only itself): one commit, not one per scan, and the database is
        # never held for long (SQLite has one connection per process).
        async with in_transaction():
            for index, scan in chunk.scans:
                results[index] = await _sync_one(settings, staff, event, scan, keys, rule,
                                                 residents)

    chunks = _chunks(settings, [(index, scan) for index, scan in enumerate(scans)
                                if index not in results])
    if settings.is_sqlite:  # one connection: chunks at once would only queue for it
        for chunk in chunks:
            await run(chunk)
    else:
        # On PostgreSQL a few chunks go at once, each on a connection of its own, so one
        # chunk's statements travel while another's wait. Each resident's (and voucher's)
        # scans are all in one chunk, so two chunks never take the same rows, let alone in
        # opposite orders.
        lanes = asyncio.Semaphore(LANES)

        async def lane(chunk: Chunk) -> None:
            async with lanes:
                await run(chunk)

        await asyncio.gather(*(lane(chunk) for chunk in chunks))
    return [results[index] for index in range(len(scans))]


@dataclass
class Chunk:
    scans: list[tuple[int, QueuedScan]]  # with their places in the batch
    resident_ids: set[int]  # whom its card scans name, to read them at once


def _chunks(settings: Settings, scans: list[tuple[int, QueuedScan]], size: int = CHUNK
            ) -> list[Chunk]:
    """The scans (with their places in the batch) in chunks of about `size`, all the scans
    of one resident or one voucher in the same chunk, in the order they were made."""
    by_subject: dict[str, list[tuple[int, QueuedScan]]] = {}
    for index, scan in scans:
        by_subject.setdefault(_subject(settings, scan.code), []).append((index, scan))
    chunks = [Chunk([], set())]
    for subject, group in by_subject.items():
        # As made, whatever order the phone sent them in: a resident's first scan is the
        # check-in, the later ones check out (an event with check-out).
        group.sort(key=lambda pair: pair[1].scanned_at)
        if chunks[-1].scans and len(chunks[-1].scans) + len(group) > size:
            chunks.append(Chunk([], set()))
        chunks[-1].scans.extend(group)
        if subject.startswith("card:"):
            chunks[-1].resident_ids.add(int(subject.removeprefix("card:")))
    return [chunk for chunk in chunks if chunk.scans]


def _subject(settings: Settings, code: str) -> str:
    """Whom a code names, before it is checked: only to keep one resident's scans together
    (a forged code costs nothing here; it is refused when applied)."""
    parsed = signed_codes.parse(code)
    if parsed is not None:
        fields = parsed[0]
        return f"card:{fields.subject_id}" if fields.kind == "card" else f"voucher:{fields.voucher}"
    card = read_member_code(settings, code) if code.upper().startswith("M") else None
    return f"card:{card[0]}" if card else f"voucher:{normalize_voucher_code(code) or code}"


async def _credit_in_sets(settings: Settings, staff: User, event: Event, scans: list[QueuedScan],
                          keys: dict[int, TownKey], results: dict[int, dict]) -> None:
    """Posting the card scans that simply succeed in sets (ledger/batch.py write_batch): a genuine
    card of the town, not reissued, its resident active and the event open at the scan's
    moment, the nonce not seen before, within the caps. Their outcomes go in `results`; a
    scan left out (or skipped by the set, which judges the caps and the claim) wrote
    nothing and is left for `_sync_one`. The same rows as `_sync_one` writes: the check-in,
    entry, balance and totals, the staff member's audit record and the nonce's row.

    In chunks, each resident's scans in one. The cards' signatures (most of the server's
    work here) are checked in threads, all chunks at once, while the chunks checked are
    written: the server's cores and the database work at the same time, not in turn."""
    if (acting_helper.get() is not None or event.points <= 0
            or not await ledger_batch.may_seal_in_database()):
        return
    synced_at = now()
    chunks = _chunks(settings, list(enumerate(scans)), SET)
    lanes = asyncio.Semaphore(LANES)
    try:
        async with asyncio.TaskGroup() as tasks:
            checked = [tasks.create_task(asyncio.to_thread(
                _cards, settings, chunk.scans, keys, synced_at)) for chunk in chunks]
            for chunk, cards in zip(chunks, checked, strict=True):
                judged = await _judge(staff, event, chunk.scans, await cards, synced_at)
                if judged is not None:
                    await lanes.acquire()
                    writer = tasks.create_task(_write_in_set(staff, event, scans, *judged,
                                                             synced_at, results))
                    writer.add_done_callback(lambda _writer: lanes.release())
    except ExceptionGroup as group:  # the database gone: its own error (a 503), not a group
        raise group.exceptions[0] from None


def _cards(settings: Settings, chunk: list[tuple[int, QueuedScan]], keys: dict[int, TownKey],
           synced_at: datetime) -> dict[int, tuple[int, int]]:
    """(resident, serial) of each genuine card scanned at a possible time, by its place."""
    cards = {}
    for index, scan in chunk:
        parsed = signed_codes.parse(scan.code)
        if ((parsed[0].kind == "card") if parsed else scan.code.upper().startswith("M")) and (
                synced_at - MAX_AGE <= scan.scanned_at <= synced_at + CLOCK_SLACK):
            card = signed_codes.member_with(settings, scan.code, keys)
            if card is not None:
                cards[index] = card
    return cards


async def _judge(staff: User, event: Event, chunk: list[tuple[int, QueuedScan]],
                 cards: dict[int, tuple[int, int]], synced_at: datetime
                 ) -> tuple[list[tuple[int, BatchCheckin]], dict[int, User]] | None:
    """The chunk's scans that may be credited in a set (by resident, as the express batches
    lock them; a resident's scans in the order made), and their residents; None for none."""
    if not cards:
        return None
    residents = {user.id: user for user in await User.filter(
        id__in={user_id for user_id, _serial in cards.values()}, town_id=event.town_id)}
    seen = set(await OfflineScan.filter(nonce__in=[scan.nonce for index, scan in chunk
                                                   if index in cards]
                                        ).values_list("nonce", flat=True))
    pending: list[tuple[int, BatchCheckin]] = []
    for index, scan in chunk:
        user_id, serial = cards.get(index, (0, 0))
        resident = residents.get(user_id)
        moment = min(scan.scanned_at, synced_at)
        if (resident is not None and scan.nonce not in seen and resident.card_serial == serial
                and _may_check_in_at(event, resident, moment)):
            pending.append((index, ledger_batch.staff_checkin(
                event, user_id=user_id, serial=serial, staff_id=staff.id, method="offline",
                moment=moment)))
    pending.sort(key=lambda pair: pair[1].user_id)
    return (pending, residents) if pending else None


def _may_check_in_at(event: Event, resident: User, moment: datetime) -> bool:
    with replaying(moment):
        try:
            may_check_in(event, resident)
        except DomainError:
            return False
    return True


async def _write_in_set(staff: User, event: Event, scans: list[QueuedScan],
                        batch: list[tuple[int, BatchCheckin]], residents: dict[int, User],
                        synced_at: datetime, results: dict[int, dict]) -> None:
    rows = {index: {
        "nonce": scans[index].nonce, "staff_id": staff.id, "event_id": event.id, "kind": "card",
        "subject_id": credit.user_id, "outcome": "credited", "reason": "", "detail": "{}",
        "points": event.points, "name": mask_name(residents[credit.user_id].display_name),
        "scanned_at": scans[index].scanned_at, "synced_at": synced_at}
        for index, credit in batch}
    try:
        async with in_transaction() as connection:
            # The nonces first: they claim the scans (a repeat fails here, before anything
            # else is written; and on SQLite a write first takes the write lock at once).
            await insert_rows(connection, "offline_scans", list(rows.values()))
            written = await ledger_batch.write_batch([credit for _, credit in batch],
                                                connection=connection)
            skipped = [rows.pop(index)["nonce"]
                       for (index, _), done in zip(batch, written, strict=True) if done is None]
            if skipped:
                await OfflineScan.filter(nonce__in=skipped).using_db(connection).delete()
            await insert_rows(connection, "audit_events", [{
                "actor_id": staff.id, "tag": "checkins:checkin:proxy",
                "subject": f"user:{credit.user_id}", "town_id": event.town_id,
                "village_id": event.village_id, "ip": request_ip.get(), "entry_id": done[2],
                "created_at": credit.moment, "data": json.dumps({
                    "event": event.id, "points": event.points, "offline": True,
                    "scanned_at": utc_text(scans[index].scanned_at),
                    "synced_at": utc_text(synced_at), "nonce": scans[index].nonce})}
                for (index, credit), done in zip(batch, written, strict=True)
                if done is not None])
    except (IntegrityError, sqlite3.IntegrityError):
        return  # a nonce synced meanwhile (another tab): each scan on its own, which says so
    for index, row in rows.items():
        results[index] = _result(OfflineScan(**row | {"detail": {}}), repeat=False)


async def _sync_one(settings: Settings, staff: User, event: Event, scan: QueuedScan,
                    keys: dict[int, TownKey], rule: EarningRule,
                    residents: dict[int, User]) -> dict:
    synced_at = now()
    row = OfflineScan(nonce=scan.nonce, staff=staff, event=event, kind="",
                      scanned_at=scan.scanned_at, synced_at=synced_at)
    try:
        try:
            async with in_transaction() as connection:
                await _apply(settings, staff, event, scan, row, synced_at, keys, rule,
                             residents, connection)
                # The nonce's row commits with the effect: a repeat (a second tab, a
                # retry) fails here, its savepoint rolls back, and the first outcome is
                # told again. Meanwhile the effect itself holds: a check-in is unique per
                # event and resident, a voucher is handed over only while pending.
                await row.save(using_db=connection)
            return _result(row, repeat=False)
        except DomainError as error:
            # The effect was undone with its savepoint; the refusal is recorded alone.
            await _refused(row, error)
            async with in_transaction() as connection:
                if row.kind == "card" and row.subject_id is not None:
                    await CheckinRefusal.create(event=event, user_id=row.subject_id,
                                                method="offline", reason=error.code,
                                                village_id=event.village_id,
                                                using_db=connection)
                await row.save(using_db=connection)
            return _result(row, repeat=False)
    except IntegrityError:
        stored = await OfflineScan.get_or_none(nonce=scan.nonce)
        if stored is None or stored.staff_id != staff.id:
            # not ours to tell about: say no more than that it is a repeat
            return {"nonce": scan.nonce, "outcome": "already_done", "repeat": True,
                    "kind": None, "name": None, "points": None, "scanned_at": None,
                    "code": "already_synced", "message": _("This scan was already synced.")}
        return _result(stored, repeat=True)


async def _apply(settings: Settings, staff: User, event: Event, scan: QueuedScan, row: OfflineScan,
                 synced_at: datetime, keys: dict[int, TownKey], rule: EarningRule,
                 residents: dict[int, User], connection) -> None:
    """The scan's effect, at its own time, in the caller's savepoint; what it was is written
    on `row`. Raises the DomainError of a refusal (the savepoint must roll back)."""
    note = {"offline": True, "scanned_at": utc_text(scan.scanned_at),
            "synced_at": utc_text(synced_at), "nonce": scan.nonce}
    parsed = signed_codes.parse(scan.code)
    row.kind = parsed[0].kind if parsed else (
        "card" if scan.code.upper().startswith("M") else "voucher")
    if not synced_at - MAX_AGE <= scan.scanned_at <= synced_at + CLOCK_SLACK:
        raise ScanTimeError()
    moment = min(scan.scanned_at, synced_at)
    card = await _card_of(settings, scan.code, event, keys, residents)
    if card is not None:
        row.kind, row.subject_id, row.name = "card", card.id, mask_name(card.display_name)
        if event.checkout:  # their second scan leaves (checkins/checkout.py)
            may_take_part(event, card)
            left = await check_out(connection, event, card, method="offline", staff=staff,
                                   moment=moment)
            if left is not None:
                row.outcome, row.points = "checked_out", left.points
                row.detail = {"minutes": left.minutes}
                return
        with replaying(moment):
            may_check_in(event, card)
            await credit_check_in(connection, event, card, rule=rule, method="offline",
                                  staff=staff, audit_data=note)
        row.outcome, row.points = "credited", event.points
        return
    voucher = await _voucher_of(scan.code, event, keys)
    if voucher is None:
        raise InvalidCardError()
    owner = await User.get(id=voucher.user_id)
    row.kind, row.subject_id, row.name = "voucher", voucher.id, mask_name(owner.display_name)
    with replaying(moment):
        await fulfil_voucher(staff=staff, code=voucher.voucher_code, audit_data=note)
    row.outcome = "fulfilled"


async def _refused(row: OfflineScan, error: DomainError) -> None:
    """Write on `row` why its scan was not applied: already done, or refused."""
    done = isinstance(error, AlreadyCheckedInError) or (
        isinstance(error, InvalidStateError) and await Redemption.filter(
            id=row.subject_id, status=RedemptionStatus.FULFILLED).exists())
    row.outcome, row.reason = ("already_done" if done else "refused"), error.code
    row.detail = {"message": error.message, "params": _plain(error.params)}


def _plain(params: dict) -> dict:
    return {k: v if isinstance(v, int | float | str) else str(v) for k, v in params.items()}


async def _card_of(settings: Settings, code: str, event: Event, keys: dict[int, TownKey],
                   residents: dict[int, User]) -> User | None:
    """The resident of a signed or typed member card of this town; raises card_revoked for
    a replaced card, invalid_token for a forged one. None: not a card code."""
    signed = signed_codes.parse(code)
    if (signed[0].kind != "card") if signed else not code.upper().startswith("M"):
        return None
    card = await signed_codes.member_of(settings, code, keys)
    if card is None:
        raise InvalidCardError()
    user_id, serial = card
    resident = residents.get(user_id) or await User.get_or_none(id=user_id)
    if resident is None or resident.town_id != event.town_id:
        raise InvalidCardError()
    if resident.card_serial != serial:
        raise CardRevokedError()
    return resident


async def _voucher_of(code: str, event: Event, keys: dict[int, TownKey]) -> Redemption | None:
    signed = signed_codes.parse(code)
    if signed is not None:
        fields = await signed_codes.verify(code, keys)
        if fields is None or fields.kind != "voucher" or fields.town_id != event.town_id:
            return None
        voucher = fields.voucher
    else:
        voucher = normalize_voucher_code(code) or ""
    redemption = await Redemption.get_or_none(voucher_code=voucher) if voucher else None
    if redemption is None or redemption.town_id != event.town_id:
        return None
    return redemption


def _result(row: OfflineScan, *, repeat: bool) -> dict:
    """What the phone shows for one scan: credited / checked_out (with the minutes
    attended) / fulfilled / already_done / refused, with the reason of a refusal in the
    caller's language."""
    result = {"nonce": row.nonce, "outcome": row.outcome, "repeat": repeat, "kind": row.kind,
              "name": row.name, "points": row.points, "scanned_at": utc_text(row.scanned_at),
              "code": None, "message": None,
              "minutes": (row.detail or {}).get("minutes") if row.outcome == "checked_out"
              else None}
    if row.reason:
        detail = row.detail or {}
        message = detail.get("message") or ""
        params = detail.get("params") or {}
        result |= {"code": row.reason, "message": _(message, **params) if params
                   else _(message)}
    return result
