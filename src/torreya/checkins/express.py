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

An offline sync writes its card scans through `write_batch` too (`staff_scan`: the staff
member's, with the card's serial checked instead of a login), in its own transaction with
the nonces' rows and audit records (checkins/offline.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections
from tortoise.exceptions import IntegrityError

from torreya.checkins.codes import CodeError, read_checkin_token
from torreya.checkins.service import CheckinResult, event_by_id, is_open
from torreya.db import in_sqlite_thread, is_postgres, now
from torreya.ledger.caps import within_caps
from torreya.ledger.periods import CAP_PERIODS, total_keys
from torreya.models import Event
from torreya.security import AccessClaims
from torreya.settings import Settings
from torreya.trust import encoding, sealing

log = logging.getLogger("torreya")
KIND = "checkin"
# Scans written by one statement at most; more wait for the next batch.
MAX_BATCH = 256
# A writer takes a lane's share of the scans waiting but at least this many: never all of
# them while they are few (docs/benchmarks.md).
SHARE_FLOOR = 32
LANES = {"postgres": 3, "sqlite": 1}  # batches written at once, by dialect


@dataclass(frozen=True)
class Scan:
    """One check-in to write, worked out before its batch runs: a resident's own scan
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


async def check_in(settings: Settings, *, claims: AccessClaims, token: str
                   ) -> CheckinResult | None:
    """Check the login's resident in with a scanned poster or rotating code, if that is all
    there is to it; None (nothing written) sends the caller to
    `service.check_in_with_token`. Raises what the database raises when it cannot be
    reached (503), having written nothing."""
    scan = await _scan(settings, claims, token)
    if scan is None or not await may_seal_in_database():
        return None
    written = await _BATCHES.write(scan)
    if written is None:
        return None
    return CheckinResult(written[0], scan.event, scan.user_id, scan.event.points, written[1])


async def _scan(settings: Settings, claims: AccessClaims, token: str) -> Scan | None:
    if claims.helper_id is not None:  # 亲属代办: the entry is marked, and audited
        return None
    try:
        code = read_checkin_token(settings, token)
    except CodeError:
        return None
    event = await event_by_id(code.event_id)
    moment = now()
    if (event is None or event.qr_mode != code.mode or event.points <= 0
            or not is_open(event, moment)):
        return None
    return Scan(event, code.mode, claims.user_id, moment,
                _entry(event, claims.user_id, claims.user_id, moment, proxy=False),
                claims=claims)


def staff_scan(event: Event, *, user_id: int, serial: int, staff_id: int, method: str,
               moment: datetime) -> Scan:
    """A staff member's scan of a resident's card (serial `serial`), credited at `moment`:
    written as the ordinary path writes it, the entry the staff member's, as a proxy."""
    return Scan(event, method, user_id, moment,
                _entry(event, user_id, staff_id, moment, proxy=True), staff_id=staff_id,
                serial=serial)


def _entry(event: Event, user_id: int, actor_id: int, moment: datetime, *, proxy: bool
           ) -> dict:
    """The entry's columns but balance_after and seal; `proxy` as the function writes it
    (a staff member's scan)."""
    return {"user_id": user_id, "town_id": event.town_id, "delta": event.points,
            "kind": KIND, "memo": event.title[:200], "source_type": "event",
            "source_id": event.id, "idem_key": f"checkin:{event.id}:{user_id}",
            "actor_id": actor_id, "proxy": proxy, "counts_as_earned": True,
            "created_at": moment}


class Batches:
    """Scans wait here while batches are being written; a writer takes its share of those
    waiting. On PostgreSQL three batches are written at once, on three connections (one
    waits for its commit or its answer while the others run, docs/benchmarks.md); SQLite
    has one connection."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Scan, asyncio.Future]] = []
        self._writers: set[asyncio.Task] = set()

    async def write(self, scan: Scan) -> Written | None:
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
            batch: list[tuple[Scan, asyncio.Future]] = []
            later: list[tuple[Scan, asyncio.Future]] = []
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


async def write_batch(scans: Sequence[Scan], *, connection=None) -> list[Written | None]:
    """Write `scans` in one transaction: each one's (check-in id, balance, entry id), or None
    for a scan skipped (nothing of it written). In the caller's transaction `connection`,
    with what else it writes, if given (a database error then leaves it to roll back)."""
    client = connection or connections.get("default")
    if is_postgres(client):
        return await _on_postgres(client, scans)
    if connection is not None:
        return await in_sqlite_thread(client, lambda db: _write_all_sqlite(db, scans))
    return await in_sqlite_thread(client, lambda db: _on_sqlite(db, scans))


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


async def _on_postgres(client, scans: Sequence[Scan]) -> list[Written | None]:
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


def _on_sqlite(db: sqlite3.Connection, scans: Sequence[Scan]) -> list[Written | None]:
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


def _write_all_sqlite(db: sqlite3.Connection, scans: Sequence[Scan]) -> list[Written | None]:
    return [_write_sqlite(db, scan) for scan in scans]


def _write_sqlite(db: sqlite3.Connection, scan: Scan) -> Written | None:
    """One scan, as the PostgreSQL function writes it (SQLite has one writer at a time, so
    the reads before the writes cannot go stale)."""
    event, user_id, points, moment = scan.event, scan.user_id, scan.event.points, scan.moment
    keys = total_keys(KIND, moment)
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
    caps = dict(zip(CAP_PERIODS, rule, strict=True)) if rule is not None else {}
    if any(cap is not None for cap in caps.values()):
        capped = {key: period for (_, key), period in zip(keys, CAP_PERIODS, strict=False)}
        totals = {capped[key]: total for key, total in db.execute(
            "SELECT period, total FROM earning_totals WHERE user_id = ? AND kind = ?"
            f" AND period IN ({', '.join('?' * len(capped))})", [user_id, KIND, *capped])}
        if not within_caps(caps, totals, points):
            return None
    claim = db.execute(
        "INSERT INTO checkins (event_id, user_id, method, staff_id, points, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, user_id) DO NOTHING"
        " RETURNING id", [event.id, user_id, scan.method, scan.staff_id, points, moment]
    ).fetchone()
    if claim is None:
        return None
    [balance] = db.execute(
        "UPDATE users SET balance = balance + ?, lifetime_points = lifetime_points + ?"
        " WHERE id = ? RETURNING balance", [points, points, user_id]).fetchone()
    values: list[object] = []
    for kind, period in keys:
        values += [user_id, event.town_id, user[0], kind, period, points]
    db.execute(
        "INSERT INTO earning_totals (user_id, town_id, village_id, kind, period, total)"
        f" VALUES {', '.join(['(?, ?, ?, ?, ?, ?)'] * len(keys))}"
        " ON CONFLICT (user_id, kind, period)"
        " DO UPDATE SET total = earning_totals.total + excluded.total", values)
    entry = {**scan.entry, "balance_after": balance}
    entry["seal"] = encoding.seal(sealing.key(), entry)
    cursor = db.execute(f"INSERT INTO ledger_entries ({', '.join(entry)})"
                        f" VALUES ({', '.join('?' * len(entry))})", list(entry.values()))
    return claim[0], balance, cursor.lastrowid
