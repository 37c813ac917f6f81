"""The console's first page: what needs me today, counted per queue, one tap to each."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.factories import api_token, make_event, make_user, make_village, web_login
from torreya.models import CheckinRefusal, Reward, Role, Town

pytestmark = pytest.mark.usefixtures("clean_audit")


def _count(html: str, key: str) -> int:
    found = re.search(rf'id="q-{key}"[^>]*>\s*<span class="count">(\d+)</span>', html)
    assert found, key
    return int(found.group(1))


async def test_the_clerk_sees_the_report_queue_change(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village)
    await web_login(client, staff)
    page = (await client.get("/console/")).text
    assert _count(page, "reports") == 0
    assert f'href="/console/villages/{village.id}/reports?status=submitted"' in page
    filed = await client.post("/api/v1/reports", headers=await api_token(client, resident),
                              json={"category": "hazard", "description": "路灯坏了",
                                    "location": "村口"})
    assert filed.status_code == 201
    assert _count((await client.get("/console/")).text, "reports") == 1
    reviewed = await client.post(f"/api/v1/reports/{filed.json()['id']}/review",
                                 headers=await api_token(client, staff),
                                 json={"decision": "accept", "points": 5, "note": ""})
    assert reviewed.status_code == 200
    assert _count((await client.get("/console/")).text, "reports") == 0


async def test_vouchers_stock_refusals_and_events_are_counted(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    headers = await api_token(client, admin)
    await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                      json={"delta": 100, "memo": "初始"})
    reward = (await client.post(f"/api/v1/villages/{village.id}/rewards", headers=headers,
                                json={"name": "大米", "cost": 10, "stock": 6})).json()
    await Reward.create(village_id=village.id, town_id=village.town_id, name="不限量",
                        cost=1, stock=None)
    redeemed = await client.post("/api/v1/redemptions", headers=await api_token(client, resident),
                                 json={"reward_id": reward["id"]})
    assert redeemed.status_code == 201
    await CheckinRefusal.create(village_id=village.id, user=resident, method="token",
                                reason="token_expired")
    await make_event(village, title="今天的宣传", opens_in=timedelta(hours=-1))
    await make_event(village, title="下周以后", opens_in=timedelta(days=9))
    await web_login(client, admin)
    page = (await client.get("/console/")).text
    assert _count(page, "vouchers") == 1
    assert _count(page, "low_stock") == 1  # 5 left of 大米; the unlimited item is not low
    assert _count(page, "refused") == 1
    events = page.split('id="events"')[1]
    assert "今天的宣传" in events and "正在签到" in events and "下周以后" not in events


async def test_the_town_admin_sees_every_village_in_a_sortable_table(client):
    town_village = await make_village()
    town = await Town.get(id=town_village.town_id)
    quiet = await make_village(town, name="安静村")
    busy = await make_village(town, name="忙碌村")
    for village, n in ((busy, 2), (quiet, 0)):
        resident = await make_user(village=village)
        for _ in range(n):
            await client.post("/api/v1/reports", headers=await api_token(client, resident),
                              json={"category": "hazard", "description": "积水",
                                    "location": ""})
    elsewhere = await make_village(name="别镇的村")
    await web_login(client, await make_user(Role.TOWN_ADMIN, town=town))
    page = (await client.get("/console/?sort=reports")).text
    table = page.split('id="workbench"')[1].split("</table>")[0]
    assert table.index("忙碌村") < table.index("安静村")
    assert elsewhere.name not in table
    queue = f"/console/villages/{busy.id}/reports?status=submitted"
    assert f'href="{queue}"><strong>2</strong>' in table
