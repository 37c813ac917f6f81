"""Offline scanning (issue 15): signed cards and vouchers, the kit, and a sync that applies
each queued scan once, judged at the time it was made — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from tests.factories import api_token, csrf_from, make_event, make_user, make_village, web_login
from tests.rewards.test_redemption import make_reward, resident_with
from torreya.checkins import signed
from torreya.db import now
from torreya.models import (
    AuditEvent,
    Checkin,
    LedgerEntry,
    OfflineScan,
    Redemption,
    RedemptionStatus,
    Role,
    User,
)
from torreya.rewards.service import redeem_reward

pytestmark = pytest.mark.usefixtures("clean_audit")


def scan(code: str, at=None, nonce: str | None = None) -> dict:
    return {"nonce": nonce or uuid.uuid4().hex, "code": code,
            "scanned_at": (at or now() - timedelta(minutes=20)).isoformat()}


async def _sync(client, headers, event_id, scans):
    return await client.post(f"/api/v1/events/{event_id}/offline-scans", headers=headers,
                             json={"scans": scans})


async def setup_event(**over):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    event = await make_event(village, **over)
    return village, staff, event


async def test_a_signed_card_verifies_and_a_changed_one_does_not(settings, app):
    village = await make_village()
    resident = await make_user(village=village, display_name="王秀英")
    code = await signed.card_code(settings, resident)
    assert len(code) < 160  # a version 8 QR at most, read from paper by a cheap camera
    fields = await signed.verify(code)
    assert (fields.kind, fields.subject_id, fields.serial, fields.name) == (
        "card", resident.id, 1, "王*英")
    prefix, payload, signature = code.split(".")
    other = await make_user(village=village)
    forged_payload = (await signed.card_code(settings, other)).split(".")[1]
    assert await signed.verify(f"{prefix}.{forged_payload}.{signature}") is None
    # (the first letter: the last two carry padding bits, and "AA" could decode the same)
    changed = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert await signed.verify(f"{prefix}.{payload}.{changed}") is None
    assert await signed.verify("S1.not-base64!.x") is None
    # another town's key cannot sign for this one
    elsewhere = await make_user(village=await make_village())
    theirs = (await signed.card_code(settings, elsewhere)).split(".")
    assert await signed.verify(f"{prefix}.{payload}.{theirs[2]}") is None


async def test_the_kit_holds_keys_revocations_and_the_event(client, settings):
    village, staff, event = await setup_event()
    reissued = await make_user(village=village, card_serial=3)
    gone = await make_user(village=village, is_active=False)
    headers = await api_token(client, staff)
    kit = (await client.get(f"/api/v1/events/{event.id}/offline-kit", headers=headers)).json()
    assert kit["event"]["id"] == event.id and kit["event"]["town_id"] == village.town_id
    assert len(kit["keys"]) == 1 and len(kit["keys"][0]["public_key"]) == 43  # 32 bytes
    assert kit["revoked"]["serials"] == {str(reissued.id): 3}
    assert kit["revoked"]["inactive"] == [gone.id]
    resident = await make_user(village=village)
    assert (await client.get(f"/api/v1/events/{event.id}/offline-kit",
                             headers=await api_token(client, resident))).status_code == 403
    stranger = await make_user(Role.STAFF, await make_village())
    assert (await client.get(f"/api/v1/events/{event.id}/offline-kit",
                             headers=await api_token(client, stranger))).status_code == 404


async def test_three_cards_and_a_voucher_sync_once_at_their_own_time(client, settings):
    village, staff, event = await setup_event(points=10)
    people = [await make_user(village=village) for _ in range(3)]
    owner = await resident_with(50, village)
    redemption = (await redeem_reward(user=owner, reward_id=(await make_reward(village)).id)
                  ).redemption
    voucher = await signed.voucher_code(settings, redemption, owner=owner, item="大米 5 斤")
    moments = [now() - timedelta(minutes=m) for m in (40, 30, 20, 10)]
    scans = [scan(await signed.card_code(settings, p), at)
             for p, at in zip(people, moments[:3], strict=True)]
    scans.append(scan(voucher, moments[3]))
    headers = await api_token(client, staff)

    first = await _sync(client, headers, event.id, scans)
    assert first.status_code == 200, first.text
    outcomes = [(r["outcome"], r["repeat"]) for r in first.json()["results"]]
    assert outcomes == [("credited", False)] * 3 + [("fulfilled", False)]
    assert first.json()["results"][0]["points"] == 10
    for person, at in zip(people, moments[:3], strict=True):
        assert (await User.get(id=person.id)).balance == 10
        entry = await LedgerEntry.get(user_id=person.id, kind="checkin")
        assert abs((entry.created_at - at).total_seconds()) < 1  # credited at its time
        checkin = await Checkin.get(user_id=person.id, event_id=event.id)
        assert checkin.method == "offline" and checkin.staff_id == staff.id
    assert (await Redemption.get(id=redemption.id)).status == RedemptionStatus.FULFILLED
    # the committee sees them as offline scans, with both times
    records = await AuditEvent.filter(tag="checkins:checkin:proxy").order_by("id")
    assert len(records) == 3
    assert records[0].data["offline"] is True and records[0].data["scanned_at"].startswith(
        moments[0].strftime("%Y-%m-%dT%H:%M"))
    assert records[0].data["synced_at"] > records[0].data["scanned_at"]
    handed = await AuditEvent.get(tag="rewards:voucher:fulfil")
    assert handed.data["offline"] is True

    again = await _sync(client, headers, event.id, scans)
    assert [(r["outcome"], r["repeat"]) for r in again.json()["results"]] == [
        ("credited", True)] * 3 + [("fulfilled", True)]
    for person in people:
        assert (await User.get(id=person.id)).balance == 10
    assert await LedgerEntry.filter(kind="checkin").count() == 3


async def test_a_scan_after_the_end_is_refused_with_its_reason(client, settings):
    village, staff, event = await setup_event(opens_in=timedelta(hours=-5),
                                              lasts=timedelta(hours=2))
    during, after = [await make_user(village=village) for _ in range(2)]
    headers = await api_token(client, staff)
    results = (await _sync(client, headers, event.id, [
        scan(await signed.card_code(settings, during), now() - timedelta(hours=4)),
        scan(await signed.card_code(settings, after), now() - timedelta(hours=1)),
    ])).json()["results"]
    # the event ended three hours ago: made during it, it counts; made after, it does not
    assert results[0]["outcome"] == "credited"
    assert results[1]["outcome"] == "refused" and results[1]["code"] == "event_not_open"
    assert "结束" in results[1]["message"]
    assert (await User.get(id=after.id)).balance == 0


async def test_revoked_forged_typed_and_impossible_scans(client, settings):
    village, staff, event = await setup_event()
    replaced = await make_user(village=village)
    old_card = await signed.card_code(settings, replaced)
    await User.filter(id=replaced.id).update(card_serial=2)
    typed = await make_user(village=village)
    from torreya.checkins.codes import member_code

    short = member_code(settings, user_id=typed.id, serial=1)
    prefix, payload, signature = old_card.split(".")
    ahead = await make_user(village=village)
    headers = await api_token(client, staff)
    results = (await _sync(client, headers, event.id, [
        scan(old_card),
        scan(f"{prefix}.{payload}.{signature[::-1]}"),
        scan(short),
        scan(short[:-1] + ("A" if short[-1] != "A" else "B")),
        scan(await signed.card_code(settings, ahead), now() + timedelta(hours=2)),
        scan("<script>alert(1)</script>"),
    ])).json()["results"]
    assert [(r["outcome"], r.get("code")) for r in results] == [
        ("refused", "card_revoked"), ("refused", "invalid_token"), ("credited", None),
        ("refused", "invalid_token"), ("refused", "invalid_scan_time"),
        ("refused", "invalid_token")]
    assert (await User.get(id=typed.id)).balance == 10
    assert (await User.get(id=replaced.id)).balance == 0
    assert (await User.get(id=ahead.id)).balance == 0


@pytest.mark.parametrize("body, field", [
    ({}, "scans"), ({"scans": []}, "scans"), ({"scans": [1]}, "scans[0]"),
    ({"scans": [{"nonce": "short", "code": "M1-1-AAAAAAAA", "scanned_at": "2026-01-01T00:00Z"}]},
     "scans[0].nonce"),
    ({"scans": [{"nonce": "n" * 20, "code": "", "scanned_at": "2026-01-01T00:00Z"}]},
     "scans[0].code"),
    ({"scans": [{"nonce": "n" * 20, "code": "M1", "scanned_at": "2026-01-01T00:00"}]},
     "scans[0].scanned_at"),
    ({"scans": [{"nonce": "n" * 20, "code": "M1", "scanned_at": 5}]}, "scans[0].scanned_at"),
])
async def test_a_malformed_batch_is_refused_whole_and_writes_nothing(client, body, field):
    _village, staff, event = await setup_event()
    response = await client.post(f"/api/v1/events/{event.id}/offline-scans",
                                 headers={**await api_token(client, staff),
                                          "Accept-Language": "zh-CN"}, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert await OfflineScan.all().count() == 0


async def test_only_staff_of_the_village_sync(client, settings):
    village, _staff, event = await setup_event()
    resident = await make_user(village=village)
    body = [scan(await signed.card_code(settings, resident))]
    assert (await _sync(client, await api_token(client, resident), event.id,
                        body)).status_code == 403
    stranger = await make_user(Role.STAFF, await make_village())
    assert (await _sync(client, await api_token(client, stranger), event.id,
                        body)).status_code == 404
    assert (await client.post(f"/api/v1/events/{event.id}/offline-scans",
                              json={"scans": body})).status_code == 401
    assert (await User.get(id=resident.id)).balance == 0


async def test_concurrent_repeats_of_one_queue_credit_once(client, settings):
    village, staff, event = await setup_event()
    people = [await make_user(village=village) for _ in range(5)]
    scans = [scan(await signed.card_code(settings, p)) for p in people]
    headers = await api_token(client, staff)
    answers = await asyncio.gather(*[_sync(client, headers, event.id, scans) for _ in range(8)])
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    fresh = [r for a in answers for r in a.json()["results"] if not r["repeat"]]
    assert len(fresh) == 5 and {r["outcome"] for r in fresh} == {"credited"}
    for person in people:
        assert (await User.get(id=person.id)).balance == 10
    assert await OfflineScan.all().count() == 5


async def test_a_batch_of_200_applies_in_one_request(client, settings):
    village, staff, event = await setup_event()
    people = [User(username=f"batch{i}", display_name=f"李{i}", role=Role.RESIDENT,
                   town_id=village.town_id, village_id=village.id) for i in range(200)]
    await User.bulk_create(people)
    people = await User.filter(username__startswith="batch").order_by("id")
    scans = [scan(await signed.card_code(settings, p)) for p in people]
    response = await _sync(client, await api_token(client, staff), event.id, scans)
    assert response.status_code == 200
    assert [r["outcome"] for r in response.json()["results"]] == ["credited"] * 200
    assert await Checkin.filter(event_id=event.id).count() == 200


async def test_chunks_at_once_keep_each_resident_together_and_undo_a_capped_scan(
        client, settings):
    """120 scans, more than two chunks: the last ten scan, typed, residents whose signed
    cards came first, so their scans must be judged in one chunk (on PostgreSQL chunks go at
    once). A scan over the day's cap is undone whole, and its refusal is kept."""
    from torreya.checkins.codes import member_code
    from torreya.models import CheckinRefusal, EarningRule

    village, staff, event = await setup_event()
    await User.bulk_create([User(username=f"lane{i}", display_name=f"赵{i}", role=Role.RESIDENT,
                                 town_id=village.town_id, village_id=village.id)
                            for i in range(110)])
    people = await User.filter(username__startswith="lane").order_by("id")
    # the first resident already earned 10 today at another event; the cap is 15 a day
    other = await make_event(village, title="早上的活动")
    await EarningRule.filter(town_id=village.town_id, kind="checkin").update(cap_day=15)
    headers = await api_token(client, staff)
    first = await _sync(client, headers, other.id,
                        [scan(await signed.card_code(settings, people[0]))])
    assert first.json()["results"][0]["outcome"] == "credited"
    scans = [scan(await signed.card_code(settings, p)) for p in people]
    scans += [scan(member_code(settings, user_id=p.id, serial=1)) for p in people[:10]]
    response = await _sync(client, headers, event.id, scans)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["nonce"] for r in results] == [s["nonce"] for s in scans]  # in the batch's order
    assert (results[0]["outcome"], results[0]["code"]) == ("refused", "cap_reached")
    assert [r["outcome"] for r in results[1:110]] == ["credited"] * 109
    assert [(r["outcome"], r["code"]) for r in results[110:]] == (
        [("refused", "cap_reached")] + [("already_done", "already_checked_in")] * 9)
    # the capped scan left nothing behind but its refusal: no check-in, no entry
    assert (await User.get(id=people[0].id)).balance == 10
    assert not await Checkin.filter(event_id=event.id, user_id=people[0].id).exists()
    assert await LedgerEntry.filter(user_id=people[0].id).count() == 1
    assert await CheckinRefusal.filter(event_id=event.id, method="offline",
                                       reason="cap_reached").count() == 2
    for person in people[1:]:
        assert (await User.get(id=person.id)).balance == 10
    assert await Checkin.filter(event_id=event.id).count() == 109
    assert await OfflineScan.filter(event_id=event.id).count() == 120


