"""Residents are told what matters: in the inbox, and by text message through the gateway
(a real local receiver), once, never in the quiet hours, never when they said no."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.factories import api_token, make_user, make_village, web_login
from tests.receiver import Receiver
from torreya.db import now
from torreya.models import Notification, Redemption, Role, SmsMessage, SmsStatus, User
from torreya.notifications import sender, service, texts
from torreya.outbox import worker
from torreya.signin.gateway import WebhookGateway

pytestmark = pytest.mark.usefixtures("clean_audit")
LOCAL = ZoneInfo("Asia/Shanghai")
PHONE = "+8613800138000"


def daytime() -> datetime:
    """The latest moment, not after now, outside the quiet hours (for a clock the test sets:
    the real one may be at night)."""
    moment = now()
    local = moment.astimezone(LOCAL)
    if local.hour >= 21:
        local = local.replace(hour=20, minute=59)
    elif local.hour < 8:
        local = (local - timedelta(days=1)).replace(hour=20, minute=59)
    return local.astimezone(UTC)


@pytest.fixture
def day_clock(monkeypatch):
    moment = daytime()
    monkeypatch.setattr(service, "now", lambda: moment)
    monkeypatch.setattr(sender, "now", lambda: moment)
    return moment


@pytest.fixture
def sms_receiver():
    with Receiver() as receiver:
        yield receiver


async def _send(receiver) -> int:
    return await sender.send_due_sms(WebhookGateway(receiver.url, timeout=2.0))


async def _reported_and_reviewed(client, *, decision="accept", points=20, note="",
                                 **resident_over):
    village = await make_village()
    resident = await make_user(village=village, phone=PHONE, **resident_over)
    staff = await make_user(Role.STAFF, village)
    filed = await client.post("/api/v1/reports", headers=await api_token(client, resident),
                              json={"category": "hazard", "description": "桥边护栏松了",
                                    "location": "古来桥"})
    assert filed.status_code == 201
    reviewed = await client.post(f"/api/v1/reports/{filed.json()['id']}/review",
                                 headers=await api_token(client, staff),
                                 json={"decision": decision, "points": points, "note": note})
    assert reviewed.status_code == 200, reviewed.text
    await worker.dispatch()
    return resident, staff, filed.json()["id"]


async def test_accepted_report_reaches_the_inbox_and_a_text_message(client, day_clock,
                                                                    sms_receiver):
    resident, _staff, report_id = await _reported_and_reviewed(client)
    headers = await api_token(client, resident)
    inbox = (await client.get("/api/v1/me/notifications", headers=headers)).json()
    assert inbox["unread"] == 1
    [item] = inbox["items"]
    assert item["kind"] == "report_accepted" and item["link"] == f"/reports/{report_id}"
    assert item["text"] == "您的上报（安全隐患）已受理，奖励20香榧币。"
    english = (await client.get("/api/v1/me/notifications",
                                headers={**headers, "Accept-Language": "en"})).json()
    assert english["items"][0]["text"].startswith("Your report (")
    assert "20 香榧币 credited" in english["items"][0]["text"]

    assert await _send(sms_receiver) == 1
    [(_headers, body)] = sms_receiver.received
    sent = json.loads(body)
    assert sent == {"phone": PHONE, "code": None,
                    "text": "您的上报（安全隐患）已受理，奖励20香榧币。"}
    assert (await SmsMessage.get(user_id=resident.id)).status == SmsStatus.SENT
    assert await _send(sms_receiver) == 0  # sent once


async def test_dispatching_again_tells_nobody_twice(client, day_clock):
    resident, _staff, report_id = await _reported_and_reviewed(client)
    await worker.dispatch()
    connection = service.conn()
    # The same message fanned out again (a worker that crashed after telling): no repeat.
    made = await service.notify(connection, await service.notices_from_outbox(connection, [
        {"event_type": "report.status_changed", "town_id": resident.town_id,
         "payload": {"id": report_id, "village_id": resident.village_id,
                     "category": "hazard", "status": "accepted", "points": 20}}]))
    assert made == 0
    assert await Notification.filter(user_id=resident.id).count() == 1
    assert await SmsMessage.filter(user_id=resident.id).count() == 1


async def test_rejected_report_says_why(client, day_clock):
    resident, _staff, _ = await _reported_and_reviewed(client, decision="reject", points=0,
                                                       note="已由村里修好")
    [item] = (await client.get("/api/v1/me/notifications",
                               headers=await api_token(client, resident))).json()["items"]
    assert item["text"] == "您的上报（安全隐患）未被受理：已由村里修好"
    assert (await SmsMessage.get(user_id=resident.id)).text == item["text"]


async def test_home_page_shows_the_unread_count_and_the_inbox_clears_it(client, day_clock):
    resident, _staff, _ = await _reported_and_reviewed(client)
    await web_login(client, resident)
    home = await client.get("/")
    assert "您有1条新消息" in home.text
    inbox = await client.get("/inbox")
    assert inbox.status_code == 200 and "您的上报（安全隐患）已受理" in inbox.text
    assert 'class="card unread"' in inbox.text
    assert "您有1条新消息" not in (await client.get("/")).text
    assert 'class="card unread"' not in (await client.get("/inbox")).text


async def test_a_resident_who_turned_texts_off_gets_only_the_inbox(client, day_clock,
                                                                   sms_receiver):
    village = await make_village()
    resident = await make_user(village=village, phone=PHONE)
    csrf = await web_login(client, resident)
    saved = await client.post("/me/settings", data={"csrf_token": csrf})  # box unticked
    assert saved.status_code == 303
    assert not (await User.get(id=resident.id)).sms_notifications
    staff = await make_user(Role.STAFF, village)
    filed = await client.post("/api/v1/reports", headers=await api_token(client, resident),
                              json={"category": "fraud", "description": "可疑电话",
                                    "location": ""})
    await client.post(f"/api/v1/reports/{filed.json()['id']}/review",
                      headers=await api_token(client, staff),
                      json={"decision": "accept", "points": 5, "note": ""})
    await worker.dispatch()
    assert await Notification.filter(user_id=resident.id).count() == 1
    assert await SmsMessage.filter(user_id=resident.id).count() == 0


async def test_turning_texts_off_cancels_what_was_queued(client, day_clock, sms_receiver):
    resident, _staff, _ = await _reported_and_reviewed(client)
    await User.filter(id=resident.id).update(sms_notifications=False)
    assert await _send(sms_receiver) == 1
    assert sms_receiver.received == []
    assert (await SmsMessage.get(user_id=resident.id)).status == SmsStatus.CANCELLED


async def test_no_text_messages_in_the_quiet_hours(client, monkeypatch, sms_receiver):
    late = (now().astimezone(LOCAL) - timedelta(days=1)).replace(hour=22, minute=30)
    monkeypatch.setattr(service, "now", lambda: late.astimezone(UTC))
    resident, _staff, _ = await _reported_and_reviewed(client)
    sms = await SmsMessage.get(user_id=resident.id)
    morning = sms.send_after.astimezone(LOCAL)
    assert (morning.date(), morning.hour, morning.minute) == (
        late.date() + timedelta(days=1), 8, 0)
    # A message that comes due during the quiet hours (a retry) waits for the morning.
    monkeypatch.setattr(sender, "now", lambda: late.astimezone(UTC))
    await SmsMessage.filter(id=sms.id).update(send_after=late.astimezone(UTC))
    assert await _send(sms_receiver) == 1
    assert sms_receiver.received == []
    waiting = await SmsMessage.get(id=sms.id)
    assert waiting.status == SmsStatus.PENDING
    assert waiting.send_after.astimezone(LOCAL).hour == 8


@pytest.mark.parametrize(("local", "expected"), [
    ("08:00", "08:00+0"), ("20:59", "20:59+0"), ("21:00", "08:00+1"), ("23:59", "08:00+1"),
    ("00:00", "08:00+0"), ("07:59", "08:00+0")])
def test_quiet_hours_are_21_to_8_in_asia_shanghai(local, expected):
    hour, minute = map(int, local.split(":"))
    moment = datetime(2026, 12, 1, hour, minute, tzinfo=LOCAL)
    sent = texts.sms_send_time(moment.astimezone(UTC)).astimezone(LOCAL)
    clock, days = expected.split("+")
    assert sent.strftime("%H:%M") == clock
    assert (sent.date() - moment.date()).days == int(days)


async def test_a_gateway_that_is_down_is_retried_then_failed(client, day_clock,
                                                             sms_receiver):
    resident, _staff, _ = await _reported_and_reviewed(client)
    sms_receiver.plan = [500]
    assert await _send(sms_receiver) == 1
    sms = await SmsMessage.get(user_id=resident.id)
    assert sms.status == SmsStatus.PENDING and sms.attempts == 1
    assert sms.last_error.startswith("HTTP 500")
    assert sms.send_after > day_clock  # backed off
    # The last try fails too: marked failed with the gateway's answer, not retried again.
    await SmsMessage.filter(id=sms.id).update(attempts=len(sender.RETRY_DELAYS),
                                              send_after=day_clock - timedelta(seconds=1))
    sms_receiver.plan = [503]
    assert await _send(sms_receiver) == 1
    failed = await SmsMessage.get(id=sms.id)
    assert failed.status == SmsStatus.FAILED and failed.last_error.startswith("HTTP 503")
    assert await _send(sms_receiver) == 0


async def test_voucher_expiring_in_three_days_is_told_once(client, day_clock):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village, phone=PHONE)
    admin_headers = await api_token(client, admin)
    await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=admin_headers,
                      json={"delta": 50, "memo": "初始"})
    reward = (await client.post(f"/api/v1/villages/{village.id}/rewards", headers=admin_headers,
                                json={"name": "五常大米十斤装（新米）", "cost": 20})).json()
    headers = await api_token(client, resident)
    soon = (await client.post("/api/v1/redemptions", headers=headers,
                              json={"reward_id": reward["id"]})).json()
    later = (await client.post("/api/v1/redemptions", headers=headers,
                               json={"reward_id": reward["id"]})).json()
    expires = now() + timedelta(days=2)
    await Redemption.filter(id=soon["id"]).update(expires_at=expires)
    await Redemption.filter(id=later["id"]).update(expires_at=now() + timedelta(days=10))
    assert await service.remind_expiring_vouchers() == 1
    assert await service.remind_expiring_vouchers() == 0
    [note] = await Notification.filter(user_id=resident.id)
    local = expires.astimezone(LOCAL)
    text = (await SmsMessage.get(notification_id=note.id)).text
    assert text == (f"您兑换的五常大米十斤装（新米）将于{local.month}月{local.day}日过期，"
                    "请尽快到村委会领取。")
    assert len(text) < texts.SMS_MAX_CHARS
    assert note.link == f"/vouchers/{soon['id']}"


async def test_event_reminder_the_day_before_goes_to_the_village_once(client, day_clock):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    residents = [await make_user(village=village, phone=PHONE) for _ in range(3)]
    staff = await make_user(Role.STAFF, village, phone=PHONE)
    elsewhere = await make_user(village=await make_village())
    headers = await api_token(client, admin)
    # tomorrow by the reminder's clock (just after midnight, the real "tomorrow" is two days
    # after the day clock's evening)
    start = (day_clock.astimezone(LOCAL) + timedelta(days=1)).replace(hour=9, minute=30,
                                                                      second=0, microsecond=0)

    async def event(title, remind):
        made = await client.post(f"/api/v1/villages/{village.id}/events", headers=headers, json={
            "title": title, "kind": "campaign", "points": 5, "qr_mode": "static",
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
            "place": "村文化礼堂", "remind_day_before": remind})
        assert made.status_code == 201, made.text
        assert made.json()["remind_day_before"] is remind
        return made.json()

    await event("反诈宣传进村", True)
    await event("不提醒的活动", False)
    assert await service.remind_events() == 3
    assert await service.remind_events() == 0
    for person in residents:
        [note] = await Notification.filter(user_id=person.id)
        assert (await SmsMessage.get(notification_id=note.id)).text == (
            "提醒：反诈宣传进村将于明天09:30在村文化礼堂开始。")
    assert not await Notification.filter(user_id__in=[staff.id, elsewhere.id]).exists()


def test_every_text_message_fits_one_segment():
    longest = "长" * 60
    params = {"category": "dispute", "points": 10_000, "currency": "香" * 32,
              "reason": longest, "route": texts.clip(longest), "reward": texts.clip(longest),
              "on": "2026-12-31", "title": texts.clip(longest), "time": "23:59",
              "place": texts.clip(longest), "village": texts.clip(longest), "hours": 8760,
              "status": "in_progress"}
    for kind, (msgid, by_sms) in texts.KINDS.items():
        names = {k for k in params if f"%({k})s" in msgid or (k == "on" and "%(date)s" in msgid)}
        chosen = {k: params[k] for k in names}
        if "reason" in chosen:
            chosen["reason"] = texts.clip(longest, texts.REASON_CHARS)
        if "currency" in chosen:
            chosen["currency"] = "香榧币"
        text = texts.sms_text(kind, chosen)
        assert (text is not None) == by_sms
        if text is not None:
            assert len(text) < texts.SMS_MAX_CHARS, (kind, len(text), text)
