"""Sessions that can be ended (SPEC §5.1): "log out everywhere" and staff's "lost phone"."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.factories import PASSWORD, api_token, make_user, make_village, web_login
from torreya.db import now
from torreya.models import AuditEvent, Role, Town, User, UserSession

pytestmark = pytest.mark.usefixtures("clean_audit")


@pytest.fixture
async def browser_client(app):
    """A second device: a browser with its own cookie session on the same server."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_log_out_everywhere_ends_every_token_and_cookie(client, browser_client):
    resident = await make_user(village=await make_village())
    phone, tablet = await api_token(client, resident), await api_token(client, resident)
    await web_login(browser_client, resident)
    assert (await browser_client.get("/me/ledger")).status_code == 200
    ended = await client.post("/api/v1/me/sessions/revoke", headers=phone)
    assert ended.status_code == 204
    for headers in (phone, tablet):
        answer = await client.get("/api/v1/me", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthenticated"
    page = await browser_client.get("/me/ledger")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    # Logging in again works at once.
    assert (await client.get("/api/v1/me", headers=await api_token(client, resident))
            ).status_code == 200
    assert await AuditEvent.filter(tag="accounts:sessions:revoke").count() == 1


async def test_lost_phone_ends_a_residents_sessions_not_the_staffs(client):
    village = await make_village()
    staff, resident = await make_user(Role.STAFF, village), await make_user(village=village)
    staff_headers = await api_token(client, staff)
    lost = await api_token(client, resident)
    answer = await client.post(f"/api/v1/users/{resident.id}/sessions/revoke",
                               headers=staff_headers)
    assert answer.status_code == 204
    assert (await client.get("/api/v1/me", headers=lost)).status_code == 401
    assert (await client.get("/api/v1/me", headers=staff_headers)).status_code == 200
    record = await AuditEvent.get(tag="accounts:sessions:revoke")
    assert record.actor_id == staff.id and record.subject == f"user:{resident.id}"


async def test_no_one_ends_the_sessions_of_someone_at_or_above_them(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    other_staff = await make_user(Role.STAFF, village)
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    stranger = await make_user(Role.VILLAGE_ADMIN, await make_village())
    cases = [(staff, admin, 403), (staff, other_staff, 403), (resident, staff, 403),
             (stranger, resident, 404)]
    for actor, target, status in cases:
        answer = await client.post(f"/api/v1/users/{target.id}/sessions/revoke",
                                   headers=await api_token(client, actor))
        assert answer.status_code == status, (actor.role, target.role)
    assert await AuditEvent.filter(tag="accounts:sessions:revoke").count() == 0
    assert (await client.post("/api/v1/users/999999/sessions/revoke",
                              headers=await api_token(client, admin))).status_code == 404


async def test_lost_phone_button_in_the_console_ends_the_residents_browser(client,
                                                                          browser_client):
    village = await make_village()
    staff, resident = await make_user(Role.STAFF, village), await make_user(village=village)
    await web_login(browser_client, resident)
    token = await web_login(client, staff)
    page = await client.get(f"/console/users/{resident.id}")
    assert f"/users/{resident.id}/sessions/end" in page.text
    ended = await client.post(f"/users/{resident.id}/sessions/end", data={"csrf_token": token},
                              follow_redirects=True)
    assert ended.status_code == 200 and resident.display_name in ended.text
    assert (await browser_client.get("/me/ledger")).status_code == 303
    assert (await client.get(f"/console/users/{resident.id}")).status_code == 200


async def test_log_out_on_every_device_from_the_home_page(client, browser_client):
    resident = await make_user(village=await make_village())
    await web_login(browser_client, resident)
    token = await web_login(client, resident)
    home = await client.get("/")
    assert "/logout/everywhere" in home.text
    out = await client.post("/logout/everywhere", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (await browser_client.get("/me/ledger")).status_code == 303
    assert (await client.get("/me/ledger")).status_code == 303


# -- each login listed and ended on its own; password change; lifetimes (issue 17) -----------


async def test_each_login_is_listed_and_one_can_be_ended_alone(client, browser_client):
    resident = await make_user(village=await make_village())
    phone = await api_token(client, resident)
    tablet = await api_token(client, resident)
    await web_login(browser_client, resident)
    listed = (await client.get("/api/v1/me/sessions", headers=phone)).json()["items"]
    assert len(listed) == 3
    assert [s["current"] for s in listed].count(True) == 1
    assert {s["kind"] for s in listed} == {"api", "web"}
    assert {s["ip"] for s in listed} == {"203.0.113.7", "198.51.100.9"}
    tablet_sid = next(s["id"] for s in (await client.get(
        "/api/v1/me/sessions", headers=tablet)).json()["items"] if s["current"])
    assert (await client.post(f"/api/v1/me/sessions/{tablet_sid}/revoke",
                              headers=phone)).status_code == 204
    assert (await client.get("/api/v1/me", headers=tablet)).status_code == 401
    assert (await client.get("/api/v1/me", headers=phone)).status_code == 200
    assert (await browser_client.get("/me/ledger")).status_code == 200
    assert len((await client.get("/api/v1/me/sessions", headers=phone)).json()["items"]) == 2
    # Someone else's login is not found, whoever asks.
    other = await make_user(village=await make_village())
    other_headers = await api_token(client, other)
    assert (await client.post(f"/api/v1/me/sessions/{tablet_sid}/revoke",
                              headers=other_headers)).status_code == 404
    assert await AuditEvent.filter(tag="accounts:session:end").count() == 1


async def test_settings_page_lists_logins_and_ends_one(client, browser_client):
    resident = await make_user(village=await make_village())
    csrf = await web_login(client, resident)
    await web_login(browser_client, resident)
    page = await client.get("/me/settings")
    assert "我的登录设备" in page.text and "本设备" in page.text
    assert page.text.count('/end"') == 1  # the other browser, not this one
    sid = page.text.split('action="/me/sessions/')[1].split("/end")[0]
    ended = await client.post(f"/me/sessions/{sid}/end", data={"csrf_token": csrf})
    assert ended.status_code == 303
    gone = await browser_client.get("/me/ledger")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    assert (await client.get("/me/ledger")).status_code == 200


async def test_password_change_ends_every_other_login(client, browser_client):
    resident = await make_user(village=await make_village())
    token = await api_token(client, resident)
    csrf = await web_login(client, resident)
    await web_login(browser_client, resident)
    wrong = await client.post("/me/password", data={"csrf_token": csrf,
                                                   "current_password": "nope-nope",
                                                   "new_password": "新的密码12345"})
    assert wrong.status_code == 303
    assert (await client.get("/api/v1/me", headers=token)).status_code == 200
    changed = await client.post("/me/password", data={
        "csrf_token": csrf, "current_password": PASSWORD, "new_password": "新的密码12345"})
    assert changed.status_code == 303
    assert "密码已修改" in (await client.get("/me/settings")).text  # this browser stays in
    assert (await client.get("/api/v1/me", headers=token)).status_code == 401
    gone = await browser_client.get("/me/ledger")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    login = await client.post("/api/v1/auth/token", json={"username": resident.username,
                                                          "password": "新的密码12345"})
    assert login.status_code == 200
    assert await AuditEvent.filter(tag="accounts:password:change").count() == 1
    assert await AuditEvent.filter(tag="accounts:password:fail").count() == 1


async def test_password_change_over_the_api_gives_a_new_token(client):
    resident = await make_user(village=await make_village())
    old = await api_token(client, resident)
    short = await client.post("/api/v1/me/password", headers=old,
                              json={"current_password": PASSWORD, "new_password": "short"})
    assert short.status_code == 422 and short.json()["error"]["field"] == "new_password"
    answer = await client.post("/api/v1/me/password", headers=old, json={
        "current_password": PASSWORD, "new_password": "another-secret-9"})
    assert answer.status_code == 200
    new = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=old)).status_code == 401
    assert (await client.get("/api/v1/me", headers=new)).status_code == 200


async def test_admin_logins_last_a_working_day_residents_a_month(client):
    village = await make_village()
    for role, hours in ((Role.RESIDENT, 30 * 24), (Role.STAFF, 12), (Role.VILLAGE_ADMIN, 12)):
        person = await make_user(role, village)
        await web_login(client, person)
        session = await UserSession.filter(user_id=person.id, kind="web").first()
        lasts = session.expires_at - session.created_at
        assert lasts == timedelta(hours=hours), (role, lasts)
        client.cookies.clear()


async def test_a_browser_login_past_its_lifetime_is_logged_out(app, client, monkeypatch):
    import dataclasses

    from torreya import web

    # The clock is moved rather than waited on: a slow CI machine once took longer than a
    # one-second lifetime between logging in and the first page.
    app.state.settings = dataclasses.replace(app.state.settings, STAFF_SESSION_SECONDS=600)
    staff = await make_user(Role.STAFF, await make_village())
    await web_login(client, staff)
    start = now()
    monkeypatch.setattr(web, "now", lambda: start + timedelta(seconds=590))
    assert (await client.get("/console/")).status_code == 200
    monkeypatch.setattr(web, "now", lambda: start + timedelta(seconds=602))
    page = await client.get("/console/")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


async def test_login_history_shows_the_person_their_logins_and_failures(client):
    resident = await make_user(village=await make_village())
    bad = await client.post("/api/v1/auth/token", json={"username": resident.username,
                                                        "password": "guess"})
    assert bad.status_code == 401
    await web_login(client, resident)
    page = await client.get("/me/settings")
    history = page.text.split('id="history"')[1]
    assert "登录成功" in history and "密码错误" in history and "203.0.113.7" in history
    success = await AuditEvent.filter(tag="accounts:login:success").first()
    assert success.ip == "203.0.113.7" and success.village_id == resident.village_id


# -- step-up for big actions ----------------------------------------------------------------


async def _stale(user) -> None:
    """As if the login and its last confirmation were six minutes ago."""
    past = now() - timedelta(minutes=6)
    await UserSession.filter(user_id=user.id).update(created_at=past, stepped_up_at=past)


async def test_big_adjustment_needs_the_password_again_small_ones_do_not(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    headers = await api_token(client, admin)
    # Just logged in with the password: allowed, as a fresh login is a confirmation.
    fresh = await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                              json={"delta": 1500, "memo": "年度表彰"})
    assert fresh.status_code == 201
    await _stale(admin)
    small = await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                              json={"delta": 1000, "memo": "小额"})
    assert small.status_code == 201
    refused = await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                                json={"delta": -1001, "memo": "大额扣减"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "step_up_required"
    wrong = await client.post("/api/v1/auth/step-up", headers=headers, json={"password": "x"})
    assert wrong.status_code == 401
    assert (await client.post("/api/v1/auth/step-up", headers=headers,
                              json={"password": PASSWORD})).status_code == 204
    allowed = await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                                json={"delta": -1001, "memo": "大额扣减"})
    assert allowed.status_code == 201
    await _stale(admin)  # five minutes on, it is needed again
    again = await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                              json={"delta": 2000, "memo": "再次"})
    assert again.status_code == 403
    assert (await User.get(id=resident.id)).balance == 1500 + 1000 - 1001
    assert await AuditEvent.filter(tag="accounts:step_up:fail").count() == 1


