"""The review queue as the committee uses it: the workbench tile, the queue, a signal's
evidence, dismiss/confirm with a note, the tools a confirmation offers, the town's
thresholds and the weekly counts on the town dashboard."""

from __future__ import annotations

import pytest

from tests.factories import api_token, csrf_from, make_event, make_user, make_village, web_login
from tests.integrity.test_signals import _adjust, _self_checkin
from torreya.integrity import devices
from torreya.models import AuditEvent, Role, Signal, Town, User
from torreya.outbox import worker

pytestmark = pytest.mark.usefixtures("clean_audit")


async def test_the_committee_finds_decides_and_acts_on_a_signal(client):
    village = await make_village(name="古来村")
    admin = await make_user(Role.VILLAGE_ADMIN, village, display_name="周书记")
    clerk = await make_user(Role.VILLAGE_ADMIN, village, display_name="刘会计")
    friend = await make_user(village=village, display_name="赵小燕")
    headers = await api_token(client, clerk)
    for memo in ("帮忙搬桌子", "打扫卫生", "值班"):
        await _adjust(client, headers, friend.id, 20, memo)
    await worker.dispatch()
    token = await web_login(client, admin, next_url="/console/")
    home = await client.get("/console/")
    assert 'id="q-signals"' in home.text
    tile = home.text.split('id="q-signals"')[1].split("</a>")[0]
    assert '<span class="count">1</span>' in tile and "异常提示待查看" in tile
    queue = await client.get(f"/console/villages/{village.id}/signals?status=open")
    assert queue.status_code == 200 and "同一人多次给某位居民加分" in queue.text
    assert "赵小燕" in queue.text
    signal = await Signal.get(kind="adjustments_concentrated")
    page = await client.get(f"/console/signals/{signal.id}")
    assert "刘会计给赵小燕加分3次" in page.text and "帮忙搬桌子" in page.text
    assert "排除：没有问题" in page.text and "确认：确有刷分" in page.text
    done = await client.post(f"/console/signals/{signal.id}/resolve", data={
        "csrf_token": token, "decision": "confirm", "note": "<b>核实为虚报</b>"},
        follow_redirects=True)
    assert "核实为虚报" in done.text and "<b>核实为虚报" not in done.text
    assert "更正赵小燕的积分" in done.text and "结束赵小燕的所有登录" in done.text
    assert (await AuditEvent.get(tag="integrity:signal:confirm")).actor_id == admin.id
    # the tool opens the adjustment form with the memo filled in; nothing changed yet
    tool = await client.get(f"/console/users/{friend.id}?memo=" + "依据异常提示")
    assert 'value="依据异常提示"' in tool.text
    assert (await User.get(id=friend.id)).balance == 60
    again = await client.post(f"/console/signals/{signal.id}/resolve", data={
        "csrf_token": token, "decision": "dismiss"}, follow_redirects=True)
    assert "已经处理过" in again.text
    assert (await Signal.get(id=signal.id)).status == "confirmed"
    assert "异常提示待查看" in (await client.get("/console/")).text


async def test_staff_see_signals_but_only_admins_decide(client):
    village = await make_village()
    clerk = await make_user(Role.VILLAGE_ADMIN, village)
    staff = await make_user(Role.STAFF, village)
    friend = await make_user(village=village)
    for _ in range(3):
        await _adjust(client, await api_token(client, clerk), friend.id, 5)
    await worker.dispatch()
    signal = await Signal.get(kind="adjustments_concentrated")
    token = await web_login(client, staff)
    page = await client.get(f"/console/signals/{signal.id}")
    assert page.status_code == 200 and "由村管理员处理" in page.text
    refused = await client.post(f"/console/signals/{signal.id}/resolve", data={
        "csrf_token": token, "decision": "dismiss"})
    assert refused.status_code == 403
    client.cookies.clear()
    await web_login(client, await make_user(Role.VILLAGE_ADMIN, await make_village()))
    assert (await client.get(f"/console/signals/{signal.id}")).status_code == 404


async def test_a_town_sets_its_thresholds_and_sees_weekly_counts(client, settings):
    village = await make_village()
    town = await Town.get(id=village.town_id)
    town_admin = await make_user(Role.TOWN_ADMIN, town=town)
    token = await web_login(client, town_admin)
    page = await client.get(f"/console/towns/{town.id}")
    assert 'name="device_residents"' in page.text and 'value="5"' in page.text
    form = {"csrf_token": token, "device_residents": "3", "device_minutes": "10",
            "adjustments": "3", "adjustment_days": "30", "photo_distance": "6",
            "outlier_factor": "5", "outlier_top_percent": "1", "outlier_min_residents": "30"}
    bad = await client.post(f"/console/towns/{town.id}/integrity",
                            data={**form, "device_residents": "1"}, follow_redirects=True)
    assert "device_residents" in bad.text
    assert (await Town.get(id=town.id)).integrity is None
    saved = await client.post(f"/console/towns/{town.id}/integrity", data=form)
    assert saved.status_code == 303
    assert (await Town.get(id=town.id)).integrity == {"device_residents": 3}
    # three on one phone are now a signal
    event = await make_event(village, points=5)
    for _ in range(3):
        answer = await _self_checkin(client, settings, event, await make_user(village=village))
        assert answer.status_code == 201
    await devices.flush()
    assert await Signal.filter(kind="one_device_many_residents").count() == 1
    dashboard = await client.get(f"/console/towns/{town.id}/dashboard")
    assert dashboard.status_code == 200
    weekly = dashboard.text.split('id="signals-weekly"')[1].split("</section>")[0]
    assert village.name in weekly and "<td>1</td>" in weekly


async def test_the_device_cookie_is_set_on_the_check_in_page(client, settings):
    from torreya.checkins.codes import poster_token

    village = await make_village()
    event = await make_event(village)
    await web_login(client, await make_user(village=village))
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    page = await client.get(f"/c/{token}")
    assert page.status_code == 200 and csrf_from(page.text)
    cookie = client.cookies.get(devices.COOKIE)
    assert cookie and len(cookie) == 32
