"""Groups, routes, patrols: scans refused by name, approval pays once, within caps."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.factories import api_token, make_user, make_village, web_login
from torreya.db import now
from torreya.models import (
    EarningRule,
    GroupMember,
    LedgerEntry,
    Patrol,
    PatrolParticipant,
    PatrolScan,
    PatrolStatus,
    Role,
    Town,
)
from torreya.patrols.service import auto_submit_stale

pytestmark = pytest.mark.usefixtures("clean_audit")


class Crew:
    """A town with a Red Maple group: admin, leader, two members, a route of 4 plates."""

    async def build(self, client):
        self.village = await make_village()
        self.town = await Town.get(id=self.village.town_id)
        self.town_admin = await make_user(Role.TOWN_ADMIN, town=self.town)
        self.admin = await make_user(Role.VILLAGE_ADMIN, self.village)
        self.leader = await make_user(village=self.village, display_name="陈队长")
        self.members = [await make_user(village=self.village) for _ in range(2)]
        self.h_town = await api_token(client, self.town_admin)
        group = await client.post(f"/api/v1/towns/{self.town.id}/groups", headers=self.h_town,
                                  json={"name": "红枫义警"})
        assert group.status_code == 201
        self.group_id = group.json()["id"]
        for person, role in [(self.leader, "leader")] + [(m, "member") for m in self.members]:
            added = await client.post(f"/api/v1/groups/{self.group_id}/members",
                                      headers=self.h_town,
                                      json={"user_id": person.id, "role": role})
            assert added.status_code == 201
        self.h_leader = await api_token(client, self.leader)
        route = await client.post(f"/api/v1/groups/{self.group_id}/routes",
                                  headers=self.h_leader,
                                  json={"name": "夜巡一线", "min_checkpoints": 3,
                                        "checkpoints": ["村委会", "古来桥", "香榧林", "小学"]})
        assert route.status_code == 201
        self.route = route.json()
        self.codes = [c["code"] for c in self.route["checkpoints"]]
        return self

    async def start(self, client):
        started = await client.post(f"/api/v1/groups/{self.group_id}/patrols",
                                    headers=self.h_leader, json={"route_id": self.route["id"]})
        assert started.status_code == 201 and started.json()["status"] == "active"
        return started.json()


async def _scan(client, headers, patrol_id, code):
    return await client.post(f"/api/v1/patrols/{patrol_id}/scans", headers=headers,
                             json={"code": code, "latitude": 29.6, "longitude": 120.8})


async def _walk(client, crew, patrol, *, plates=3, minutes=90):
    h_member = await api_token(client, crew.members[0])
    joined = await client.post(f"/api/v1/patrols/{patrol['id']}/participants", headers=h_member,
                               json={"join_code": patrol["join_code"]})
    assert joined.status_code == 201
    for code in crew.codes[:plates]:
        assert (await _scan(client, h_member, patrol["id"], code)).status_code == 201
    await Patrol.filter(id=patrol["id"]).update(started_at=now() - timedelta(minutes=minutes))
    finished = await client.post(f"/api/v1/patrols/{patrol['id']}/finish", headers=crew.h_leader)
    assert finished.status_code == 200
    return finished.json(), h_member


async def test_full_patrol_pays_duration_times_rate(client):
    crew = await Crew().build(client)
    await EarningRule.filter(town_id=crew.town.id, kind="patrol").update(points=20, cap_day=None)
    patrol = await crew.start(client)
    finished, _ = await _walk(client, crew, patrol, minutes=90)
    assert finished["status"] == "submitted" and finished["duration_minutes"] == 90
    approved = await client.post(f"/api/v1/patrols/{patrol['id']}/approve",
                                 headers=await api_token(client, crew.admin))
    assert approved.status_code == 200
    body = approved.json()
    assert body["status"] == "approved"
    assert sorted((a["user_id"], a["points"]) for a in body["awards"]) == sorted(
        [(crew.leader.id, 30), (crew.members[0].id, 30)])
    await crew.members[0].refresh_from_db()
    assert crew.members[0].balance == 30


async def test_double_and_concurrent_approvals_pay_once(client):
    crew = await Crew().build(client)
    patrol = await crew.start(client)
    await _walk(client, crew, patrol)
    headers = await api_token(client, crew.admin)
    responses = await asyncio.gather(*[
        client.post(f"/api/v1/patrols/{patrol['id']}/approve", headers=headers)
        for _ in range(8)])
    assert sorted(r.status_code for r in responses) == [200] + [409] * 7
    again = await client.post(f"/api/v1/patrols/{patrol['id']}/approve", headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    assert await LedgerEntry.filter(kind="patrol").count() == 2


async def test_too_few_checkpoints_cannot_be_approved_but_can_be_rejected(client):
    crew = await Crew().build(client)
    patrol = await crew.start(client)
    await _walk(client, crew, patrol, plates=2)
    headers = await api_token(client, crew.admin)
    refused = await client.post(f"/api/v1/patrols/{patrol['id']}/approve", headers=headers)
    assert refused.status_code == 409 and "2" in refused.json()["error"]["message"]
    rejected = await client.post(f"/api/v1/patrols/{patrol['id']}/reject", headers=headers,
                                 json={"reason": "巡更点不足"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert await LedgerEntry.filter(kind="patrol").count() == 0


async def test_daily_cap_limits_the_award(client):
    crew = await Crew().build(client)
    await EarningRule.filter(town_id=crew.town.id, kind="patrol").update(points=20, cap_day=25)
    patrol = await crew.start(client)
    await _walk(client, crew, patrol, minutes=180)
    body = (await client.post(f"/api/v1/patrols/{patrol['id']}/approve",
                              headers=await api_token(client, crew.admin))).json()
    assert {a["points"] for a in body["awards"]} == {25}


async def test_scans_refused_by_name(client, settings):
    crew = await Crew().build(client)
    patrol = await crew.start(client)
    outsider = await make_user(village=crew.village)
    h_out = await api_token(client, outsider)
    not_member = await client.post(f"/api/v1/patrols/{patrol['id']}/participants",
                                   headers=h_out, json={"join_code": patrol["join_code"]})
    assert not_member.status_code == 403
    not_joined = await _scan(client, h_out, patrol["id"], crew.codes[0])
    assert not_joined.status_code == 403
    h_member = await api_token(client, crew.members[1])
    wrong_code = await client.post(f"/api/v1/patrols/{patrol['id']}/participants",
                                   headers=h_member, json={"join_code": "ZZZZZZ"})
    assert wrong_code.status_code == 400
    await client.post(f"/api/v1/patrols/{patrol['id']}/participants", headers=h_member,
                      json={"join_code": patrol["join_code"]})
    forged = await _scan(client, h_member, patrol["id"], "C1-AAAAAAAA")
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_token"
    other_route = await client.post(f"/api/v1/groups/{crew.group_id}/routes",
                                    headers=crew.h_leader,
                                    json={"name": "白天线", "min_checkpoints": 1,
                                          "checkpoints": ["菜场"]})
    foreign_plate = other_route.json()["checkpoints"][0]["code"]
    off_route = await _scan(client, h_member, patrol["id"], foreign_plate)
    assert off_route.status_code == 400
    ok = await _scan(client, h_member, patrol["id"], crew.codes[2])
    repeat = await _scan(client, h_member, patrol["id"], crew.codes[2])
    assert ok.status_code == 201 and repeat.json()["repeated"] is True
    early = await _scan(client, h_member, patrol["id"], crew.codes[0])
    assert early.json()["out_of_order"] is True
    await client.post(f"/api/v1/patrols/{patrol['id']}/finish", headers=crew.h_leader)
    finished = await _scan(client, h_member, patrol["id"], crew.codes[3])
    assert finished.status_code == 409
    assert "out_of_order" in (await Patrol.get(id=patrol["id"])).flags
    assert await PatrolScan.filter(patrol_id=patrol["id"]).count() == 2


async def test_role_boundaries(client):
    crew = await Crew().build(client)
    patrol = await crew.start(client)
    await _walk(client, crew, patrol)
    h_member = await api_token(client, crew.members[1])
    assert (await client.post(f"/api/v1/groups/{crew.group_id}/patrols", headers=h_member,
                              json={"route_id": crew.route["id"]})).status_code == 403
    assert (await client.post(f"/api/v1/patrols/{patrol['id']}/approve",
                              headers=crew.h_leader)).status_code == 403
    foreign_admin = await make_user(Role.VILLAGE_ADMIN, await make_village())
    assert (await client.post(f"/api/v1/patrols/{patrol['id']}/approve",
                              headers=await api_token(client, foreign_admin))
            ).status_code == 404
    staff = await make_user(Role.STAFF, crew.village)
    assert (await client.post(f"/api/v1/patrols/{patrol['id']}/approve",
                              headers=await api_token(client, staff))).status_code == 403
    other_town_admin = await make_user(Role.TOWN_ADMIN)
    assert (await client.post(f"/api/v1/towns/{crew.town.id}/groups",
                              headers=await api_token(client, other_town_admin),
                              json={"name": "x"})).status_code == 404


async def test_stale_patrols_are_auto_submitted_and_flagged(client):
    crew = await Crew().build(client)
    patrol = await crew.start(client)
    await Patrol.filter(id=patrol["id"]).update(started_at=now() - timedelta(hours=10))
    assert await auto_submit_stale() == 1
    stale = await Patrol.get(id=patrol["id"])
    assert stale.status == PatrolStatus.SUBMITTED and "auto_submitted" in stale.flags
    assert stale.duration_minutes == 8 * 60


async def test_invite_link_and_leader_approval(client):
    crew = await Crew().build(client)
    newcomer = await make_user(village=crew.village)
    from torreya.models import Group

    group = await Group.get(id=crew.group_id)
    token = await web_login(client, newcomer)
    asked = await client.post(f"/groups/join/{group.invite_code}", data={"csrf_token": token})
    assert asked.status_code == 303
    member = await GroupMember.get(group_id=group.id, user_id=newcomer.id)
    assert not member.approved
    client.cookies.clear()
    token = await web_login(client, crew.leader)
    await client.post(f"/groups/{group.id}/members/{newcomer.id}/approve",
                      data={"csrf_token": token})
    assert (await GroupMember.get(id=member.id)).approved


async def test_plate_sheet_and_group_page(client):
    crew = await Crew().build(client)
    await web_login(client, crew.leader)
    sheet = await client.get(f"/routes/{crew.route['id']}/sheet")
    assert sheet.status_code == 200 and sheet.text.count("<svg") == 4 and "古来桥" in sheet.text
    page = await client.get(f"/groups/{crew.group_id}")
    assert "红枫义警" in page.text and "开始：夜巡一线" in page.text


async def test_approved_patrol_tells_each_member_their_points(client):
    from torreya.models import Notification
    from torreya.outbox import worker

    crew = await Crew().build(client)
    await EarningRule.filter(town_id=crew.town.id, kind="patrol").update(points=20, cap_day=None)
    patrol = await crew.start(client)
    await _walk(client, crew, patrol, minutes=90)
    await client.post(f"/api/v1/patrols/{patrol['id']}/approve",
                      headers=await api_token(client, crew.admin))
    await worker.dispatch()
    for person in (crew.leader, crew.members[0]):
        [item] = (await client.get("/api/v1/me/notifications",
                                   headers=await api_token(client, person))).json()["items"]
        assert item["text"] == "您参加的夜巡一线巡逻已审核通过，奖励30香榧币。"
    # The member who did not join was not on the patrol and is told nothing.
    assert not await Notification.filter(user_id=crew.members[1].id).exists()


async def test_a_join_code_in_any_script_is_refused_in_the_callers_language(client):
    """A non-ASCII code was a 500 (compare_digest refuses non-ASCII text); an ASCII one was
    refused in English whatever the caller's language."""
    crew = await Crew().build(client)
    patrol = await crew.start(client)
    member = await api_token(client, crew.members[0])
    for code, language, message in [("巡逻码", "zh-CN", "这个入队码不对。"),
                                    ("WRONG1", "zh-CN", "这个入队码不对。"),
                                    ("WRONG1", "en", "This join code is not valid.")]:
        answer = await client.post(f"/api/v1/patrols/{patrol['id']}/participants",
                                   headers={**member, "Accept-Language": language},
                                   json={"join_code": code})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["message"] == message
    assert await PatrolParticipant.filter(patrol_id=patrol["id"], user_id=crew.members[0].id
                                          ).count() == 0


async def test_another_towns_resident_does_not_see_a_patrols_join_page(client):
    """Issue 26: the join page named the route to a resident of any town."""
    crew = await Crew().build(client)
    patrol = await crew.start(client)
    await web_login(client, crew.members[0])
    own = await client.get(f"/patrols/{patrol['id']}/join?code={patrol['join_code']}")
    assert own.status_code == 200 and "夜巡一线" in own.text
    client.cookies.clear()
    await web_login(client, await make_user(village=await make_village()))
    other = await client.get(f"/patrols/{patrol['id']}/join?code={patrol['join_code']}")
    assert other.status_code == 404 and "夜巡一线" not in other.text