async def test_the_town_sets_the_size_that_needs_confirming(client):
    village = await make_village()
    await Town.filter(id=village.town_id).update(step_up_points=50)
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    headers = await api_token(client, admin)
    await _stale(admin)
    answer = await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                               json={"delta": 51, "memo": "超过本镇设定"})
    assert answer.status_code == 403


async def test_console_adjustment_takes_the_password_in_the_form(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    csrf = await web_login(client, admin)
    await _stale(admin)
    form = {"csrf_token": csrf, "delta": "5000", "memo": "年度表彰", "idem_key": "k1"}
    await client.post(f"/console/users/{resident.id}/adjust", data=form)
    page = await client.get(f"/console/users/{resident.id}")
    assert "此操作需要再次输入密码确认" in page.text
    assert (await User.get(id=resident.id)).balance == 0
    await client.post(f"/console/users/{resident.id}/adjust",
                      data={**form, "idem_key": "k2", "confirm_password": PASSWORD})
    assert (await User.get(id=resident.id)).balance == 5000


async def test_webhook_secrets_need_a_recent_password(app, client):
    import dataclasses

    # No name lookups here: the endpoint is on this machine, as the operator may allow.
    app.state.settings = dataclasses.replace(app.state.settings, WEBHOOK_ALLOW_PRIVATE=True)
    village = await make_village()
    town_admin = await make_user(Role.TOWN_ADMIN, town=await Town.get(id=village.town_id))
    headers = await api_token(client, town_admin)
    await _stale(town_admin)
    body = {"url": "http://127.0.0.1:9/torreya", "events": ["checkin.created"]}
    refused = await client.post(f"/api/v1/towns/{village.town_id}/webhooks", headers=headers,
                                json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "step_up_required"
    await client.post("/api/v1/auth/step-up", headers=headers, json={"password": PASSWORD})
    created = await client.post(f"/api/v1/towns/{village.town_id}/webhooks", headers=headers,
                                json=body)
    assert created.status_code == 201, created.text
    await _stale(town_admin)
    rotated = await client.post(f"/api/v1/webhooks/{created.json()['id']}/rotate-secret",
                                headers=headers)
    assert rotated.status_code == 403


async def test_town_admin_sees_unusual_activity_flagged(client):
    village = await make_village()
    town = await Town.get(id=village.town_id)
    town_admin = await make_user(Role.TOWN_ADMIN, town=town)
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    headers = await api_token(client, admin)
    await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                      json={"delta": 3000, "memo": "大额"})
    for n in range(21):
        await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                          json={"delta": 1, "memo": f"连续{n}"})
    night = now().astimezone(ZoneInfo("Asia/Shanghai")).replace(hour=23)
    await AuditEvent.create(actor=admin, tag="rewards:item:update", subject="reward:1",
                            town_id=town.id, village_id=village.id, data={},
                            created_at=night)
    await web_login(client, town_admin)
    flags = (await client.get("/console/audit")).text.split('id="flags"')[1].split("</section>")[0]
    assert "大额调整" in flags and "一小时内调整次数过多" in flags and "夜间操作" in flags
    client.cookies.clear()
    await web_login(client, admin)  # a village admin sees the log, not the flags
    assert 'id="flags"' not in (await client.get("/console/audit")).text


