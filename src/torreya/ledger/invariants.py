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

from torreya.db import conn, fetch
from torreya.ledger.periods import total_keys
from torreya.models import EarningTotal, LedgerEntry, User
from torreya.trust.verify import verify_chains

BATCH = 5000


@dataclass
class AuditReport:
    accounts: int = 0
    entries: int = 0
    links: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def add(self, message: str) -> None:
        if len(self.problems) < 1000:
            self.problems.append(message)


async def audit_ledger(progress: Callable[[int, int], None] | None = None,
                      chain_progress: Callable[[int], None] | None = None) -> AuditReport:
    report = AuditReport()
    total_entries = await LedgerEntry.all().count()
    sums: dict[int, int] = defaultdict(int)
    earned: dict[int, int] = defaultdict(int)
    last_balance: dict[int, int] = {}
    totals: dict[tuple[int, str, str], int] = defaultdict(int)
    seen_keys: set[str] = set()
    after_id = 0
    while True:
        # Walk the ledger in id order: within one account ids grow with time.
        batch = await LedgerEntry.filter(id__gt=after_id).order_by("id").limit(BATCH).values(
            "id", "user_id", "delta", "balance_after", "counts_as_earned", "kind",
            "created_at", "idem_key")
        if not batch:
            break
        for e in batch:
            user_id = e["user_id"]
            expected = last_balance.get(user_id, 0) + e["delta"]
            if e["balance_after"] != expected:
                report.add(f"entry {e['id']} (user {user_id}): balance_after "
                           f"{e['balance_after']} but previous + delta = {expected}")
            if e["balance_after"] < 0:
                report.add(f"entry {e['id']} (user {user_id}): negative balance_after")
            if e["idem_key"] in seen_keys:
                report.add(f"entry {e['id']}: idempotency key {e['idem_key']} used twice")
            seen_keys.add(e["idem_key"])
            last_balance[user_id] = e["balance_after"]
            sums[user_id] += e["delta"]
            if e["counts_as_earned"]:
                if e["delta"] <= 0:
                    report.add(f"entry {e['id']}: earned credit is not positive")
                earned[user_id] += e["delta"]
                for kind, period in total_keys(e["kind"], e["created_at"]):
                    totals[(user_id, kind, period)] += e["delta"]
        report.entries += len(batch)
        after_id = batch[-1]["id"]
        if progress:
            progress(report.entries, total_entries)
    users = await User.all().values("id", "balance", "lifetime_points")
    for u in users:
        report.accounts += 1
        if u["balance"] != sums.get(u["id"], 0):
            report.add(f"user {u['id']}: balance {u['balance']} but entries sum to "
                       f"{sums.get(u['id'], 0)}")
        if u["lifetime_points"] != earned.get(u["id"], 0):
            report.add(f"user {u['id']}: lifetime points {u['lifetime_points']} but earned "
                       f"entries sum to {earned.get(u['id'], 0)}")
        if u["balance"] < 0:
            report.add(f"user {u['id']}: negative balance")
    stored = await EarningTotal.all().values("user_id", "kind", "period", "total")
    stored_keys = set()
    for t in stored:
        key = (t["user_id"], t["kind"], t["period"])
        stored_keys.add(key)
        if t["total"] != totals.get(key, 0):
            report.add(f"user {key[0]}: total {key[1]}/{key[2]} is {t['total']} but the "
                       f"ledger says {totals.get(key, 0)}")
    for key in totals.keys() - stored_keys:
        report.add(f"user {key[0]}: total {key[1]}/{key[2]} is missing "
                   f"(ledger says {totals[key]})")

    report.links = await verify_chains(report.add, chain_progress)
    for row in await fetch(conn(), UNAUDITED_ENTRIES, []):
        report.add(f"entry {row['id']} (user {row['user_id']}, {row['kind']}) was made by "
                   f"user {row['actor_id']}{' as a proxy' if row['proxy'] else ''} but has "
                   "no audit record")
    return report


# Entries whose actor is not their owner: each must have an audit event naming it.
UNAUDITED_ENTRIES = """
SELECT e.id, e.user_id, e.actor_id, e.kind, e.proxy FROM ledger_entries e
WHERE (e.proxy OR (e.actor_id IS NOT NULL AND e.actor_id <> e.user_id))
  AND NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.entry_id = e.id)
ORDER BY e.id LIMIT 1000
"""
