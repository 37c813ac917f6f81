"""The chainer: links committed, sealed entries onto their town's chain, in id order.

Why after the commit and not inside the entry's transaction: linking there would make
every change in a town wait for the one before it to commit (the previous hash is part
of the next). Here the entry's transaction only adds its seal, an HMAC computed in
Python, and the chainer, from the delivery worker (about once a second) and
`torreya migrate`, links what has committed since. This is how Certificate
Transparency logs work: a promise at once (the seal), merged into the log soon after.

An entry's place is its chaining order. PostgreSQL gives ids at INSERT, not at COMMIT, so
an entry may commit after one with a higher id has been linked. Each run therefore also
looks at the ID_SLACK ids below the head's entry (more than can be in flight at once), and
a sweep every few minutes looks back in time from the previous sweep (minus a margin
longer than any transaction may last): what committed late is linked, at the cost of a
short index range per run rather than minutes of entries. An entry whose seal is wrong,
or missing past `legacy_through`, is never linked: `torreya audit` names it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from torreya.db import fetch, is_postgres, now
from torreya.models import ChainHead, Town
from torreya.trust import encoding, sealing

log = logging.getLogger("torreya.trust")
LOOK_BACK = timedelta(minutes=10)  # longer than any transaction may last (timeouts: 5 s)
ID_SLACK = 20_000  # ids below the head that may still commit (in flight at once, all towns)
SWEEP_EVERY = timedelta(minutes=5)
BATCH = 2000
# Entries linked between two turns of the event loop: a batch is ~40 ms of hashing under
# load, which would otherwise hold up every request (and the check-in batches) meanwhile.
YIELD_EVERY = 50
ENTRY_COLUMNS = ("id", "town_id", "user_id", "delta", "balance_after", "kind", "memo",
                 "source_type", "source_id", "idem_key", "actor_id", "proxy", "created_at",
                 "seal")


def unlinked_sql(where: str, floor: int | None = None) -> str:
    """The town's entries not linked yet. `floor`: every entry wanted is past it, said to
    the join too, so that PostgreSQL reads the links from there on (a merge anti-join with
    no bound on the links read every link made so far for each batch: at three million
    links a batch outlasted the statement timeout)."""
    columns = ", ".join(f"e.{c}" for c in ENTRY_COLUMNS)
    bound = f" AND c.entry_id > {int(floor)}" if floor is not None else ""
    return (f"SELECT {columns} FROM ledger_entries e"
            f" LEFT JOIN ledger_chain c ON c.entry_id = e.id{bound}"
            f" WHERE e.town_id = ? AND c.entry_id IS NULL{where} ORDER BY e.id LIMIT ?")


async def chain_pending(progress: Callable[[int], None] | None = None, *,
                        sweep: bool = True) -> int:
    """Link every committed entry not yet linked, town by town. Returns how many.
    `sweep=False` (the worker's runs between sweeps) looks only near the head."""
    linked = 0
    for town_id in await Town.all().values_list("id", flat=True):
        after = 0  # the last entry a batch of this run read: the next starts past it
        while True:
            try:
                count, fetched, after = await _chain_batch(town_id, sweep, after)
            except IntegrityError:  # another worker linked the same entries: next tick
                break
            linked += count
            if progress and count:
                progress(count)
            if fetched < BATCH:
                break
    return linked


async def _chain_batch(town_id: int, sweep: bool, after: int = 0) -> tuple[int, int, int]:
    """Link the next batch: (links made, entries read, the last entry id read). The first
    run and the sweeps read on from `after`, the last entry the batch before read: without
    it each batch scanned every linked entry again to find the unlinked ones past them,
    and at ten million entries a batch outlasted the statement timeout."""
    started = now()
    async with in_transaction() as connection:
        # One chainer per town: on SQLite the transaction holds the write lock from its
        # BEGIN (torreya/sqlite_backend.py).
        lock = " FOR UPDATE" if is_postgres(connection) else ""
        select = ("SELECT seq, hash, total, entry_id, legacy_through, swept_at FROM chain_heads"
                  f" WHERE town_id = ?{lock}")
        heads = await fetch(connection, select, [town_id])
        if not heads:  # a new town
            await fetch(connection,
                        "INSERT INTO chain_heads (town_id, seq, hash, entry_id, total,"
                        " legacy_through) VALUES (?, 0, ?, 0, 0, 0) ON CONFLICT (town_id)"
                        " DO NOTHING", [town_id, encoding.GENESIS])
            heads = await fetch(connection, select, [town_id])
        head = heads[0]
        first = head["swept_at"] is None  # the first run links everything, in id order
        if first:
            rows = await fetch(connection, unlinked_sql(" AND e.id > ?", after),
                               [town_id, after, BATCH])
        elif sweep:
            since = as_datetime(head["swept_at"]) - LOOK_BACK
            rows = await fetch(connection, unlinked_sql(" AND e.created_at >= ? AND e.id > ?",
                                                        after),
                               [town_id, since, after, BATCH])
        else:
            floor = max(int(head["entry_id"]) - ID_SLACK, after)
            rows = await fetch(connection, unlinked_sql(" AND e.id > ?", floor),
                               [town_id, floor, BATCH])
        seq, prev, total = int(head["seq"]), str(head["hash"]), int(head["total"])
        links: list[object] = []
        key = sealing.key()
        last_id = None
        for n, row in enumerate(rows, 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            # Entries from before sealing are linked in the first run only (the migration).
            legacy = (first and row["seal"] is None
                      and row["id"] <= head["legacy_through"])
            sealed, text = encoding.both_texts(row, sealing.salt(row["id"]))
            if not legacy and not encoding.seal_ok(key, row, sealed):
                log.warning("ledger entry %s has no valid seal: not linked", row["id"])
                continue
            entry_digest = hashlib.sha256(text).hexdigest()
            seq += 1
            link = encoding.link_hash(prev, entry_digest)
            links += [row["id"], town_id, seq, entry_digest, prev, link, encoding.SALTED]
            prev, total, last_id = link, total + int(row["delta"]), row["id"]
        if links:
            for start in range(0, len(links), 700):  # within SQLite's 999 parameters
                part = links[start:start + 700]
                await fetch(connection,
                            "INSERT INTO ledger_chain (entry_id, town_id, seq, digest,"
                            " prev_hash, hash, v) VALUES "
                            + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * (len(part) // 7)), part)
        read_to = int(rows[-1]["id"]) if rows else after
        if not links and not (first or sweep):
            return 0, len(rows), read_to  # nothing new: no write
        changes = {"seq": seq, "hash": prev, "total": total}
        if last_id is not None:
            changes["entry_id"] = last_id
        if (first or sweep) and len(rows) < BATCH:  # a sweep is done once it saw it all
            changes["swept_at"] = started
        await ChainHead.filter(town_id=town_id).using_db(connection).update(**changes)
    return len(links) // 7, len(rows), read_to


def as_datetime(value) -> datetime:
    """A time from a raw row: asyncpg gives datetimes, SQLite the stored text."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