async def test_town_admin_sets_the_size_with_the_password(client):
    village = await make_village()
    town_admin = await make_user(Role.TOWN_ADMIN, town=await Town.get(id=village.town_id))
    csrf = await web_login(client, town_admin)
    await _stale(town_admin)
    form = {"csrf_token": csrf, "step_up_points": "200"}
    await client.post(f"/console/towns/{village.town_id}/step-up", data=form)
    assert (await Town.get(id=village.town_id)).step_up_points == 1000
    await client.post(f"/console/towns/{village.town_id}/step-up",
                      data={**form, "confirm_password": PASSWORD})
    assert (await Town.get(id=village.town_id)).step_up_points == 200
    assert await AuditEvent.filter(tag="accounts:town:step_up").count() == 1


def test_a_device_is_named_as_people_name_it():
    """Issue 28: not a raw User-Agent; in the person's language (zh-CN by default)."""
    from torreya.accounts.sessions import device_label

    huawei = ("Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00) AppleWebKit/537.36 "
              "Chrome/99.0 Mobile Safari/537.36 MicroMessenger/8.0.47")
    assert device_label(huawei) == "华为手机 · 微信"
    assert device_label("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36"
                        ) == "电脑 · Chrome"
    assert device_label("curl/8.0") == "未知设备" and device_label(None) == "未知设备"
