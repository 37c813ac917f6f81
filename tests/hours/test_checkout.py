"""Check-out and hours (issue 34): the minutes counted are the minutes attended — a check-out
scanned twice, one before the check-in, one after the event, one synced later from a phone
without signal, staff recording a forgotten one — on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.factories import api_token, csrf_from, make_event, make_user, make_village, web_login
from torreya.checkins import signed
from torreya.checkins.codes import member_code, poster_token
from torreya.db import now, replaying
from torreya.models import AuditEvent, Checkin, LedgerEntry, Role, User
from torreya.settings import LOCAL

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _scan(client, headers, settings, event, at):
    with replaying(at):
        return await client.post("/api/v1/checkins", headers=headers, json={
            "token": poster_token(settings, event_id=event.id, ends_at=event.ends_at)})


async def _hours(client, headers):
    return (await client.get("/api/v1/me/service-hours", headers=headers)).json()


async def test_the_second_scan_checks_out_and_the_minutes_are_those_attended(client, settings):
    village = await make_village()
    event = await make_event(village, opens_in=timedelta(hours=-3), lasts=timedelta(hours=4),
                             checkout=True)
    resident = await make_user(village=village)
    headers = await api_token(client, resident)
    arrived = event.starts_at + timedelta(minutes=10)

    first = await _scan(client, headers, settings, event, arrived)
    assert first.status_code == 201 and first.json()["checked_out_at"] is None
    # a second tap a few seconds later is the same scan, not a check-out of 0 minutes
    again = await _scan(client, headers, settings, event, arrived + timedelta(seconds=5))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_checked_in"

    left = await _scan(client, headers, settings, event, arrived + timedelta(minutes=95))
    assert left.status_code == 200, left.text
    assert left.json()["minutes"] == 95 and left.json()["points"] == 0
    assert left.json()["balance"] == 10  # the check-in's points; no points per hour here
    # the check-out sent twice (a retry) counts once
    twice = await _scan(client, headers, settings, event, arrived + timedelta(minutes=95))
    assert twice.status_code == 200 and twice.json()["minutes"] == 95
    # leaving later (first in, last out) moves the check-out, never back
    later = await _scan(client, headers, settings, event, arrived + timedelta(minutes=120))
    assert later.json()["minutes"] == 120
    earlier = await _scan(client, headers, settings, event, arrived + timedelta(minutes=60))
    assert earlier.status_code == 200 and earlier.json()["minutes"] == 120

    hours = await _hours(client, headers)
    assert hours["total_minutes"] == 120
    assert [(i["kind"], i["ref_id"], i["minutes"]) for i in hours["items"]] == [
        ("event", event.id, 120)]
    await resident.refresh_from_db()
    assert resident.balance == 10
    assert await LedgerEntry.filter(user_id=resident.id).count() == 1


async def test_a_scan_from_before_the_check_in_is_not_a_check_out(client, settings):
    village = await make_village()
    event = await make_event(village, opens_in=timedelta(hours=-3), lasts=timedelta(hours=4),
                             checkout=True)
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village)
    card = await signed.card_code(settings, resident)
    headers = await api_token(client, staff)
    arrived = event.starts_at + timedelta(minutes=30)
    synced = (await client.post(f"/api/v1/events/{event.id}/offline-scans", headers=headers,
                                json={"scans": [
                                    {"nonce": uuid.uuid4().hex, "code": card,
                                     "scanned_at": arrived.isoformat()}]})).json()
    assert synced["results"][0]["outcome"] == "credited"
    # a second phone's scan made before that check-in, synced after it
    before = (await client.post(f"/api/v1/events/{event.id}/offline-scans", headers=headers,
                                json={"scans": [
                                    {"nonce": uuid.uuid4().hex, "code": card,
                                     "scanned_at": (arrived - timedelta(minutes=20)).isoformat()}
                                ]})).json()["results"][0]
    assert before["outcome"] == "refused" and before["code"] == "invalid_state"
    assert "早于" in before["message"] and "不能算签退" in before["message"]
    checkin = await Checkin.get(event_id=event.id, user_id=resident.id)
    assert checkin.checked_out_at is None and checkin.minutes is None
    assert (await _hours(client, await api_token(client, resident)))["total_minutes"] == 0


async def test_a_check_out_after_the_event_counts_to_its_end(client, settings):
    village = await make_village()
    event = await make_event(village, opens_in=timedelta(hours=-3), lasts=timedelta(hours=2),
                             checkout=True)
    resident = await make_user(village=village)
    headers = await api_token(client, resident)
    assert (await _scan(client, headers, settings, event,
                        event.starts_at + timedelta(minutes=15))).status_code == 201
    # the event ended an hour ago: the poster's code has expired, but leaving is recorded
    left = await client.post("/api/v1/checkins", headers=headers, json={
        "token": poster_token(settings, event_id=event.id, ends_at=event.ends_at)})
    assert left.status_code == 200, left.text
    assert left.json()["minutes"] == 105  # 15 minutes in, to the end at 120
    # someone who never checked in cannot check in after the end
    late = await make_user(village=village)
    refused = await client.post("/api/v1/checkins", headers=await api_token(client, late),
                                json={"token": poster_token(settings, event_id=event.id,
                                                            ends_at=event.ends_at)})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "event_not_open"
    assert not await Checkin.filter(user_id=late.id).exists()


async def test_offline_check_out_synced_later_counts_its_own_time(client, settings):
    village = await make_village()
    event = await make_event(village, opens_in=timedelta(hours=-4), lasts=timedelta(hours=3),
                             checkout=True, points_per_hour=6)
    staff = await make_user(Role.STAFF, village)
    people = [await make_user(village=village) for _ in range(3)]
    headers = await api_token(client, staff)
    scans = []
    for n, person in enumerate(people):
        card = await signed.card_code(settings, person)
        came = event.starts_at + timedelta(minutes=5 + n)
        went = came + timedelta(minutes=60 + 30 * n)
        # the phone sends its queue in any order: the earlier scan is still the check-in
        scans += [{"nonce": uuid.uuid4().hex, "code": card, "scanned_at": went.isoformat()},
                  {"nonce": uuid.uuid4().hex, "code": card, "scanned_at": came.isoformat()}]
    answer = await client.post(f"/api/v1/events/{event.id}/offline-scans", headers=headers,
                               json={"scans": scans})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["outcome"] for r in results] == ["checked_out", "credited"] * 3
    assert [r["minutes"] for r in results[::2]] == [60, 90, 120]
    for n, person in enumerate(people):
        minutes = 60 + 30 * n
        await person.refresh_from_db()
        # the check-in's 10 and 6 points an hour, paid at check-out
        assert person.balance == 10 + minutes * 6 // 60
        checkin = await Checkin.get(event_id=event.id, user_id=person.id)
        assert checkin.method == "offline" and checkin.checkout_method == "offline"
        assert checkin.minutes == minutes and checkin.hour_points == minutes * 6 // 60
    # the same queue synced again changes nothing
    again = (await client.post(f"/api/v1/events/{event.id}/offline-scans", headers=headers,
                               json={"scans": scans})).json()["results"]
    assert all(r["repeat"] for r in again)
    assert [r["minutes"] for r in again[::2]] == [60, 90, 120]
    balances = [(await User.get(id=p.id)).balance for p in people]
    assert sum(balances) == 30 + 6 + 9 + 12


async def test_staff_card_scans_check_in_and_out(client, settings):
    village = await make_village()
    event = await make_event(village, opens_in=timedelta(hours=-2), lasts=timedelta(hours=4),
                             checkout=True)
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village)
    headers = await api_token(client, staff)
    code = member_code(settings, user_id=resident.id, serial=1)
    with replaying(now() - timedelta(minutes=50)):
        came = await client.post(f"/api/v1/events/{event.id}/checkins", headers=headers,
                                 json={"member_code": code})
    assert came.status_code == 201
    went = await client.post(f"/api/v1/events/{event.id}/checkins", headers=headers,
                             json={"member_code": code})
    assert went.status_code == 200 and went.json()["minutes"] == 50
    assert await AuditEvent.filter(tag="checkins:checkout:proxy").count() == 1


async def test_staff_record_a_forgotten_check_out_with_a_reason(client, settings):
    village = await make_village()
    start = (now() - timedelta(hours=5)).replace(second=0, microsecond=0)  # a form's minutes
    event = await make_event(village, checkout=True, starts_at=start,
                             ends_at=start + timedelta(hours=3))
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village, display_name="李桂兰")
    headers = await api_token(client, resident)
    assert (await _scan(client, headers, settings, event,
                        event.starts_at + timedelta(minutes=30))).status_code == 201
    # forgotten: nothing counts beyond the check-in's points
    assert (await _hours(client, headers))["total_minutes"] == 0

    staff_headers = await api_token(client, staff)
    path = f"/api/v1/events/{event.id}/checkouts"
    no_reason = await client.post(path, headers=staff_headers, json={
        "user_id": resident.id, "at": event.ends_at.isoformat(), "reason": ""})
    assert no_reason.status_code == 422
    future = await client.post(path, headers=staff_headers, json={
        "user_id": resident.id, "at": (now() + timedelta(hours=1)).isoformat(),
        "reason": "忘记签退"})
    assert future.status_code == 422 and future.json()["error"]["field"] == "at"
    outsider = await make_user(Role.STAFF, await make_village())
    assert (await client.post(path, headers=await api_token(client, outsider), json={
        "user_id": resident.id, "at": event.ends_at.isoformat(), "reason": "x"})
        ).status_code == 404
    done = await client.post(path, headers=staff_headers, json={
        "user_id": resident.id, "at": (event.starts_at + timedelta(minutes=150)).isoformat(),
        "reason": "李桂兰忘记签退，巡逻队长确认"})
    assert done.status_code == 200, done.text
    assert done.json()["minutes"] == 120
    record = await AuditEvent.get(tag="checkins:checkout:correct")
    assert record.actor_id == staff.id and record.data["reason"].startswith("李桂兰")
    assert (await _hours(client, headers))["total_minutes"] == 120

    # the same from the event page, for the one left
    other = await make_user(village=village, display_name="王德福")
    assert (await _scan(client, await api_token(client, other), settings, event,
                        event.starts_at + timedelta(minutes=60))).status_code == 201
    await web_login(client, staff)
    page = await client.get(f"/events/{event.id}")
    assert "王德福" in page.text and 'id="record-checkout"' in page.text
    posted = await client.post(f"/events/{event.id}/checkouts", data={
        "csrf_token": csrf_from(page.text), "user_id": str(other.id),
        "at": event.ends_at.astimezone(LOCAL).strftime("%Y-%m-%dT%H:%M"),
        "reason": "散会时忘记扫码"})
    assert posted.status_code == 303
    assert (await Checkin.get(event_id=event.id, user_id=other.id)).minutes == 120
    shown = await client.get(f"/events/{event.id}")
    assert "2 小时" in shown.text


async def test_events_with_check_out_are_created_and_listed(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    headers = await api_token(client, admin)
    start = now() - timedelta(minutes=5)
    body = {"title": "红枫义警夜巡", "kind": "other", "points": 5, "qr_mode": "static",
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=3)).isoformat()}
    made = await client.post(f"/api/v1/villages/{village.id}/events", headers=headers,
                             json=body | {"checkout": True, "points_per_hour": 4})
    assert made.status_code == 201, made.text
    assert made.json()["checkout"] is True and made.json()["points_per_hour"] == 4
    listed = (await client.get(f"/api/v1/villages/{village.id}/events",
                               headers=headers)).json()["items"]
    assert [e["checkout"] for e in listed] == [True]
    refused = await client.post(f"/api/v1/villages/{village.id}/events", headers=headers,
                                json=body | {"points_per_hour": 4})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "points_per_hour"
    wrong = await client.post(f"/api/v1/villages/{village.id}/events", headers=headers,
                              json=body | {"checkout": "yes"})
    assert wrong.status_code == 422


async def test_the_web_check_in_page_says_check_out_and_the_time(client, settings):
    village = await make_village()
    event = await make_event(village, opens_in=timedelta(hours=-2), lasts=timedelta(hours=4),
                             checkout=True)
    resident = await make_user(village=village)
    await web_login(client, resident)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    page = await client.get(f"/c/{token}")
    with replaying(now() - timedelta(minutes=75)):
        first = await client.post(f"/c/{token}", data={"csrf_token": csrf_from(page.text)})
    assert first.status_code == 201 and "签退" in first.text  # how to leave is said
    second = await client.post(f"/c/{token}", data={"csrf_token": csrf_from(page.text)})
    assert second.status_code == 200 and "已签退" in second.text
    assert "1 小时 15 分钟" in second.text
    mine = await client.get("/me/hours")
    assert mine.status_code == 200 and "1 小时 15 分钟" in mine.text
