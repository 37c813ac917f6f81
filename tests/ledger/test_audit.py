"""Issue 37: `torreya audit` holds one batch of accounts at a time, whatever the ledger's
size, and still names every kind of tampering with the caches."""

from __future__ import annotations

import tracemalloc

from tortoise import connections
from tortoise.transactions import in_transaction

from tests.factories import make_user, make_village
from torreya.ledger import invariants
from torreya.ledger.invariants import audit_ledger, audit_since_checkpoint, sign_checkpoints
from torreya.ledger.service import Posting, post_entry
from torreya.models import EarningTotal, LedgerEntry, SignedHead, User
from torreya.trust import verify
from torreya.trust.chain import chain_pending


async def _earn(people: list[User], times: int, *, first: int = 0) -> None:
    for person in people:
        async with in_transaction() as connection:
            for n in range(first, first + times):
                await post_entry(Posting(user=person, delta=3, kind="pledge",
                                         idem_key=f"test:{person.id}:{n}", earned=True),
                                 connection)


async def test_the_audit_names_every_kind_of_tampering_across_its_batches(client, monkeypatch):
    monkeypatch.setattr(invariants, "USERS_AT_ONCE", 2)  # accounts and entries in pages
    monkeypatch.setattr(invariants, "ENTRIES_AT_ONCE", 3)
    village = await make_village()
    people = [await make_user(village=village) for _ in range(5)]
    await _earn(people, 4)
    clean = await audit_ledger()
    assert clean.clean and clean.entries == await LedgerEntry.all().count()  # each once
    a, b, c, d, _e = people
    await User.filter(id=a.id).update(balance=99)
    await User.filter(id=b.id).update(lifetime_points=1)
    await EarningTotal.filter(user_id=c.id, kind="*", period="all").update(total=5)
    await EarningTotal.filter(user_id=d.id, kind="pledge").first().delete()
    await EarningTotal.create(user_id=_e.id, town_id=_e.town_id, village_id=_e.village_id,
                              kind="pledge", period="d1999-01-01", total=7)
    problems = "\n".join((await audit_ledger()).problems)
    assert f"user {a.id}: balance 99 but entries sum to 12" in problems
    assert f"user {b.id}: lifetime points 1 but earned entries sum to 12" in problems
    assert f"user {c.id}: total */all is 5 but the ledger says 12" in problems
    assert f"user {d.id}: total pledge/" in problems and "is missing (ledger says 12)" in problems
    assert f"user {_e.id}: total pledge/d1999-01-01 is 7 but the ledger says 0" in problems
    assert (await audit_ledger()).accounts >= 5


async def _peak_of_audit() -> int:
    await chain_pending()  # the worker's linking of new entries, not the audit's reading
    tracemalloc.start()
    report = await audit_ledger()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.clean, report.problems[:5]
    return peak


async def test_the_audit_holds_one_batch_while_the_ledger_grows_tenfold(client, monkeypatch):
    """Small pages, so that both ledgers span many of them: what the audit holds must not
    grow with the ledger (it kept every account's totals in dicts before, 1.6 GB at 1 M
    entries)."""
    monkeypatch.setattr(invariants, "USERS_AT_ONCE", 10)
    monkeypatch.setattr(invariants, "ENTRIES_AT_ONCE", 200)
    monkeypatch.setattr(verify, "BATCH", 200)
    village = await make_village()
    people = [await make_user(village=village) for _ in range(40)]
    await _earn(people, 25)  # 1,000 entries
    small = await _peak_of_audit()
    await _earn(people, 225, first=25)  # 10,000 entries: ten times as many
    large = await _peak_of_audit()
    entries = await connections.get("default").execute_query_dict(
        "SELECT COUNT(*) AS n FROM ledger_entries")
    assert entries[0]["n"] >= 10_000
    # What it held before grew with the ledger (every idempotency key, every total):
    # tenfold here. Now a page's rows, whose peak moves with the allocator, not the size.
    assert large < small * 3, (small, large)
    assert large < 4_000_000, large


async def test_the_nightly_audit_starts_at_the_last_full_audits_signed_checkpoint(
        client, settings):
    village = await make_village()
    people = [await make_user(village=village) for _ in range(4)]
    await _earn(people, 3)
    full = await audit_ledger()
    assert full.clean and await sign_checkpoints(settings, full) >= 1
    checkpoint = await SignedHead.get(town_id=village.town_id, kind="audit")
    assert checkpoint.seq == full.reached[village.town_id].seq >= 12
    nothing_since = await audit_since_checkpoint(settings)
    assert nothing_since.clean and nothing_since.accounts == 0 and nothing_since.links == 0

    toucher, untouched = people[0], people[1]
    await _earn([toucher], 2, first=3)  # two entries after the checkpoint
    await User.filter(id=toucher.id).update(balance=1)  # the touched account, tampered
    await User.filter(id=untouched.id).update(balance=2)  # an untouched one, tampered
    nightly = await audit_since_checkpoint(settings)
    assert nightly.links == 2 and nightly.accounts == 1  # only what came after
    assert any(f"user {toucher.id}: balance 1" in p for p in nightly.problems)
    assert not any(f"user {untouched.id}:" in p for p in nightly.problems)
    weekly = await audit_ledger()  # the full one sees both
    assert any(f"user {untouched.id}: balance 2" in p for p in weekly.problems)
    assert await sign_checkpoints(settings, weekly) == 0  # not clean: no checkpoint

    # A checkpoint forged behind the app's back (signed heads are append-only): refused.
    await SignedHead.create(town_id=village.town_id, key_id=checkpoint.key_id, kind="audit",
                            period="2099-01-01", seq=checkpoint.seq + 2,
                            entry_id=checkpoint.entry_id, hash="0" * 64, total=0,
                            signed_at=checkpoint.signed_at, signature="00" * 64)
    forged = await audit_since_checkpoint(settings)
    assert any("audit checkpoint" in p and "does not verify" in p for p in forged.problems)
    await User.filter(id=toucher.id).update(balance=15)
    await User.filter(id=untouched.id).update(balance=9)


async def test_the_full_audit_still_checks_every_signed_head_even_of_an_empty_chain(
        client, settings):
    """Resuming from a checkpoint skips the heads it covers; the full audit skips none,
    a head signed over link 0 included."""
    village = await make_village()
    await _earn([await make_user(village=village)], 1)
    assert (await audit_ledger()).clean
    await sign_checkpoints(settings, await audit_ledger())
    checkpoint = await SignedHead.get(town_id=village.town_id, kind="audit")
    await SignedHead.create(town_id=village.town_id, key_id=checkpoint.key_id, kind="daily",
                            period="1999-01-01", seq=0, entry_id=0, hash="0" * 64, total=0,
                            signed_at=checkpoint.signed_at, signature="00" * 64)
    problems = (await audit_ledger()).problems
    assert any("1999-01-01" in p and "does not verify" in p and "edited after it was signed"
               in p for p in problems), problems
