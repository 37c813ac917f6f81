"""Poster, rotating and member-card check-ins, and every refusal by name."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.factories import api_token, make_event, make_user, make_village, web_login
from torreya import qr
from torreya.checkins.codes import member_code, poster_token, rotating_token, rotating_window
from torreya.db import now
from torreya.models import Checkin, CheckinRefusal, EarningRule, LedgerEntry, Role, User
from torreya.models.checkins import QrMode

LOCAL = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _checkin(client, headers, token):
    return await client.post("/api/v1/checkins", headers=headers, json={"token": token})


async def _poster(settings, event):
    return poster_token(settings, event_id=event.id, ends_at=event.ends_at)


async def test_event_created_by_api_has_a_working_poster_url(client, settings):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    start = now() - timedelta(minutes=5)
    response = await client.post(
        f"/api/v1/villages/{village.id}/events", headers=await api_token(client, admin),
        json={"title": "反诈宣传进村", "kind": "campaign", "points": 10,
              "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
              "qr_mode": "static"})
    assert response.status_code == 201
    event = response.json()
    assert event["checkin_url"].startswith("http://testserver/c/")
    token = event["checkin_url"].rsplit("/", 1)[1]
    done = await _checkin(client, await api_token(client, resident), token)
    assert done.status_code == 201
    assert done.json() == {"id": done.json()["id"], "event_id": event["id"], "points": 10,
                           "balance": 10, "checked_out_at": None, "minutes": None}
    await resident.refresh_from_db()
    assert resident.balance == 10 and resident.lifetime_points == 10


async def test_rotating_event_has_no_poster_url_and_serves_a_fresh_code(client, settings):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    staff = await make_user(Role.STAFF, village)
    start = now() - timedelta(minutes=5)
    created = (await client.post(
        f"/api/v1/villages/{village.id}/events", headers=await api_token(client, admin),
        json={"title": "大屏签到", "kind": "training", "points": 5,
              "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
              "qr_mode": "rotating"})).json()
    assert created["checkin_url"] is None
    code = (await client.get(f"/api/v1/events/{created['id']}/checkin-code",
                             headers=await api_token(client, staff))).json()
    from datetime import datetime

    expires = datetime.fromisoformat(code["expires_at"])
    # Accepted until the end of the next 30 s window: 29–59 s from now (less the test's own time).
    assert timedelta(seconds=28) <= expires - now() <= timedelta(seconds=60)
    resident = await make_user(village=village)
    ok = await _checkin(client, await api_token(client, resident), code["token"])
    assert ok.status_code == 201 and ok.json()["points"] == 5


async def test_expired_rotating_code_is_410(client, settings):
    village = await make_village()
    event = await make_event(village, qr_mode=QrMode.ROTATING)
    resident = await make_user(village=village)
    old, _ = rotating_token(settings, event_id=event.id, window=rotating_window(settings) - 3)
    response = await _checkin(client, await api_token(client, resident), old)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "token_expired"
    # The event goes on: the advice is to scan the screen's current code.
    assert response.json()["error"]["message"] == "二维码已过期，请扫描最新的二维码。"
    assert await CheckinRefusal.filter(user_id=resident.id, reason="token_expired").exists()
    assert await LedgerEntry.all().count() == 0


async def test_poster_code_after_the_event_is_expired(client, settings):
    village = await make_village()
    event = await make_event(village, opens_in=timedelta(hours=-5), lasts=timedelta(hours=1))
    resident = await make_user(village=village)
    response = await _checkin(client, await api_token(client, resident),
                              await _poster(settings, event))
    assert response.status_code == 410
    # No newer code exists: it says the event is over, and when.
    ended = event.ends_at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")
    assert response.json()["error"]["message"] == f"这个活动已于{ended}结束。"


async def test_page_of_an_ended_event_says_when_and_shows_whats_next(client, settings):
    village = await make_village()
    over = await make_event(village, opens_in=timedelta(hours=-5), lasts=timedelta(hours=1))
    await make_event(village, title="消防演练", opens_in=timedelta(days=2), place="村广场")
    await make_event(await make_village(), title="别村的活动", opens_in=timedelta(days=1))
    resident = await make_user(village=village)
    await web_login(client, resident)
    page = await client.get(f"/c/{await _poster(settings, over)}")
    ended = over.ends_at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")
    assert f"这个活动已于{ended}结束。" in page.text
    upcoming = page.text.split('id="upcoming"')[1]
    assert "消防演练" in upcoming and "村广场" in upcoming and "别村的活动" not in upcoming
    assert "请扫描最新的二维码" not in page.text


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-4],                       # truncated
    lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),  # signature changed
    lambda t: "not-a-token",
    lambda t: "",
])
async def test_forged_or_malformed_codes_are_invalid(client, settings, mangle):
    village = await make_village()
    event = await make_event(village)
    resident = await make_user(village=village)
    response = await _checkin(client, await api_token(client, resident),
                              mangle(await _poster(settings, event)))
    assert response.status_code in (400, 422)
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "invalid_token"
    assert await Checkin.all().count() == 0


async def test_code_signed_with_another_key_is_invalid(client, settings):
    from tests.conftest import settings_for

    village = await make_village()
    event = await make_event(village)
    resident = await make_user(village=village)
    foreign = settings_for(settings.DATABASE_URL, SECRET_KEY="another-deployment-secret-0123")
    token = poster_token(foreign, event_id=event.id, ends_at=event.ends_at)
    response = await _checkin(client, await api_token(client, resident), token)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_token"


async def test_member_card_is_not_a_checkin_code(client, settings):
    village = await make_village()
    resident = await make_user(village=village)
    card = member_code(settings, user_id=resident.id, serial=1)
    response = await _checkin(client, await api_token(client, resident), card)
    assert response.status_code == 400


async def test_poster_of_an_event_switched_to_rotating_is_invalid(client, settings):
    village = await make_village()
    event = await make_event(village)
    token = await _poster(settings, event)
    event.qr_mode = QrMode.ROTATING
    await event.save()
    resident = await make_user(village=village)
    response = await _checkin(client, await api_token(client, resident), token)
    assert response.json()["error"]["code"] == "invalid_token"


async def test_event_not_open_yet(client, settings):
    village = await make_village()
    event = await make_event(village, opens_in=timedelta(hours=2))
    resident = await make_user(village=village)
    response = await _checkin(client, await api_token(client, resident),
                              await _poster(settings, event))
    assert response.status_code == 409 and response.json()["error"]["code"] == "event_not_open"
    opens = event.starts_at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")
    assert response.json()["error"]["message"] == f"这个活动{opens}开始签到。"


async def test_second_checkin_is_already_checked_in(client, settings):
    village = await make_village()
    event = await make_event(village)
    resident = await make_user(village=village)
    headers = await api_token(client, resident)
    token = await _poster(settings, event)
    assert (await _checkin(client, headers, token)).status_code == 201
    again = await _checkin(client, headers, token)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_checked_in"
    await resident.refresh_from_db()
    assert resident.balance == 10


async def test_resident_of_another_town_is_forbidden(client, settings):
    event = await make_event(await make_village())
    outsider = await make_user(village=await make_village())
    response = await _checkin(client, await api_token(client, outsider),
                              await _poster(settings, event))
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert await CheckinRefusal.filter(user_id=outsider.id, reason="forbidden").exists()


async def test_daily_cap_is_enforced_with_a_message(client, settings):
    village = await make_village()
    await EarningRule.filter(town_id=village.town_id, kind="checkin").update(cap_day=15)
    first, second = await make_event(village), await make_event(village, title="第二场")
    resident = await make_user(village=village)
    headers = await api_token(client, resident)
    assert (await _checkin(client, headers, await _poster(settings, first))).status_code == 201
    capped = await _checkin(client, headers, await _poster(settings, second))
    assert capped.status_code == 409
    error = capped.json()["error"]
    assert error["code"] == "cap_reached" and "15" in error["message"]
    await resident.refresh_from_db()
    assert resident.balance == 10
    assert await Checkin.filter(user_id=resident.id).count() == 1


async def test_staff_check_in_by_member_card(client, settings):
    village = await make_village()
    event = await make_event(village, points=20)
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village, password_hash=None)
    code = member_code(settings, user_id=resident.id, serial=resident.card_serial)
    response = await client.post(f"/api/v1/events/{event.id}/checkins",
                                 headers=await api_token(client, staff),
                                 json={"member_code": code.lower()})
    assert response.status_code == 201
    assert response.json()["user_id"] == resident.id and response.json()["balance"] == 20
    entry = await LedgerEntry.get(user_id=resident.id)
    assert entry.proxy and entry.actor_id == staff.id


async def test_member_card_api_for_the_resident(client, settings):
    resident = await make_user()
    body = (await client.get("/api/v1/me/member-card",
                             headers=await api_token(client, resident))).json()
    assert body["code"] == member_code(settings, user_id=resident.id, serial=1)
    assert body["url"] == f"http://testserver/card/{body['code']}"


async def test_reissued_card_revokes_the_old_one(client, settings):
    village = await make_village()
    event = await make_event(village)
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village)
    old = member_code(settings, user_id=resident.id, serial=resident.card_serial)
    token = await web_login(client, resident)
    assert (await client.post(f"/users/{resident.id}/card/reissue",
                              data={"csrf_token": token})).status_code == 303
    client.cookies.clear()
    response = await client.post(f"/api/v1/events/{event.id}/checkins",
                                 headers=await api_token(client, staff),
                                 json={"member_code": old})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_token"
    assert (await User.get(id=resident.id)).card_serial == 2


async def test_forged_member_card_is_refused(client, settings):
    village = await make_village()
    event = await make_event(village)
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village)
    response = await client.post(f"/api/v1/events/{event.id}/checkins",
                                 headers=await api_token(client, staff),
                                 json={"member_code": f"M{resident.id}-1-AAAAAAAA"})
    assert response.status_code == 400
    assert await LedgerEntry.all().count() == 0


async def test_staff_of_another_village_cannot_scan_or_show_codes(client, settings):
    village, other = await make_village(), await make_village()
    event = await make_event(village)
    staff = await make_user(Role.STAFF, other)
    resident = await make_user(village=village)
    headers = await api_token(client, staff)
    code = member_code(settings, user_id=resident.id, serial=1)
    scan = await client.post(f"/api/v1/events/{event.id}/checkins", headers=headers,
                             json={"member_code": code})
    assert scan.status_code == 404
    show = await client.get(f"/api/v1/events/{event.id}/checkin-code", headers=headers)
    assert show.status_code == 404
    resident_probe = await client.get(f"/api/v1/events/{event.id}/checkin-code",
                                      headers=await api_token(client, resident))
    assert resident_probe.status_code == 403


async def test_concurrent_identical_checkins_credit_once(client, settings):
    village = await make_village()
    event = await make_event(village)
    resident = await make_user(village=village)
    headers = await api_token(client, resident)
    token = await _poster(settings, event)
    responses = await asyncio.gather(*[_checkin(client, headers, token) for _ in range(60)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1 and statuses.count(409) == 59, statuses
    assert all(r.json()["error"]["code"] == "already_checked_in"
               for r in responses if r.status_code == 409)
    await resident.refresh_from_db()
    assert resident.balance == 10
    assert await LedgerEntry.filter(user_id=resident.id).count() == 1


async def test_concurrent_checkins_of_many_residents_all_count(client, settings):
    village = await make_village()
    event = await make_event(village)
    residents = [await make_user(village=village) for _ in range(12)]
    token = await _poster(settings, event)
    headers = [await api_token(client, r) for r in residents]
    responses = await asyncio.gather(*[_checkin(client, h, token) for h in headers])
    assert [r.status_code for r in responses] == [201] * 12
    assert await Checkin.filter(event_id=event.id).count() == 12


# -- pages -----------------------------------------------------------------------------------


async def test_poster_page_and_png(client, settings):
    village = await make_village()
    event = await make_event(village, title="消防安全培训")
    staff = await make_user(Role.STAFF, village)
    await web_login(client, staff)
    page = await client.get(f"/events/{event.id}/poster")
    assert page.status_code == 200 and "消防安全培训" in page.text and "<svg" in page.text
    png = await client.get(f"/events/{event.id}/poster.png")
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    svg = await client.get(f"/events/{event.id}/poster.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text


async def test_checkin_page_flow_for_logged_out_resident(client, settings):
    village = await make_village()
    event = await make_event(village, points=12, title="防溺水宣讲")
    resident = await make_user(village=village)
    path = f"/c/{await _poster(settings, event)}"
    first = await client.get(path)  # logged out: which event, what it earns, then login
    assert first.status_code == 200 and "防溺水宣讲" in first.text
    assert "登录后签到，可得 12" in first.text and 'href="/login?next=%2Fc%2F' in first.text
    assert 'id="checkin-button"' not in first.text
    token = await web_login(client, resident, next_url=path)
    page = await client.get(path)
    assert "防溺水宣讲" in page.text and "12" in page.text and 'id="checkin-button"' in page.text
    done = await client.post(path, data={"csrf_token": token})
    assert done.status_code == 201 and "+12" in done.text
    again = await client.post(path, data={"csrf_token": token})
    assert again.status_code == 409 and "已经签到过了" in again.text
    # The poster scanned again: said calmly, with the time, and no button to press.
    later = await client.get(path)
    assert later.status_code == 200 and "已签到，签到时间" in later.text
    assert 'id="checkin-button"' not in later.text and "flash-error" not in later.text


async def test_scanner_page_checks_in_by_typed_code(client, settings):
    village = await make_village()
    event = await make_event(village)
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village, display_name="王秀英")
    token = await web_login(client, staff)
    code = member_code(settings, user_id=resident.id, serial=1)
    response = await client.post(f"/events/{event.id}/scan",
                                 data={"csrf_token": token, "member_code": code})
    assert response.status_code == 201 and "王秀英" in response.text
    detail = await client.get(f"/events/{event.id}")
    assert "王秀英" in detail.text


async def test_display_code_json_changes_per_window(client, settings):
    village = await make_village()
    event = await make_event(village, qr_mode=QrMode.ROTATING)
    staff = await make_user(Role.STAFF, village)
    await web_login(client, staff)
    body = (await client.get(f"/events/{event.id}/code.json")).json()
    assert body["url"].startswith("http://testserver/c/") and body["svg"].startswith("<svg")
    assert body["open"] is True and body["checked_in"] == 0
    # the display's next poll within the window gets the same code, not drawn again
    drawn = qr.svg.cache_info().misses
    again = (await client.get(f"/events/{event.id}/code.json")).json()
    if again["url"] == body["url"]:  # (unless the window turned in between)
        assert again["svg"] == body["svg"] and qr.svg.cache_info().misses == drawn