async def test_the_page_syncs_with_its_session_and_csrf_header(client, settings):
    village, staff, event = await setup_event()
    resident = await make_user(village=village)
    await web_login(client, staff)
    page = await client.get(f"/events/{event.id}/scan/offline")
    assert page.status_code == 200 and 'id="offline-scanner"' in page.text
    token = csrf_from(page.text.replace('data-csrf="', 'name="csrf_token" value="'))
    body = {"scans": [scan(await signed.card_code(settings, resident))]}
    refused = await client.post(f"/events/{event.id}/offline-scans", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    done = await client.post(f"/events/{event.id}/offline-scans", json=body,
                             headers={"X-CSRF-Token": token})
    assert done.json()["results"][0]["outcome"] == "credited"
    kit = await client.get(f"/events/{event.id}/offline-kit.json")
    assert kit.status_code == 200 and kit.json()["event"]["id"] == event.id
    # the committee's audit log marks it as an offline scan, with both times
    client.cookies.clear()
    await web_login(client, await make_user(Role.VILLAGE_ADMIN, village))
    log = (await client.get("/console/audit")).text
    assert "离线扫码" in log and "扫码于" in log and "同步于" in log
    worker = await client.get("/sw.js")
    assert worker.headers["service-worker-allowed"] == "/"
    assert worker.headers["content-type"].startswith("text/javascript")


async def test_scans_credited_in_sets_write_what_one_by_one_writes(client, settings,
                                                                   monkeypatch):
    """A sync's card scans that simply succeed are written by the express batches; where
    those cannot run (PostgreSQL logging statement parameters), one by one. Both write the
    same rows and answer the same."""
    from torreya.ledger import batch
    from torreya.models import EarningTotal, OutboxMessage
    from torreya.trust import encoding, sealing

    village, staff, event = await setup_event(points=15, title="反诈宣传")
    fast, slow = await make_user(village=village), await make_user(village=village)
    headers = await api_token(client, staff)
    batches = []
    write_batch = batch.write_batch

    async def counted(scans, **kw):
        batches.append(len(scans))
        return await write_batch(scans, **kw)

    monkeypatch.setattr(batch, "write_batch", counted)
    at = now() - timedelta(minutes=30)
    answers = {}
    for person in (fast, slow):
        if person is slow:
            async def no():
                return False
            monkeypatch.setattr(batch, "may_seal_in_database", no)
        response = await _sync(client, headers, event.id,
                               [scan(await signed.card_code(settings, person), at)])
        assert response.status_code == 200, response.text
        answers[person.id] = response.json()["results"][0]
    assert batches == [1], "the first sync is written in a set, the second is not"

    def same(row: dict, user: User, *drop: str) -> dict:
        mine = {k: "ME" for k, v in row.items() if v == user.id and k.endswith("_id")}
        return {k: v for k, v in row.items() if k not in ("id", "seal", *drop)} | mine

    entries = {p.id: await LedgerEntry.get(user_id=p.id).values() for p in (fast, slow)}
    for person in (fast, slow):
        assert encoding.seal_ok(sealing.key(), entries[person.id])
        assert entries[person.id]["actor_id"] == staff.id and entries[person.id]["proxy"]
        assert abs((entries[person.id]["created_at"] - at).total_seconds()) < 1
    assert same(entries[fast.id], fast, "idem_key", "created_at") == same(
        entries[slow.id], slow, "idem_key", "created_at")
    checkins = [await Checkin.get(user_id=p.id).values() for p in (fast, slow)]
    assert same(checkins[0], fast, "created_at") == same(checkins[1], slow, "created_at")
    assert checkins[0]["staff_id"] == staff.id and checkins[0]["method"] == "offline"

    async def totals(user: User) -> set:
        return set(await EarningTotal.filter(user_id=user.id).values_list(
            "kind", "period", "total", "town_id", "village_id"))

    assert await totals(fast) == await totals(slow) and len(await totals(fast)) == 8
    records = {p.id: await AuditEvent.get(tag="checkins:checkin:proxy",
                                          subject=f"user:{p.id}").values() for p in (fast, slow)}
    for person in (fast, slow):
        record = records[person.id]
        assert record["entry_id"] == entries[person.id]["id"]
        assert record["actor_id"] == staff.id
        assert abs((record["created_at"] - at).total_seconds()) < 1
    unlike = ("entry_id", "created_at", "subject", "data")
    assert same(records[fast.id], fast, *unlike) == same(records[slow.id], slow, *unlike)
    assert [sorted(r["data"]) for r in records.values()] == [
        ["event", "nonce", "offline", "points", "scanned_at", "synced_at"]] * 2
    assert records[fast.id]["data"]["scanned_at"] == records[slow.id]["data"]["scanned_at"]
    rows = {p.id: await OfflineScan.get(subject_id=p.id).values() for p in (fast, slow)}
    unlike = ("nonce", "name", "synced_at")
    assert same(rows[fast.id], fast, *unlike) == same(rows[slow.id], slow, *unlike)
    assert {k: v for k, v in answers[fast.id].items() if k not in ("nonce", "name")} == {
        k: v for k, v in answers[slow.id].items() if k not in ("nonce", "name")}
    assert answers[fast.id]["outcome"] == "credited" and answers[fast.id]["points"] == 15

    def message(m: OutboxMessage, user: User) -> tuple:
        data = {k: v for k, v in m.payload.items() if k not in ("id", "created_at")}
        return m.event_type, m.town_id, data | {"user_id": "ME"}

    messages = await OutboxMessage.filter(
        event_type__in=("checkin.created", "ledger.entry_created")).order_by("id")
    assert [m.event_type for m in messages] == ["checkin.created", "ledger.entry_created"] * 2
    assert [message(m, fast) for m in messages[:2]] == [message(m, slow) for m in messages[2:]]


async def test_a_card_reissued_as_its_set_is_written_is_not_credited(settings):
    """The set checks the card's serial under the resident's lock: a card reissued after
    the sync read the resident writes nothing (and goes one by one, which refuses it)."""
    from torreya.ledger import batch

    village, staff, event = await setup_event()
    resident = await make_user(village=village)
    await User.filter(id=resident.id).update(card_serial=2)
    stale = batch.staff_checkin(event, user_id=resident.id, serial=1, staff_id=staff.id,
                               method="offline", moment=now())
    fresh = batch.staff_checkin(event, user_id=resident.id, serial=2, staff_id=staff.id,
                               method="offline", moment=now())
    assert await batch.write_batch([stale]) == [None]
    assert not await Checkin.filter(user_id=resident.id).exists()
    assert (await User.get(id=resident.id)).balance == 0
    [done] = await batch.write_batch([fresh])
    assert done is not None and done[1] == 10
    entry = await LedgerEntry.get(user_id=resident.id)
    assert entry.id == done[2] and entry.actor_id == staff.id and entry.proxy
    # write_batch alone writes no audit record: tell the audit the sync would have
    await AuditEvent.create(actor=staff, tag="checkins:checkin:proxy", entry_id=entry.id,
                            subject=f"user:{resident.id}", town_id=event.town_id)


async def test_a_sync_cut_off_midway_answers_503_and_its_retry_counts_each_scan_once(
        client, settings, monkeypatch):
    """The database goes away as the second set of a 150-scan sync is written: the sync
    answers 503 (not a 500), and the phone's retry of the same queue credits the rest, each
    scan once, any set written before as repeats."""
    from torreya.ledger import batch

    village, staff, event = await setup_event()
    await User.bulk_create([User(username=f"cut{i}", display_name=f"钱{i}", role=Role.RESIDENT,
                                 town_id=village.town_id, village_id=village.id)
                            for i in range(150)])
    people = await User.filter(username__startswith="cut").order_by("id")
    scans = [scan(await signed.card_code(settings, p)) for p in people]
    headers = await api_token(client, staff)
    write_batch, sets = batch.write_batch, []

    async def cut_off(credits, **kw):
        sets.append(len(credits))
        if len(sets) > 1:
            raise ConnectionResetError("the database went away")
        return await write_batch(credits, **kw)

    monkeypatch.setattr(batch, "write_batch", cut_off)
    answer = await _sync(client, headers, event.id, scans)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "unavailable"
    # The first set committed (SQLite writes sets in turn), or was cut off with the second
    # (PostgreSQL writes them at once): whole sets, either way
    first = await Checkin.filter(event_id=event.id).count()
    assert first in (0, sets[0]) and first < 150
    assert await OfflineScan.filter(event_id=event.id).count() == first
    assert await LedgerEntry.filter(source_id=event.id, kind="checkin").count() == first
    assert await AuditEvent.filter(tag="checkins:checkin:proxy").count() == first
    monkeypatch.setattr(batch, "write_batch", write_batch)
    retry = await _sync(client, headers, event.id, scans)
    assert retry.status_code == 200, retry.text
    results = retry.json()["results"]
    assert {r["outcome"] for r in results} == {"credited"}
    assert sum(r["repeat"] for r in results) == first
    assert await Checkin.filter(event_id=event.id).count() == 150
    assert {u.balance for u in await User.filter(username__startswith="cut")} == {10}
