"""The check-ins' batch writer (issue 13; under ledger/ since issue 27): check-ins that
simply succeed, written many in one transaction and one round trip, each with its claim
(the checkins row), the resident's balance, the period totals and the sealed ledger entry,
as `post_entry` writes one. On PostgreSQL that is one statement, the function
`torreya_express_checkins` (migrations 0024-0026), called only from here; on SQLite the
very steps `post_entry` runs (ledger/writer.py), in the connection's own thread
(`_write_sqlite`).

Each check-in is judged alone, as the ordinary path judges it: the login (an active
resident of the event's town, the token's generation, its login not ended) or the card's
serial, the caps (ledger/caps.py; the function applies the same rule), the claim of
(event, user). One that is not simply a success is skipped (None), with nothing of it
written, and its caller takes the ordinary path, which says why. Who batches them:
checkins/express.py (a resident's scans) and checkins/offline.py (a staff phone's sync).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections

from torreya.db import in_sqlite_thread, is_postgres
from torreya.errors import DomainError
from torreya.ledger import writer
from torreya.ledger.caps import any_cap
from torreya.ledger.periods import CAP_PERIODS, total_keys
from torreya.ledger.writer import AlreadyCheckedInError
from torreya.models import Event
from torreya.ops import metrics
from torreya.security import AccessClaims
from torreya.trust import encoding, sealing

log = logging.getLogger("torreya")
KIND = "checkin"


@dataclass(frozen=True)
class BatchCheckin:
    """One check-in to write in a batch, worked out before the batch runs: a resident's own scan
    (`claims`, their login, is checked as it is written) or a staff member's scan of their
    card (`staff_id`; the card's `serial` is checked instead)."""

    event: Event
    method: str
    user_id: int
    moment: datetime
    entry: dict  # the ledger entry's columns but balance_after and seal
    claims: AccessClaims | None = None
    staff_id: int | None = None
    serial: int | None = None


Written = tuple[int, int, int]  # (check-in id, balance after, entry id)


def staff_checkin(event: Event, *, user_id: int, serial: int, staff_id: int, method: str,
               moment: datetime) -> BatchCheckin:
    """A staff member's scan of a resident's card (serial `serial`), credited at `moment`:
    written as the ordinary path writes it, the entry the staff member's, as a proxy."""
    return BatchCheckin(event, method, user_id, moment,
                entry_for(event, user_id, staff_id, moment, proxy=True), staff_id=staff_id,
                serial=serial)


def entry_for(event: Event, user_id: int, actor_id: int, moment: datetime, *, proxy: bool
           ) -> dict:
    """The entry's columns but balance_after and seal; `proxy` as the function writes it
    (a staff member's scan)."""
    return {"user_id": user_id, "town_id": event.town_id, "delta": event.points,
            "kind": KIND, "memo": event.title[:200], "source_type": "event",
            "source_id": event.id, "idem_key": f"checkin:{event.id}:{user_id}",
            "actor_id": actor_id, "proxy": proxy, "counts_as_earned": True,
            "created_at": moment}


async def write_batch(scans: Sequence[BatchCheckin], *, connection=None) -> list[Written | None]:
    """Write `scans` in one transaction: each one's (check-in id, balance, entry id), or None
    for a scan skipped (nothing of it written). In the caller's transaction `connection`,
    with what else it writes, if given (a database error then leaves it to roll back)."""
    client = connection or connections.get("default")
    if is_postgres(client):
        written = await _on_postgres(client, scans)
    elif connection is not None:
        written = await in_sqlite_thread(client, lambda db: _write_all_sqlite(db, scans))
    else:
        written = await in_sqlite_thread(client, lambda db: _on_sqlite(db, scans))
    metrics.entries("checkin", sum(w is not None for w in written))
    return written


_PADS: dict[bytes, tuple[bytes, bytes]] = {}
# Whether the database may be given the sealing key's blocks (empty: not asked yet).
_SEALS_IN_DATABASE: list[bool] = []

_LOG_SETTINGS = ("log_parameter_max_length", "log_statement", "log_min_duration_statement",
                 "log_min_duration_sample", "log_statement_sample_rate",
                 "log_transaction_sample_rate")


def logs_parameters(setting: dict[str, str]) -> bool:
    """Whether PostgreSQL, set so (pg_settings: durations in ms), writes a statement's
    parameters to its log: when it logs the statement itself (all of them, the slow ones, a
    sample) and log_parameter_max_length is not 0."""
    return int(setting["log_parameter_max_length"]) != 0 and (
        setting["log_statement"] == "all"
        or int(setting["log_min_duration_statement"]) >= 0
        or (int(setting["log_min_duration_sample"]) >= 0
            and float(setting["log_statement_sample_rate"]) > 0)
        or float(setting["log_transaction_sample_rate"]) > 0)


async def may_seal_in_database() -> bool:
    """On PostgreSQL the batch's statement is given the HMAC blocks of the sealing key (it
    seals entries whose balance only it knows). Where the server would write statement
    parameters to its log, that key would sit in the log, readable by whoever reads it and
    able to seal entries written behind Torreya's back; there every check-in takes the
    ordinary path, which seals in Python, and the log says why. Asked once per worker."""
    if not _SEALS_IN_DATABASE:
        client = connections.get("default")
        logged = is_postgres(client) and logs_parameters({
            row["name"]: row["setting"] for row in await client.execute_query_dict(
                "SELECT name, setting FROM pg_settings WHERE name = ANY($1)",
                [list(_LOG_SETTINGS)])})
        if logged:
            log.warning("PostgreSQL writes statement parameters to its log, so check-ins are "
                        "written one by one, sealed here, not in batches (set "
                        "log_parameter_max_length = 0 to write them in batches)")
        _SEALS_IN_DATABASE.append(not logged)
    return _SEALS_IN_DATABASE[0]


def forget() -> None:
    """A new database (tests, a new app): ask again."""
    _SEALS_IN_DATABASE.clear()


def _pads() -> tuple[bytes, bytes]:
    key = sealing.key()
    if key not in _PADS:
        _PADS.clear()
        _PADS[key] = encoding.hmac_pads(key)
    return _PADS[key]


async def _on_postgres(client, scans: Sequence[BatchCheckin]) -> list[Written | None]:
    columns: dict[str, list] = {name: [] for name in (
        "events", "users", "generations", "sids", "towns", "points", "methods", "ats",
        "memos", "periods", "days", "months", "years", "heads", "tails", "staffs",
        "serials")}
    # The kinds of the eight totals are the same for every scan; their periods are not.
    kinds = [kind for kind, _ in total_keys(KIND, scans[0].moment)] if scans else []
    for scan in scans:
        keys = total_keys(KIND, scan.moment)
        day, month, year = (period for _, period in keys[:len(CAP_PERIODS)])
        head, tail = encoding.seal_parts(scan.entry)
        for name, value in (
                ("events", scan.event.id), ("users", scan.user_id),
                ("generations", scan.claims.generation if scan.claims else None),
                ("sids", scan.claims.sid if scan.claims else None),
                ("towns", scan.event.town_id), ("points", scan.event.points),
                ("methods", scan.method), ("ats", scan.moment),
                ("memos", scan.entry["memo"]), ("days", day), ("months", month),
                ("years", year), ("heads", head), ("tails", tail),
                ("staffs", scan.staff_id), ("serials", scan.serial)):
            columns[name].append(value)
        columns["periods"] += [period for _, period in keys]
    inner, outer = _pads()
    rows = await client.execute_query_dict(
        "SELECT item, new_checkin_id, new_balance, new_entry_id FROM torreya_express_checkins("
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,"
        " $19, $20)",
        [columns["events"], columns["users"], columns["generations"], columns["sids"],
         columns["towns"], columns["points"], columns["methods"], columns["ats"],
         columns["memos"], kinds, columns["periods"], columns["days"], columns["months"],
         columns["years"], columns["heads"], columns["tails"], inner, outer, columns["staffs"],
         columns["serials"]])
    written: list[Written | None] = [None] * len(scans)
    for row in rows:
        written[row["item"] - 1] = (int(row["new_checkin_id"]), int(row["new_balance"]),
                                    int(row["new_entry_id"]))
    return written


def _on_sqlite(db: sqlite3.Connection, scans: Sequence[BatchCheckin]) -> list[Written | None]:
    """In aiosqlite's thread, on Tortoise's connection (nothing else uses it meanwhile)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        written = _write_all_sqlite(db, scans)
    except sqlite3.IntegrityError:  # not expected: every scan alone, on the ordinary path
        db.execute("ROLLBACK")
        return [None] * len(scans)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return written


def _write_all_sqlite(db: sqlite3.Connection, scans: Sequence[BatchCheckin]
                      ) -> list[Written | None]:
    return [_write_sqlite(db, scan) for scan in scans]


def _write_sqlite(db: sqlite3.Connection, scan: BatchCheckin) -> Written | None:
    """One scan: the login or card checked as the PostgreSQL function checks it (SQLite has
    one writer at a time, so the reads before the writes cannot go stale), then the same
    steps as the ordinary path (ledger/writer.py), in a savepoint that a refusal (already
    checked in, over a cap) rolls back."""
    event, user_id, moment = scan.event, scan.user_id, scan.moment
    user = db.execute(
        "SELECT village_id, ended_sessions, session_generation, card_serial FROM users"
        " WHERE id = ? AND is_active AND role = 'resident' AND town_id = ?",
        [user_id, event.town_id]).fetchone()
    if user is None:
        return None
    claims = scan.claims
    if claims is not None and (user[2] != claims.generation or (
            claims.sid and claims.sid in json.loads(user[1] or "{}"))):
        return None  # a resident's own scan: their login, ended or not theirs
    if scan.serial is not None and user[3] != scan.serial:
        return None  # a staff member's scan of a card reissued since
    rule = db.execute("SELECT cap_day, cap_month, cap_year FROM earning_rules"
                      " WHERE town_id = ? AND kind = ?", [event.town_id, KIND]).fetchone()
    caps = dict(zip(CAP_PERIODS, rule, strict=True)) if rule is not None else None
    claim = writer.claim_checkin({
        "event_id": event.id, "user_id": user_id, "method": scan.method,
        "staff_id": scan.staff_id, "points": event.points, "created_at": moment})
    credit = writer.post(scan.entry, village_id=user[0], caps=caps)
    if not any_cap(caps):
        # Uncapped, a credit is refused only by its claim, before anything is written.
        try:
            checkin_id = writer.run_here(db, claim)
        except AlreadyCheckedInError:
            return None
        balance, entry_id = writer.run_here(db, credit)
        return checkin_id, balance, entry_id
    db.execute("SAVEPOINT scan")  # a cap refuses after the claim and the balance
    try:
        checkin_id = writer.run_here(db, claim)
        balance, entry_id = writer.run_here(db, credit)
    except DomainError:
        db.execute("ROLLBACK TO scan")
        db.execute("RELEASE scan")
        return None
    db.execute("RELEASE scan")
    return checkin_id, balance, entry_id
