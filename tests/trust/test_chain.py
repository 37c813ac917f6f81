"""The hash chain (SPEC §4.9): an untouched ledger verifies clean, also after concurrent
load; every change made behind the app's back is found by `torreya audit`, by entry id."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.conftest import BACKEND
from tests.factories import api_token, make_event, make_user, make_village
from torreya.checkins.codes import poster_token
from torreya.ledger.invariants import audit_ledger
from torreya.ledger.service import adjust_points
from torreya.models import ChainHead, ChainLink, LedgerEntry, Role, SignedHead
from torreya.trust import encoding, sealing
from torreya.trust.chain import chain_pending
from torreya.trust.signing import rotate_key, sign_head


async def _ledger(n: int = 4):
    """A village with an admin and residents who got points: n entries."""
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village=village)
    people = [await make_user(village=village) for _ in range(n)]
    entries = [await adjust_points(actor=admin, target=p, delta=10 + i, memo="巡逻奖励")
               for i, p in enumerate(people)]
    return village, admin, people, entries


async def _problems() -> list[str]:
    return (await audit_ledger()).problems


async def test_entries_are_sealed_chained_in_order_and_verify(app):
    village, admin, people, entries = await _ledger()
    assert all(e.seal and len(e.seal) == 64 for e in await LedgerEntry.all())
    assert await chain_pending() == 4
    links = await ChainLink.all().order_by("seq")
    assert [link.entry_id for link in links] == [e.id for e in entries]
    assert links[0].prev_hash == encoding.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(links, links[1:], strict=False))
    head = await ChainHead.get(town_id=village.town_id)
    assert (head.seq, head.hash, head.total) == (4, links[-1].hash, 10 + 11 + 12 + 13)
    assert await chain_pending() == 0  # each entry once
    assert await _problems() == []


async def test_concurrent_check_ins_and_chainers_keep_one_clean_chain(app, client, settings):
    village = await make_village()
    event = await make_event(village, points=5)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    people = [await make_user(village=village) for _ in range(24)]
    headers = [await api_token(client, p) for p in people]

    async def check_in(h):
        return await client.post("/api/v1/checkins", headers=h, json={"token": token})

    answers = await asyncio.gather(*[check_in(h) for h in headers + headers],
                                   *[chain_pending() for _ in range(4)])
    codes = sorted(a.status_code for a in answers[:48])
    assert codes.count(201) == 24, codes
    await chain_pending()
    assert await ChainLink.filter(town_id=village.town_id).count() == 24
    seqs = await ChainLink.filter(town_id=village.town_id).order_by("seq").values_list(
        "seq", flat=True)
    assert seqs == list(range(1, 25))
    assert await _problems() == []


async def test_a_changed_delta_and_balance_are_found(app, tamper):
    _village, _admin, people, entries = await _ledger()
    await chain_pending()
    victim = entries[1]
    # The owner rewrites an entry and the cached balance so that the sums still agree.
    await tamper(f"UPDATE ledger_entries SET delta = 500, balance_after = 500"
                 f" WHERE id = {victim.id}",
                 f"UPDATE users SET balance = 500, lifetime_points = 500"
                 f" WHERE id = {people[1].id}")
    problems = await _problems()
    assert any(f"entry {victim.id} " in p and "changed after it was recorded" in p
               for p in problems), problems


async def test_a_deleted_entry_is_found(app, tamper):
    _village, _admin, people, entries = await _ledger()
    await chain_pending()
    gone = entries[2]
    await tamper(f"DELETE FROM ledger_entries WHERE id = {gone.id}",
                 f"UPDATE users SET balance = 0, lifetime_points = 0 WHERE id = {people[2].id}")
    problems = await _problems()
    assert any(f"entry {gone.id} " in p and "deleted" in p for p in problems), problems
    # Deleting its link as well leaves a hole in the numbering.
    await tamper(f"DELETE FROM ledger_chain WHERE entry_id = {gone.id}")
    problems = await _problems()
    assert any("links 3–3 are missing" in p for p in problems), problems


async def test_a_forged_entry_is_found_and_never_chained(app, tamper):
    _village, _admin, people, entries = await _ledger()
    await chain_pending()
    model = entries[0]
    for seal in ("NULL", "'" + "ab" * 32 + "'"):  # no seal; a made-up one
        await tamper(
            "INSERT INTO ledger_entries (user_id, town_id, delta, balance_after, kind, memo,"
            " idem_key, proxy, counts_as_earned, created_at, seal) VALUES"
            f" ({people[0].id}, {model.town_id}, 1000, 1010, 'adjustment', '奖励',"
            f" 'forged:{uuid.uuid4().hex}', false, false, '2026-11-30 08:00:00+00:00', {seal})",
            f"UPDATE users SET balance = balance + 1000 WHERE id = {people[0].id}")
    forged = await LedgerEntry.filter(delta=1000).values_list("id", flat=True)
    assert await chain_pending() == 0
    assert not await ChainLink.filter(entry_id__in=forged).exists()
    problems = await _problems()
    for entry_id in forged:
        assert any(f"entry {entry_id} " in p and "no valid seal" in p for p in problems)


async def test_swapped_times_are_found(app, tamper):
    _village, _admin, _people, entries = await _ledger()
    await chain_pending()
    first, second = entries[0], entries[3]
    await tamper(
        f"UPDATE ledger_entries SET created_at = (SELECT created_at FROM ledger_entries WHERE"
        f" id = {second.id}) WHERE id = {first.id}",
        "UPDATE ledger_entries SET created_at = '2026-01-01 00:00:00+00:00'"
        f" WHERE id = {second.id}")
    problems = await _problems()
    for entry in (first, second):
        assert any(f"entry {entry.id} " in p and "changed" in p for p in problems), problems


async def test_a_rewritten_chain_is_caught_by_the_signed_head(app, settings, tamper):
    village, _admin, people, entries = await _ledger()
    await chain_pending()
    signed = await sign_head(settings, village.town_id, kind="daily", period="2026-11-30")
    assert signed is not None and signed.seq == 4
    # The owner changes an entry and recomputes every link after it, and the head:
    # the chain is consistent with itself again, but no longer with what was signed.
    await tamper(f"UPDATE ledger_entries SET memo = '改过' WHERE id = {entries[1].id}")
    rows = await LedgerEntry.filter(town_id=village.town_id).order_by("id").values()
    prev = encoding.GENESIS
    for row in rows:
        d = encoding.digest(row | {"salt": sealing.salt(row["id"])}, encoding.SALTED)
        h = encoding.link_hash(prev, d)
        await tamper(f"UPDATE ledger_chain SET digest = '{d}', prev_hash = '{prev}',"
                     f" hash = '{h}' WHERE entry_id = {row['id']}")
        prev = h
    await ChainHead.filter(town_id=village.town_id).update(hash=prev)
    problems = await _problems()
    assert problems and all("signed head of 2026-11-30" in p for p in problems), problems
    assert f"entry {entries[3].id}" in problems[0]


async def test_old_heads_verify_after_the_key_is_rotated(app, settings):
    village, admin, people, _entries = await _ledger(2)
    await chain_pending()
    first = await sign_head(settings, village.town_id, kind="daily", period="2026-11-29")
    await rotate_key(settings, village.town_id, actor=admin)
    await adjust_points(actor=admin, target=people[0], delta=3, memo="补录")
    await chain_pending()
    second = await sign_head(settings, village.town_id, kind="daily", period="2026-11-30")
    assert first.key_id != second.key_id and second.seq == 3
    assert await sign_head(settings, village.town_id, kind="daily", period="2026-11-30") is None
    assert await SignedHead.filter(town_id=village.town_id).count() == 2
    assert await _problems() == []


async def test_entries_from_before_sealing_are_chained_once_by_the_migration(
        app, tamper, monkeypatch):
    from torreya.trust import chain

    monkeypatch.setattr(chain, "BATCH", 2)  # the first run spans several batches
    village, _admin, _people, entries = await _ledger(3)
    # As if written before this version: no seals, no chain, the head as 0021 makes it.
    await tamper("UPDATE ledger_entries SET seal = NULL")
    await ChainHead.create(town_id=village.town_id, hash=encoding.GENESIS,
                           legacy_through=entries[-1].id)
    assert await chain_pending() == 3
    assert await _problems() == []
    # After that first run, an unsealed entry is never taken for an old one.
    await tamper(f"DELETE FROM ledger_chain WHERE entry_id = {entries[-1].id}")
    assert await chain_pending() == 0


async def test_an_entry_that_commits_late_is_linked_by_the_next_sweep(app, tamper):
    """PostgreSQL gives ids at INSERT: an entry may commit after a higher id was linked."""
    from torreya.trust import chain

    village, admin, people, entries = await _ledger(2)
    await chain_pending()
    # As if entry 2 had committed after entry 3: unlink it and move entry 3 past the
    # slack the quick runs look at.
    late = entries[1]
    await tamper(f"DELETE FROM ledger_chain WHERE entry_id = {late.id}")
    await ChainHead.filter(town_id=village.town_id).update(
        entry_id=late.id + chain.ID_SLACK + 10)
    assert await chain_pending(sweep=False) == 0  # the quick run does not look that far
    assert await chain_pending(sweep=True) == 1
    link = await ChainLink.get(entry_id=late.id)
    assert link.seq == 3


async def test_housekeeping_signs_yesterday_once_per_town(app, settings):
    from datetime import datetime

    from torreya.settings import LOCAL
    from torreya.trust.signing import sign_due

    village, _admin, _people, _entries = await _ledger(2)
    first_of_month = datetime(2026, 12, 1, 0, 5, tzinfo=LOCAL)
    assert await sign_due(settings, first_of_month) == 2  # the day and the month before
    assert await sign_due(settings, first_of_month) == 0
    heads = await SignedHead.filter(town_id=village.town_id).order_by("kind")
    assert [(h.kind, h.period, h.seq) for h in heads] == [
        ("daily", "2026-11-30", 2), ("monthly", "2026-11", 2)]
    assert await _problems() == []


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's locking between processes")
async def test_the_chainer_waits_for_another_process_writing_on_sqlite(app, settings):
    """`torreya worker` or a second server writes the same SQLite file: the chainer waits
    for its write lock, and does not fail for having read before the other committed."""
    import sqlite3
    import threading

    village, _admin, _people, entries = await _ledger(3)
    locked, release = threading.Event(), threading.Event()

    def other_process() -> None:
        db = sqlite3.connect(settings.sqlite_path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE towns SET name = name")
        locked.set()
        release.wait(5)
        db.execute("COMMIT")
        db.close()

    holder = threading.Thread(target=other_process)
    holder.start()
    assert locked.wait(5)
    threading.Timer(0.3, release.set).start()
    try:
        assert await chain_pending() == len(entries)
    finally:
        release.set()
        holder.join()
    assert await ChainLink.filter(town_id=village.town_id).count() == len(entries)
