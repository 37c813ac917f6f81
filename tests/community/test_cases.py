"""Reports as cases (issue 35): due times from the town's rules, overdue flipping at the
deadline (a moved clock), escalation exactly once with two workers, departments handling
cases across villages, the reporter's rating (only theirs, once, after resolving),
followers told of each change, duplicates suggested before filing, the follow-up visit —
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.factories import api_token, csrf_from, make_user, make_village, web_login
from torreya.db import now, replaying
from torreya.models import (
    AuditEvent,
    Notification,
    OutboxMessage,
    Report,
    ReportFollower,
    Role,
    SmsMessage,
    Town,
)
from torreya.outbox.worker import dispatch
from torreya.reports.cases import escalate_overdue
from torreya.settings import LOCAL

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _file(client, resident, *, location="村口大桥", category="hazard",
                description="桥上的护栏断了，晚上很危险"):
    answer = await client.post("/api/v1/reports", headers=await api_token(client, resident),
                               json={"category": category, "location": location,
                                     "description": description})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


async def _case(client, user, report_id):
    return await client.get(f"/api/v1/reports/{report_id}",
                            headers=await api_token(client, user))


async def _step(client, staff, report_id, path, body):
    return await client.post(f"/api/v1/reports/{report_id}/{path}",
                             headers=await api_token(client, staff), json=body)


async def test_due_times_follow_the_rules_and_overdue_flips_at_the_deadline(client):
    village = await make_village()
    town = await Town.get(id=village.town_id)
    admin = await make_user(Role.TOWN_ADMIN, town=town)
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village)
    rules = await client.patch(f"/api/v1/towns/{town.id}/case-rules",
                               headers=await api_token(client, admin),
                               json={"ack_hours": 24, "resolve_hours": 72})
    assert rules.status_code == 200 and rules.json() == {"ack_hours": 24, "resolve_hours": 72}
    for bad in ({"ack_hours": 0, "resolve_hours": 72}, {"ack_hours": 48, "resolve_hours": 24},
                {"ack_hours": "24", "resolve_hours": 72}):
        refused = await client.patch(f"/api/v1/towns/{town.id}/case-rules",
                                     headers=await api_token(client, admin), json=bad)
        assert refused.status_code == 422, (bad, refused.text)
    assert (await client.patch(f"/api/v1/towns/{town.id}/case-rules",
                               headers=await api_token(client, staff),
                               json={"ack_hours": 1, "resolve_hours": 2})).status_code == 403

    filed_at = now() - timedelta(days=5)
    with replaying(filed_at):
        report_id = await _file(client, resident)
    report = await Report.get(id=report_id)

    def at(hours: float, minutes: int = 0):
        return replaying(report.created_at + timedelta(hours=hours, minutes=minutes))

    with at(0):
        case = (await _case(client, resident, report_id)).json()
    assert case["ack_due_at"].startswith((report.created_at + timedelta(hours=24))
                                         .isoformat()[:19])
    assert case["resolve_due_at"].startswith((report.created_at + timedelta(hours=72))
                                             .isoformat()[:19])
    with at(23, 59):
        assert (await _case(client, staff, report_id)).json()["overdue"] is False
    with at(24, 1):
        assert (await _case(client, staff, report_id)).json()["overdue"] is True
        listed = (await client.get(f"/api/v1/villages/{village.id}/reports?overdue=true",
                                   headers=await api_token(client, staff))).json()["items"]
        assert [c["id"] for c in listed] == [report_id]
    with at(25):
        assert (await _step(client, staff, report_id, "review",
                            {"decision": "accept", "points": 0})).status_code == 200
        assert (await _case(client, staff, report_id)).json()["overdue"] is False
    with at(71, 59):
        assert (await _case(client, staff, report_id)).json()["overdue"] is False
    with at(72, 1):
        assert (await _case(client, staff, report_id)).json()["overdue"] is True
        # the workbench's first tile counts it, in red
        await web_login(client, staff)
        page = (await client.get("/console/")).text
        assert 'id="q-overdue"' in page and "tile due late" in page
        queue = await client.get(f"/console/villages/{village.id}/reports?overdue=1")
        assert "超期" in queue.text and f'href="/reports/{report_id}"' in queue.text
    with at(73):
        assert (await _step(client, staff, report_id, "progress",
                            {"status": "resolved", "note": "护栏已修好"})).status_code == 200
        assert (await _case(client, staff, report_id)).json()["overdue"] is False


async def test_an_overdue_case_is_escalated_once_even_with_two_workers(client):
    village = await make_village(name="古来村")
    town = await Town.get(id=village.town_id)
    admins = [await make_user(Role.TOWN_ADMIN, town=town, phone=f"+861390000100{n}")
              for n in range(2)]
    resident = await make_user(village=village)
    with replaying(now() - timedelta(hours=49)):  # the default: 48 hours to accept
        late_id = await _file(client, resident)
    await _file(client, await make_user(village=village), location="村委会")  # on time

    done = await asyncio.gather(escalate_overdue(), escalate_overdue())
    assert sum(done) == 1
    assert await escalate_overdue() == 0
    messages = await OutboxMessage.filter(event_type="report.overdue")
    assert len(messages) == 1 and messages[0].payload["id"] == late_id
    assert messages[0].payload["deadline"] == "accept"
    told = await Notification.filter(kind="report_overdue").order_by("user_id")
    assert [n.user_id for n in told] == [a.id for a in admins]
    assert told[0].link == f"/reports/{late_id}"
    texts = await SmsMessage.filter(user_id__in=[a.id for a in admins])
    assert len(texts) == 2 and "古来村" in texts[0].text
    assert (await Report.get(id=late_id)).escalated_at is not None

    # the town's own queue lists it; the admin opens the case
    await web_login(client, admins[0])
    queue = await client.get(f"/console/towns/{town.id}/reports")
    assert queue.status_code == 200 and f'href="/reports/{late_id}"' in queue.text
    case = await client.get(f"/reports/{late_id}")
    assert case.status_code == 200 and "上报至镇" in case.text and "已超期" in case.text


async def test_departments_handle_cases_across_villages(client):
    first = await make_village()
    town = await Town.get(id=first.town_id)
    second = await make_village(town)
    admin = await make_user(Role.TOWN_ADMIN, town=town)
    staff = await make_user(Role.STAFF, first)
    officer = await make_user(Role.STAFF, second, display_name="派出所民警")
    reporter = await make_user(village=first)
    headers = await api_token(client, admin)
    made = await client.post(f"/api/v1/towns/{town.id}/departments", headers=headers,
                             json={"name": "古来派出所"})
    assert made.status_code == 201
    department = made.json()["id"]
    again = await client.post(f"/api/v1/towns/{town.id}/departments", headers=headers,
                              json={"name": "古来派出所"})
    assert again.status_code == 409
    joined = await client.post(f"/api/v1/departments/{department}/members", headers=headers,
                               json={"user_id": officer.id})
    assert joined.status_code == 201
    outsider = await make_user(Role.STAFF, await make_village())
    assert (await client.post(f"/api/v1/departments/{department}/members", headers=headers,
                              json={"user_id": outsider.id})).status_code == 404

    report_id = await _file(client, reporter, category="fraud", location="村东小卖部",
                            description="有人冒充公安打电话要转账")
    # the officer serves another village: nothing of this case until it is sent to them
    assert (await _case(client, officer, report_id)).status_code == 404
    other_town = await make_user(Role.STAFF, await make_village())
    assert (await _step(client, other_town, report_id, "assign",
                        {"department_id": department})).status_code == 404
    sent = await _step(client, staff, report_id, "assign", {"department_id": department})
    assert sent.status_code == 200 and sent.json()["department_id"] == department
    mine = await client.get(f"/api/v1/departments/{department}/reports",
                            headers=await api_token(client, officer))
    assert [c["id"] for c in mine.json()["items"]] == [report_id]
    assert (await _case(client, officer, report_id)).json()["department_id"] == department
    assert (await _step(client, staff, report_id, "review",
                        {"decision": "accept", "points": 0})).status_code == 200
    handled = await _step(client, officer, report_id, "progress",
                          {"status": "resolved", "note": "已联系当事人，未造成损失"})
    assert handled.status_code == 200, handled.text
    # the reporter's timeline shows the department's step
    await web_login(client, reporter)
    page = (await client.get(f"/reports/{report_id}")).text
    assert "古来派出所" in page and "已联系当事人" in page
    # and the department's queue page
    client.cookies.clear()
    await web_login(client, officer)
    console = (await client.get("/console/")).text
    assert f'href="/console/departments/{department}"' in console
    queue = await client.get(f"/console/departments/{department}")
    assert queue.status_code == 200 and f'href="/reports/{report_id}"' in queue.text


async def test_only_the_reporter_rates_once_after_resolving(client):
    village = await make_village()
    town = await Town.get(id=village.town_id)
    staff = await make_user(Role.STAFF, village)
    reporter = await make_user(village=village)
    neighbour = await make_user(village=village)
    report_id = await _file(client, reporter)
    rating = {"stars": 5, "comment": "修得很快"}
    early = await _step(client, reporter, report_id, "rating", rating)
    assert early.status_code == 409 and early.json()["error"]["code"] == "invalid_state"
    await _step(client, staff, report_id, "review", {"decision": "accept", "points": 0})
    await _step(client, staff, report_id, "progress", {"status": "resolved", "note": ""})
    assert (await _step(client, staff, report_id, "rating", rating)).status_code == 403
    assert (await _step(client, neighbour, report_id, "rating", rating)).status_code == 404
    assert (await _step(client, reporter, report_id, "rating",
                        {"stars": 6})).status_code == 422
    done = await _step(client, reporter, report_id, "rating", rating)
    assert done.status_code == 201 and done.json() == rating
    twice = await _step(client, reporter, report_id, "rating", {"stars": 1})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_rated"
    assert (await Report.get(id=report_id)).rating == 5

    # a second case, rated 2: the town's dashboard says 50 %
    other = await _file(client, neighbour, location="村委会")
    await _step(client, staff, other, "review", {"decision": "accept", "points": 0})
    await _step(client, staff, other, "progress", {"status": "resolved", "note": ""})
    await _step(client, neighbour, other, "rating", {"stars": 2})
    admin = await make_user(Role.TOWN_ADMIN, town=town)
    await web_login(client, admin)
    board = (await client.get(f"/console/towns/{town.id}/dashboard")).text
    assert 'id="satisfaction"' in board and "<td>50.0</td>" in board
    month = now().astimezone(LOCAL).strftime("%Y-%m")
    report = (await client.get(f"/console/towns/{town.id}/report.csv?month={month}")).text
    assert f"{village.name},2,1,50.0,3.5" in report


async def test_followers_are_told_of_each_change_and_duplicates_are_suggested(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    reporter = await make_user(village=village)
    neighbour = await make_user(village=village, display_name="李建国")
    stranger = await make_user(village=await make_village())
    report_id = await _file(client, reporter, location="村口大桥")

    # before filing the same, the form suggests following instead
    await web_login(client, neighbour)
    form = await client.get("/reports/new")
    suggested = await client.post("/reports/new", data={
        "csrf_token": csrf_from(form.text), "category": "hazard", "location": "村口桥",
        "description": "桥的护栏坏了"})
    assert suggested.status_code == 200 and 'id="similar"' in suggested.text
    assert f'action="/reports/{report_id}/follow"' in suggested.text
    assert "晚上很危险" not in suggested.text  # the other report's words are not shown
    similar = await client.get(f"/api/v1/villages/{village.id}/reports/similar",
                               params={"category": "hazard", "location": "村口桥"},
                               headers=await api_token(client, neighbour))
    assert [c["id"] for c in similar.json()["items"]] == [report_id]
    assert "description" not in similar.json()["items"][0]
    followed = await client.post(f"/reports/{report_id}/follow",
                                 data={"csrf_token": csrf_from(suggested.text)})
    assert followed.status_code == 303
    assert await ReportFollower.filter(report_id=report_id, user_id=neighbour.id).exists()
    view = await client.get(f"/reports/{report_id}")
    assert view.status_code == 200 and "晚上很危险" not in view.text  # not the reporter's words
    assert (await client.get(f"/reports/{report_id}/photo")).status_code in (403, 404)
    # filing anyway works
    anyway = await client.post("/reports/new", data={
        "csrf_token": csrf_from(form.text), "category": "hazard", "location": "村口桥",
        "description": "桥的护栏坏了", "file_anyway": "1"})
    assert anyway.status_code == 303

    api = await client.post(f"/api/v1/reports/{report_id}/follow",
                            headers=await api_token(client, neighbour))
    assert api.status_code == 201  # following twice is still following
    assert (await client.post(f"/api/v1/reports/{report_id}/follow",
                              headers=await api_token(client, reporter))).status_code == 409
    assert (await client.post(f"/api/v1/reports/{report_id}/follow",
                              headers=await api_token(client, stranger))).status_code == 404

    await _step(client, staff, report_id, "review", {"decision": "accept", "points": 0})
    await _step(client, staff, report_id, "progress", {"status": "in_progress", "note": ""})
    await dispatch()
    told = await Notification.filter(user_id=neighbour.id, kind="report_followed").order_by(
        "id")
    assert [n.params["status"] for n in told] == ["accepted", "in_progress"]
    assert all(n.link == f"/reports/{report_id}" for n in told)
    assert await Notification.filter(user_id=reporter.id).count() == 2


async def test_the_follow_up_visit_closes_the_loop(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    reporter = await make_user(village=village)
    report_id = await _file(client, reporter)
    today = now().astimezone(LOCAL).date().isoformat()
    early = await _step(client, staff, report_id, "visit", {"date": today, "note": "回访"})
    assert early.status_code == 409
    await _step(client, staff, report_id, "review", {"decision": "accept", "points": 0})
    await _step(client, staff, report_id, "progress", {"status": "resolved", "note": ""})
    assert (await _step(client, reporter, report_id, "visit",
                        {"date": today, "note": "x"})).status_code == 403
    bad = await _step(client, staff, report_id, "visit", {"date": "2026-02-30", "note": "x"})
    assert bad.status_code == 422
    done = await _step(client, staff, report_id, "visit",
                       {"date": today, "note": "群众对处理结果满意"})
    assert done.status_code == 200 and done.json()["visited_on"] == today
    assert await AuditEvent.filter(tag="reports:report:visit").count() == 1
    await web_login(client, reporter)
    page = (await client.get(f"/reports/{report_id}")).text
    assert "群众对处理结果满意" in page and "回访" in page
