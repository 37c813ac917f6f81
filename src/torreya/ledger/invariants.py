"""`torreya audit`: prove the caches match the ledger.

Checks, for every account: balance == sum of deltas; lifetime points == sum of earned
credits; each entry's balance_after == the previous one + its delta, never negative; no
idempotency key twice; every period total == the earned entries of that period; every entry
made by someone other than its owner (an admin's adjustment or award, staff acting for a
resident) has its audit record. Then the hash chain (trust/verify.py): every link
recomputed from its entry, every signed head against the chain and its signature, and no
entry left out of the chain.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from torreya.db import conn, fetch, now
from torreya.ledger.periods import total_keys
from torreya.models import LedgerEntry, SignedHead, Town, TownKey
from torreya.settings import LOCAL, Settings
from torreya.trust import encoding
from torreya.trust.chain import as_datetime
from torreya.trust.signing import sign_state
from torreya.trust.verify import ChainState, verify_chains

CHECKPOINT = "audit"  # the kind of signed head a clean full audit leaves

# Accounts are checked a batch at a time, each with its entries (read in pages) and its
# stored totals: what is held is one batch's, whatever the ledger's size (issue 37).
USERS_AT_ONCE = 200
ENTRIES_AT_ONCE = 5000

USERS_SQL = ("SELECT id, balance, lifetime_points FROM users WHERE id > ? ORDER BY id"
             " LIMIT ?")
ENTRIES_SQL = (
    "SELECT id, user_id, delta, balance_after, counts_as_earned, kind, created_at"
    " FROM ledger_entries WHERE user_id IN ({ids})"
    " AND (user_id > ? OR (user_id = ? AND id > ?))"
    " ORDER BY user_id, id LIMIT ?")
TOTALS_SQL = "SELECT user_id, kind, period, total FROM earning_totals WHERE user_id IN ({ids})"
# Accounts with an entry after a checkpoint (the incremental audit checks only these).
TOUCHED_SQL = ("SELECT DISTINCT user_id FROM ledger_entries WHERE town_id = ? AND id > ?"
               " AND user_id > ? ORDER BY user_id LIMIT ?")
DUPLICATE_KEYS = ("SELECT idem_key, MIN(id) AS first FROM ledger_entries GROUP BY idem_key"
                  " HAVING COUNT(*) > 1 LIMIT 1000")


@dataclass
class AuditReport:
    accounts: int = 0
    entries: int = 0
    links: int = 0
    problems: list[str] = field(default_factory=list)
    # Each town's last link verified: what a clean full audit signs as its checkpoint.
    reached: dict[int, ChainState] = field(default_factory=dict)
    # The incremental audit: each town's checkpoint it started from.
    since: dict[int, SignedHead] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.problems

    def add(self, message: str) -> None:
        if len(self.problems) < 1000:
            self.problems.append(message)


@dataclass
class _Account:
    """What the ledger says of one account, read entry by entry in id order."""

    id: int
    balance: int = 0  # the last entry's balance_after
    total: int = 0
    earned: int = 0
    totals: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def entry(self, e: dict, report: AuditReport) -> None:
        expected = self.balance + e["delta"]
        if e["balance_after"] != expected:
            report.add(f"entry {e['id']} (user {self.id}): balance_after "
                       f"{e['balance_after']} but previous + delta = {expected}")
        if e["balance_after"] < 0:
            report.add(f"entry {e['id']} (user {self.id}): negative balance_after")
        self.balance = e["balance_after"]
        self.total += e["delta"]
        if e["counts_as_earned"]:
            if e["delta"] <= 0:
                report.add(f"entry {e['id']}: earned credit is not positive")
            self.earned += e["delta"]
            for kind, period in total_keys(e["kind"], as_datetime(e["created_at"])):
                self.totals[(kind, period)] += e["delta"]


async def audit_ledger(progress: Callable[[int, int], None] | None = None,
                      chain_progress: Callable[[int], None] | None = None) -> AuditReport:
    report = AuditReport()
    total_entries = await LedgerEntry.all().count()
    for row in await fetch(conn(), DUPLICATE_KEYS, []):  # the unique index, if dropped
        report.add(f"entry {row['first']}: idempotency key {row['idem_key']} used twice")
    after_user = 0
    while True:
        users = await fetch(conn(), USERS_SQL, [after_user, USERS_AT_ONCE])
        if not users:
            break
        await _audit_accounts(users, report)
        after_user = users[-1]["id"]
        if progress:
            progress(report.entries, total_entries)
    report.links = await verify_chains(report.add, chain_progress, reached=report.reached)
    for row in await fetch(conn(), UNAUDITED_ENTRIES, []):
        report.add(f"entry {row['id']} (user {row['user_id']}, {row['kind']}) was made by "
                   f"user {row['actor_id']}{' as a proxy' if row['proxy'] else ''} but has "
                   "no audit record")
    return report


async def audit_since_checkpoint(settings: Settings,
                                 progress: Callable[[int, int], None] | None = None,
                                 chain_progress: Callable[[int], None] | None = None
                                 ) -> AuditReport:
    """The nightly audit: from each town's last checkpoint (the signed head a clean full
    audit left, its signature checked first), the chain's links since, and every account
    with an entry since, in full. A town without a checkpoint is checked from its start.
    What it does not see (a cached balance changed with no entry after the checkpoint) the
    weekly full audit does."""
    report = AuditReport()
    keys = {k.id: k.public_key for k in await TownKey.all()}
    since: dict[int, ChainState] = {}
    for town_id in await Town.all().values_list("id", flat=True):
        checkpoint = await SignedHead.filter(town_id=town_id, kind=CHECKPOINT).order_by(
            "-seq").first()
        if checkpoint is None:
            continue
        payload = encoding.head_payload({
            "town": town_id, "kind": checkpoint.kind, "period": checkpoint.period,
            "seq": checkpoint.seq, "entry_id": checkpoint.entry_id, "hash": checkpoint.hash,
            "total": checkpoint.total, "signed_at": checkpoint.signed_at,
            "public_key": keys.get(checkpoint.key_id, "")})
        if not encoding.verify_signature(keys.get(checkpoint.key_id, ""), payload,
                                         checkpoint.signature):
            report.add(f"town {town_id}: the audit checkpoint of {checkpoint.period} has a "
                       "signature that does not verify; run a full audit")
            continue
        report.since[town_id] = checkpoint
        since[town_id] = ChainState(checkpoint.seq, checkpoint.hash, checkpoint.total,
                                    checkpoint.entry_id)
    towns = await Town.all().values_list("id", flat=True)
    floor = min((since[t].entry_id if t in since else 0) for t in towns) if towns else 0
    total = await LedgerEntry.filter(id__gt=floor).count()  # not a count of the whole ledger
    for town_id in towns:
        after_entry = since[town_id].entry_id if town_id in since else 0
        after_user = 0
        while True:
            touched = [row["user_id"] for row in await fetch(
                conn(), TOUCHED_SQL, [town_id, after_entry, after_user, USERS_AT_ONCE])]
            if not touched:
                break
            users = await fetch(conn(), "SELECT id, balance, lifetime_points FROM users WHERE"
                                f" id IN ({', '.join(str(int(u)) for u in touched)})"
                                " ORDER BY id", [])
            if users:
                await _audit_accounts(users, report)
            after_user = touched[-1]
            if progress:
                progress(report.entries, total)
    report.links = await verify_chains(report.add, chain_progress, since=since,
                                       reached=report.reached)
    return report


async def sign_checkpoints(settings: Settings, report: AuditReport) -> int:
    """After a clean full audit: each town's last verified link, signed with the town's
    key (kind "audit", once a day), where the next incremental audit starts."""
    if not report.clean:
        return 0
    today = now().astimezone(LOCAL).date().isoformat()
    signed = 0
    for town_id, state in report.reached.items():
        if state.seq and await sign_state(settings, town_id, kind=CHECKPOINT, period=today,
                                          seq=state.seq, entry_id=state.entry_id,
                                          hash=state.hash, total=state.total):
            signed += 1
    return signed


async def _audit_accounts(users: list[dict], report: AuditReport) -> None:
    """One batch of accounts (ids ascending): each one's entries in order against its
    balance, lifetime points and stored period totals."""
    first = users[0]["id"]
    ids = ", ".join(str(int(u["id"])) for u in users)  # integers from our own query
    stored: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
    for t in await fetch(conn(), TOTALS_SQL.format(ids=ids), []):
        stored[t["user_id"]][(t["kind"], t["period"])] = int(t["total"])
    rows = {u["id"]: u for u in users}
    account = _Account(first - 1)
    at = (first - 1, 0)  # (user, entry) of the last entry read
    while True:
        entries = await fetch(conn(), ENTRIES_SQL.format(ids=ids),
                              [at[0], at[0], at[1], ENTRIES_AT_ONCE])
        for e in entries:
            if e["user_id"] != account.id:
                _close(account, rows, stored, report)
                account = _Account(e["user_id"])
            account.entry(e, report)
        report.entries += len(entries)
        if len(entries) < ENTRIES_AT_ONCE:
            break
        at = (entries[-1]["user_id"], entries[-1]["id"])
    _close(account, rows, stored, report)
    for user_id in list(rows):  # accounts without entries: zero everywhere
        _close(_Account(user_id), rows, stored, report)


def _close(account: _Account, rows: dict[int, dict], stored: dict, report: AuditReport) -> None:
    """Compare one account, read to its last entry, with what is stored; then forget it."""
    user = rows.pop(account.id, None)
    if user is None:
        return  # the batch's placeholder, or an account already compared
    report.accounts += 1
    if user["balance"] != account.total:
        report.add(f"user {account.id}: balance {user['balance']} but entries sum to "
                   f"{account.total}")
    if user["lifetime_points"] != account.earned:
        report.add(f"user {account.id}: lifetime points {user['lifetime_points']} but earned "
                   f"entries sum to {account.earned}")
    if user["balance"] < 0:
        report.add(f"user {account.id}: negative balance")
    kept = stored.pop(account.id, {})
    for (kind, period), total in kept.items():
        if total != account.totals.get((kind, period), 0):
            report.add(f"user {account.id}: total {kind}/{period} is {total} but the ledger "
                       f"says {account.totals.get((kind, period), 0)}")
    for (kind, period), total in account.totals.items():
        if (kind, period) not in kept:
            report.add(f"user {account.id}: total {kind}/{period} is missing (ledger says "
                       f"{total})")


# Entries whose actor is not their owner: each must have an audit event naming it.
UNAUDITED_ENTRIES = """
SELECT e.id, e.user_id, e.actor_id, e.kind, e.proxy FROM ledger_entries e
WHERE (e.proxy OR (e.actor_id IS NOT NULL AND e.actor_id <> e.user_id))
  AND NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.entry_id = e.id)
ORDER BY e.id LIMIT 1000
"""
