"""`torreya audit`'s chain half: every link recomputed from its entry, every signed head
checked against the chain and its signature. Whatever was changed, deleted, inserted or
reordered behind the app's back is named by its entry id.

The same checks run offline over an exported chain (`verify_export`), with no database
and only the public key: that is what an outside auditor runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from torreya.db import conn, fetch, now
from torreya.models import ChainHead, SignedHead, TownKey
from torreya.trust import encoding, sealing
from torreya.trust.chain import ENTRY_COLUMNS, ID_SLACK, LOOK_BACK, as_datetime, chain_pending

BATCH = 5000
LINKS_SQL = (
    "SELECT c.seq, c.entry_id, c.digest, c.prev_hash, c.hash, c.v, e.id AS present, "
    + ", ".join(f"e.{c} AS e_{c}" for c in ENTRY_COLUMNS if c != "id")
    + " FROM ledger_chain c LEFT JOIN ledger_entries e ON e.id = c.entry_id"
    " WHERE c.town_id = ? AND c.seq > ? ORDER BY c.seq LIMIT ?")
def unlinked_sql(floor: int) -> str:
    """Entries not in any chain, past `floor` (0: all of them). The bound is said to the
    join too, so that the incremental audit reads only the links past it."""
    return ("SELECT " + ", ".join(f"e.{c}" for c in ENTRY_COLUMNS)
            + " FROM ledger_entries e LEFT JOIN ledger_chain c ON c.entry_id = e.id"
            f" AND c.entry_id > {int(floor)}"
            f" WHERE c.entry_id IS NULL AND e.id > {int(floor)} ORDER BY e.id LIMIT 1000")


class ChainChecker:
    """Feeds on links in order; says what is wrong, naming entries."""

    def __init__(self, town_id: int, add: Callable[[str], None]) -> None:
        self.town_id, self.add = town_id, add
        self.seq, self.hash, self.total = 0, encoding.GENESIS, 0
        self.hash_at: dict[int, tuple[str, int, int]] = {}  # seq → (hash, total, entry)
        self.wanted: set[int] = set()

    def link(self, link: Mapping[str, Any], entry: Mapping[str, Any] | None) -> None:
        seq, entry_id = int(link["seq"]), int(link["entry_id"])
        where = f"entry {entry_id} (link {seq} of town {self.town_id})"
        if seq != self.seq + 1:
            self.add(f"town {self.town_id}: links {self.seq + 1}–{seq - 1} are missing "
                     "(deleted behind the app's back)")
        if entry is None:
            self.add(f"{where} was deleted behind the app's back")
        else:
            if int(entry.get("town_id", entry.get("town", -1))) != self.town_id:
                self.add(f"{where} was moved to another town")
            if encoding.digest(entry, int(link.get("v") or 1)) != link["digest"]:
                self.add(f"{where} was changed after it was recorded")
            self.total += int(entry["delta"])
        if link["prev_hash"] != self.hash:
            self.add(f"{where} does not follow the link before it: the chain was reordered "
                     "or rewritten")
        if encoding.link_hash(link["prev_hash"], link["digest"]) != link["hash"]:
            self.add(f"{where}: its link's hash is forged")
        self.seq, self.hash = seq, link["hash"]
        if seq in self.wanted:
            self.hash_at[seq] = (self.hash, self.total, entry_id)

    def signed_head(self, head: Mapping[str, Any], public_key: str | None,
                    unknown_key: str = "") -> None:
        """Check a signed head against its key and the chain. `public_key` None: the key
        is not one the checker trusts, and `unknown_key` says why (it is not forged for
        that: it may be someone else's key, or a key the auditor was not given)."""
        label = f"town {self.town_id}: the signed head of {head['period']} ({head['kind']})"
        if public_key is None:
            self.add(f"{label} {unknown_key or 'names a key the town does not have'}")
        elif not encoding.verify_signature(
                public_key, encoding.head_payload(head | {"public_key": public_key}),
                head["signature"]):
            self.add(f"{label} has a signature that does not verify with the town's key "
                     f"{public_key[:16]}…: the head was edited after it was signed")
        seq = int(head["seq"])
        if seq == 0:
            return
        found = self.hash_at.get(seq)
        if found is None:
            self.add(f"{label} names link {seq}, which the chain does not have")
            return
        chain_hash, chain_total, chain_entry = found
        if chain_hash != head["hash"]:
            self.add(f"{label} does not match the chain at link {seq} (entry "
                     f"{head['entry_id']}): its hash differs, so entries up to it were "
                     "changed and the chain rewritten")
        elif chain_entry != int(head["entry_id"]):
            self.add(f"{label} names entry {head['entry_id']} at link {seq}, where the chain "
                     f"has entry {chain_entry}")
        elif chain_total != int(head["total"]):
            self.add(f"{label} says the points up to link {seq} total {head['total']}, but "
                     f"the entries add up to {chain_total}: an entry's points were changed")


@dataclass(frozen=True)
class ChainState:
    """Where a town's chain stood at a link: what a checkpoint signs and a check resumes
    from."""

    seq: int
    hash: str
    total: int
    entry_id: int


async def verify_chains(add: Callable[[str], None],
                        progress: Callable[[int], None] | None = None, *,
                        since: Mapping[int, ChainState] | None = None,
                        reached: dict[int, ChainState] | None = None) -> int:
    """Chain what is due, then check every town's chain: from its start, or from `since`
    (a town's checkpoint, whose signature the caller checked). Each town's last link
    verified goes in `reached`. Returns the links checked."""
    await chain_pending()
    checked = 0
    keys = {k.id: k.public_key for k in await TownKey.all()}
    heads_all = await ChainHead.all()
    for head in heads_all:
        checker = ChainChecker(head.town_id, add)
        start = (since or {}).get(head.town_id)
        last_entry = 0
        if start is not None:
            checker.seq, checker.hash, checker.total = start.seq, start.hash, start.total
            last_entry = start.entry_id
        heads = SignedHead.filter(town_id=head.town_id)
        if start is not None:  # those the checkpoint covers were checked before it
            heads = heads.filter(seq__gt=start.seq)
        signed = await heads.order_by("seq").values()
        checker.wanted = {int(s["seq"]) for s in signed}
        while True:
            rows = await fetch(conn(), LINKS_SQL, [head.town_id, checker.seq, BATCH])
            for row in rows:
                entry = None
                if row["present"] is not None:
                    entry = {c: row[f"e_{c}"] for c in ENTRY_COLUMNS if c != "id"}
                    entry["id"] = row["present"]
                    entry["salt"] = sealing.salt(int(row["present"]))
                checker.link(row, entry)
                last_entry = int(row["entry_id"])
            checked += len(rows)
            if progress and rows:
                progress(len(rows))
            if len(rows) < BATCH:
                break
        if reached is not None:
            reached[head.town_id] = ChainState(checker.seq, checker.hash, checker.total,
                                               last_entry)
        if checker.seq != head.seq or checker.hash != head.hash:
            add(f"town {head.town_id}: the chain's head (link {head.seq}) does not match its "
                f"last link ({checker.seq})")
        for s in signed:
            checker.signed_head(s | {"town": s["town_id"]}, keys.get(s["key_id"]))
    late = now() - LOOK_BACK - timedelta(minutes=5)
    # From a checkpoint, only entries past it (less the ids that may commit late): the
    # weekly full audit looks at them all.
    floor = 0
    if since and all(head.town_id in since for head in heads_all):
        floor = max(0, min(state.entry_id for state in since.values()) - ID_SLACK)
    for row in await fetch(conn(), unlinked_sql(floor), []):
        if not encoding.seal_ok(sealing.key(), row):
            add(f"entry {row['id']} (town {row['town_id']}) was not written by Torreya: it has "
                "no valid seal and is not in the chain (inserted behind the app's back?)")
        elif as_datetime(row["created_at"]) < late:
            add(f"entry {row['id']} (town {row['town_id']}) is not in the chain yet: is the "
                "worker running?")
    return checked


MAX_PROBLEMS = 1000


def verify_export(header: Mapping[str, Any], links: Iterable[Mapping[str, Any]],
                  public_keys: Iterable[str] | None = None) -> tuple[list[str], int]:
    """The offline check of an exported chain (torreya export-chain): the problems found
    (the first thousand, then how many more) and the links read. `links` are read once,
    in order, as they come (a file of ten million is never held). `public_keys`: the
    town's keys as published; without them the file's own are used (which proves the file
    is consistent, not that it is the town's)."""
    problems: list[str] = []
    more = [0]

    def add(problem: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append(problem)
        else:
            more[0] += 1

    town_id = int(header["town"]["id"])
    checker = ChainChecker(town_id, add)
    checker.wanted = {int(h["seq"]) for h in header.get("signed_heads", [])}
    count = 0
    for item in links:
        checker.link(item, item.get("entry"))
        count += 1
    trusted = set(public_keys) if public_keys else {k["public_key"]
                                                     for k in header.get("keys", [])}
    given = "the keys you gave" if public_keys else "the file's own keys"
    for head in header.get("signed_heads", []):
        key = head.get("public_key")
        checker.signed_head(head, key if key in trusted else None, unknown_key=(
            f"was signed with the key {str(key)[:16]}…, which is not among {given}: check "
            "that the key is the town's, as published on its trust page"))
    if not header.get("signed_heads"):
        add("the file has no signed head: nothing ties it to the town")
    if more[0]:
        problems.append(f"… and {more[0]} more")
    return problems, count
