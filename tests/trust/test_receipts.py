"""Receipts: a resident's entry, checked by anyone against the signed head that covers it,
without seeing other residents' data."""

from __future__ import annotations

import pytest

from tests.factories import api_token
from tests.trust.test_chain import _ledger
from torreya.trust import encoding, sealing
from torreya.trust.chain import chain_pending
from torreya.trust.receipts import receipt_code
from torreya.trust.signing import sign_head

pytestmark = pytest.mark.usefixtures("clean_audit")


async def test_a_receipt_proves_the_entry_under_the_signed_head(app, client, settings):
    village, _admin, people, entries = await _ledger(4)
    mine = await client.get("/api/v1/me/ledger", headers=await api_token(client, people[1]))
    code = mine.json()["items"][0]["receipt"]
    assert code == receipt_code(entries[1].id)
    pending = await client.get(f"/api/v1/receipts/{code}")  # before the chainer and signer
    assert pending.status_code == 200 and pending.json()["status"] == "pending"
    await chain_pending()
    await sign_head(settings, village.town_id, kind="daily", period="2026-11-30")
    answer = (await client.get(f"/api/v1/receipts/{code}")).json()
    assert answer["status"] == "verified" and answer["delta"] == 11
    # What an outside verifier does with it: walk the path, check the signature.
    head, link = answer["signed_head"], answer["link"]
    assert len(answer["path"]) == head["seq"] - link["seq"] == 2
    assert encoding.walk(link["hash"], answer["path"]) == head["hash"]
    payload = encoding.head_payload(head)
    assert encoding.verify_signature(head["public_key"], payload, head["signature"])
    # Nothing about other residents: their names and deltas are not in it.
    text = str(answer)
    assert people[0].display_name not in text and people[2].display_name not in text
    assert people[1].display_name not in text  # masked
    page = await client.get(f"/r/{code}")
    assert page.status_code == 200 and "真实有效" in page.text and "2026-11-30" in page.text
    assert "<svg" in page.text  # its QR
    trust = await client.get(f"/towns/{village.town_id}/trust")
    assert head["public_key"] in trust.text and "2026-11-30" in trust.text
    heads = (await client.get(f"/api/v1/towns/{village.town_id}/signed-heads")).json()
    assert heads["items"][0]["signature"] == head["signature"]


@pytest.mark.parametrize("code", ["1-AAAAAA", "abc", "99999999-ZZZZZZ", "1-" + "A" * 40])
async def test_forged_or_guessed_codes_are_refused(app, client, code):
    await _ledger(1)
    api = await client.get(f"/api/v1/receipts/{code}")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    page = await client.get(f"/r/{code}")
    assert page.status_code == 404 and "无效的凭证" in page.text


async def test_the_residents_history_shows_each_entrys_receipt(app, client):
    from tests.factories import web_login

    _village, _admin, people, entries = await _ledger(1)
    await web_login(client, people[0])
    page = await client.get("/me/ledger")
    assert f'href="/r/{receipt_code(entries[0].id)}"' in page.text


async def test_the_monthly_report_ends_with_the_signed_record(app, client, settings):
    from tests.factories import web_login

    village, admin, _people, _entries = await _ledger(2)
    await chain_pending()
    head = await sign_head(settings, village.town_id, kind="monthly", period="2026-11")
    await web_login(client, admin)
    csv = await client.get(f"/console/villages/{village.id}/report.csv?month=2026-11")
    last = csv.text.strip().splitlines()[-2:]
    assert last[0].startswith("账本签名记录,2026-11,2,") and head.hash in last[0]
    assert head.signature in last[0]
    assert last[1].endswith(f"/towns/{village.town_id}/trust")


async def test_a_receipts_digest_does_not_give_away_the_residents_id_and_balance(
        app, client, settings):
    """Issue 26 (7): the digest was a hash over fields a stranger can guess; from what the
    receipt shows (id, time, delta, kind, town) a search over user id × balance found the
    resident's id and balance (12,506 guesses). Now the digest covers a salt only the
    server and an export know; the same search finds nothing."""
    from torreya.models import ChainLink, LedgerEntry

    village, _admin, people, entries = await _ledger(3)
    await chain_pending()
    await sign_head(settings, village.town_id, kind="daily", period="2026-11-30")
    target = entries[2]
    answer = (await client.get(f"/api/v1/receipts/{receipt_code(target.id)}")).json()
    assert answer["status"] == "verified"
    row = (await LedgerEntry.filter(id=target.id).values())[0]
    link = await ChainLink.get(entry_id=target.id)
    assert link.v == encoding.SALTED and answer["link"]["digest"] == link.digest
    assert sealing.salt(target.id) not in str(answer)

    def search(version_digest) -> set[tuple[int, int]]:
        found = set()
        for user in range(1, 60):
            for balance in range(0, 400):
                guess = {**row, "user_id": user, "balance_after": balance}
                if version_digest(guess) == answer["link"]["digest"]:
                    found.add((user, balance))
        return found

    # The search itself works: against version 1's digest it finds the resident.
    v1 = encoding.digest(row)
    assert (row["user_id"], row["balance_after"]) in {
        (u, b) for u in range(1, 60) for b in range(0, 400)
        if encoding.digest({**row, "user_id": u, "balance_after": b}) == v1}
    assert search(encoding.digest) == set()  # …and finds nothing in the receipt


def test_links_of_both_versions_verify_and_a_salt_taken_away_is_caught():
    from torreya.trust.verify import ChainChecker

    base = {"town": 1, "user": 7, "delta": 5, "balance_after": 5, "kind": "checkin",
            "memo": "", "source": "", "idem_key": "a", "actor": None, "proxy": False,
            "created_at": "2026-12-01T08:30:00.000000Z"}
    old = {**base, "id": 1}
    new = {**base, "id": 2, "balance_after": 10, "idem_key": "b",
           "salt": "0123456789abcdef0123456789abcdef"}
    links, prev = [], encoding.GENESIS
    for seq, (entry, version) in enumerate([(old, 1), (new, 2)], 1):
        digest = encoding.digest(entry, version)
        link = {"seq": seq, "entry_id": entry["id"], "digest": digest, "prev_hash": prev,
                "hash": encoding.link_hash(prev, digest), "v": version}
        links.append((link, entry))
        prev = link["hash"]
    problems: list[str] = []
    checker = ChainChecker(1, problems.append)
    for link, entry in links:
        checker.link(link, entry)
    assert problems == []
    stripped = {k: v for k, v in new.items() if k != "salt"}
    checker = ChainChecker(1, problems.append)
    checker.link(*links[0])
    checker.link(links[1][0], stripped)
    assert problems == ["entry 2 (link 2 of town 1) was changed after it was recorded"]
