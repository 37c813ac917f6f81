"""The express check-in (issue 13): a resident's scan that simply succeeds, written together
with the other scans the worker has waiting, in one transaction and one round trip
(docs/architecture.md).

The ordinary path reads the user and the earning rule, then runs a transaction of claim,
balance, totals and entry: about nine statements, each a round trip (PostgreSQL) or a hop
through aiosqlite's thread (SQLite), with a connection held across all of them. Here a
scan waits only for the batch being written to finish; then the scans that arrived
meanwhile are written in one piece: on PostgreSQL one statement, the function
`torreya_express_checkins` (migrations 0024-0026), up to three batches at once on three
connections; on SQLite one function run in the connection's own thread. One commit, and one flush to
disk, for the whole batch (group commit); each scan is answered only once its batch has
committed, so a 201 still means "written", and an error still means "nothing written".

Each scan in a batch is judged alone, exactly as the ordinary path judges it: the login
(active resident of the event's town, the token's generation, its login not ended), the
rule's caps, the claim of (event, user). A scan that is not simply a success (no such
login, already checked in, over a cap, a family helper's token, an event of 0 points)
comes back as None having written nothing, and the caller takes the ordinary path, which
says why and logs the refusal. So the two paths cannot disagree on what is refused, and
on success they write the same rows; tests compare them, and `torreya audit` checks the
balances, totals and seals either wrote.

The writing itself is the ledger's (ledger/batch.py); an offline sync writes its card scans
through it too (`staff_checkin`: the staff member's, with the card's serial checked instead
of a login), in its own transaction with the nonces' rows and audit records
(checkins/offline.py).
"""

from __future__ import annotations

import asyncio
import logging

from tortoise import connections
from tortoise.exceptions import IntegrityError

from torreya.checkins.events import is_open
from torreya.db import now
from torreya.ledger.batch import (
    BatchCheckin,
    Written,
    entry_for,
    may_seal_in_database,
    write_batch,
)
from torreya.models import Event
from torreya.security import AccessClaims

log = logging.getLogger("torreya")
KIND = "checkin"
# Scans written by one statement at most; more wait for the next batch.
MAX_BATCH = 256
# A writer takes a lane's share of the scans waiting but at least this many: never all of
# them while they are few (docs/benchmarks.md).
SHARE_FLOOR = 32
LANES = {"postgres": 3, "sqlite": 1}  # batches written at once, by dialect


async def check_in(event: Event, *, mode: str, login: AccessClaims) -> Written | None:
    """Write a resident's own scan of `event`'s code (read and checked by the caller,
    checkins.service.check_in) in the next batch, if that is all there is to it: its
    (check-in id, balance, entry id); None, with nothing written, sends the caller down the
    ordinary path. Raises what the database raises when it cannot be reached (503), having
    written nothing."""
    moment = now()
    if event.points <= 0 or not is_open(event, moment) or not await may_seal_in_database():
        return None
    return await _BATCHES.write(BatchCheckin(
        event, mode, login.user_id, moment,
        entry_for(event, login.user_id, login.user_id, moment, proxy=False), claims=login))


class Batches:
    """Scans wait here while batches are being written; a writer takes its share of those
    waiting. On PostgreSQL three batches are written at once, on three connections (one
    waits for its commit or its answer while the others run, docs/benchmarks.md); SQLite
    has one connection."""

    def __init__(self) -> None:
        self._waiting: list[tuple[BatchCheckin, asyncio.Future]] = []
        self._writers: set[asyncio.Task] = set()

    async def write(self, scan: BatchCheckin) -> Written | None:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((scan, future))
        # A writer that has returned is done at once (its done-callbacks come later): one
        # still running will see this scan before it returns.
        self._writers = {writer for writer in self._writers if not writer.done()}
        lanes = LANES[connections.get("default").capabilities.dialect]
        if len(self._writers) < lanes:
            self._writers.add(asyncio.create_task(self._drain(lanes)))
        return await future

    async def _drain(self, lanes: int) -> None:
        while self._waiting:
            # Not every scan waiting into one batch while they are few: with one batch
            # holding every request there is, the server has nothing to do while the
            # database writes it, and the database nothing while the server answers and
            # reads the next ones. In shares, one batch is answered while another is written
            # (on one worker under 64 connections, a third more check-ins on PostgreSQL).
            share = min(MAX_BATCH, max(SHARE_FLOOR, -(-len(self._waiting) // lanes)))
            # A resident once per batch (PostgreSQL's statement writes each resident's
            # balance once): a second scan of theirs waits for the next batch.
            batch: list[tuple[BatchCheckin, asyncio.Future]] = []
            later: list[tuple[BatchCheckin, asyncio.Future]] = []
            residents: set[int] = set()
            for pair in self._waiting:
                if len(batch) < share and pair[0].user_id not in residents:
                    residents.add(pair[0].user_id)
                    batch.append(pair)
                else:
                    later.append(pair)
            self._waiting = later
            # By resident: batches written at once (three here, more with more workers) lock
            # residents in the same order, so they wait for each other, never in a circle.
            batch.sort(key=lambda pair: pair[0].user_id)
            try:
                written = await write_batch([scan for scan, _ in batch])
            except IntegrityError:  # not expected (the claim comes first): each alone
                written = [None] * len(batch)
            except BaseException as error:  # the database unreachable: every scan says so
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            for (_, future), result in zip(batch, written, strict=True):
                if not future.done():  # its request gone meanwhile: written all the same
                    future.set_result(result)


_BATCHES = Batches()


