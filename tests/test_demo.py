"""`torreya demo` at its default size: half a year of life that every chart and queue shows."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.factories import csrf_from
from tests.test_cli import run
from torreya.db import now
from torreya.demo import PASSWORD
from torreya.hours import service as hours_service
from torreya.models import (
    CheckinRefusal,
    Patrol,
    PatrolStatus,
    PledgeSignature,
    Redemption,
    RedemptionStatus,
    Registration,
    Report,
    ReportStatus,
    ReportUpdate,
    StockMovement,
    Town,
    User,
)

CHART = re.compile(r'<figcaption>(.*?)</figcaption>(.*?)</figure>', re.S)
VALUE = re.compile(r'font-size="12">([\d.]+)</text>')


async def login(client, username: str) -> None:
    client.cookies.clear()
    token = csrf_from((await client.get("/login")).text)
    response = await client.post("/login", data={"username": username, "password": PASSWORD,
                                                 "csrf_token": token, "next": "/"})
    assert response.status_code == 303, response.text


async def test_the_demo_is_lived_in(tmp_path, db_url, client):
    made = run(["demo"], tmp_path, db_url)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "120 residents and 27 weeks of their life" in made.stdout
    audit = run(["audit"], tmp_path, db_url)
    assert audit.returncode == 0 and "clean" in audit.stdout, audit.stdout

    # every state a committee meets, from the services that make them
    assert set(await Report.all().values_list("status", flat=True)) == set(ReportStatus)
    assert set(await Redemption.all().values_list("status", flat=True)) == set(
        RedemptionStatus)
    assert {PatrolStatus.APPROVED, PatrolStatus.REJECTED, PatrolStatus.SUBMITTED} <= set(
        await Patrol.all().values_list("status", flat=True))
    assert await PledgeSignature.all().count() > 30
    assert await CheckinRefusal.all().count() > 0
    assert await Registration.filter(status="pending").count() == 3
    # history is dated when it happened, not when the demo ran
    first_report = await Report.all().order_by("created_at").first()
    steps = await ReportUpdate.filter(report_id=first_report.id).order_by("id")
    assert steps[0].created_at == first_report.created_at
    assert [s.created_at for s in steps] == sorted(s.created_at for s in steps)
    assert len({m.created_at.date() for m in await StockMovement.all()}) > 60

    town = await Town.get(code="gulai")
    await login(client, "gulai_admin")
    page = await client.get(f"/console/towns/{town.id}/dashboard")
    assert page.status_code == 200
    charts = {title: [float(v) for v in VALUE.findall(svg)]
              for title, svg in CHART.findall(page.text)}
    assert len(charts) == 6, charts
    for title, values in charts.items():
        # six months; all but the current one (which may be a day old) have figures
        assert len(values) == 6 and all(v > 0 for v in values[:-1]), (title, values)

    # the clerk of 古来村 finds something waiting in every queue
    await login(client, "gulaicun_staff")
    work = (await client.get("/console/")).text
    counts = dict(re.findall(r'id="q-(\w+)"[^>]*>\s*<span class="count">(\d+)</span>', work))
    # (patrols are approved by the village admin: not a tile of the clerk's, issue 28)
    assert set(counts) == {"overdue", "reports", "registrations", "vouchers", "low_stock",
                           "refused", "signals"}, counts
    assert all(int(n) > 0 for n in counts.values()), str(counts)
    assert re.search(r'<span class="checkins">已签到[1-9]\d*人</span>', work), work

    # the shop shows the goods as they look (issue 28)
    await login(client, "gulaicun_r001")
    shop = (await client.get("/shop")).text
    pictures = re.findall(r'<img class="shop-img" src="(/rewards/\d+/image)"', shop)
    assert len(pictures) >= 6, shop
    picture = await client.get(pictures[0])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"

    # families live in households, rated last year; the board and the 红榜 show them (33)
    home = (await client.get("/me/household")).text
    assert "（户主）" in home and '<span class="stat-num" id="points-year">' in home
    resident = await User.get(username="gulaicun_r001")
    board = (await client.get(f"/api/v1/villages/{resident.village_id}/household-leaderboard"
                              "?period=year")).json()
    assert len(board["items"]) >= 5 and all(item["stars"] for item in board["items"])
    assert all("*" in item["name"] for item in board["items"])
    await login(client, "gulaicun_admin")
    roll = (await client.get(f"/console/villages/{resident.village_id}/honour-roll"
                             f"?year={now().year - 1}")).text
    assert roll.count('class="honour-name"') >= 5
    # and an elder's passbook prints (积分存折)
    book = (await client.get(f"/console/users/{resident.id}/passbook")).text
    assert "积分存折" in book and book.count("<tr>") >= 3
    # reporters rated the handling of resolved reports: the town's 满意率 (35)
    assert await Report.filter(rating__not_isnull=True, visited_on__not_isnull=True).exists()
    await login(client, "gulai_admin")
    town_board = (await client.get(f"/console/towns/{resident.town_id}/dashboard")).text
    assert 'id="satisfaction"' in town_board and re.search(r"<td>\d+\.\d</td>", town_board)
    await login(client, "gulaicun_admin")
    # volunteers have hours: patrols and the events that record leaving (34)
    year_ago, today = (now() - timedelta(days=365)).date(), now().date()
    served = await hours_service.village_hours([resident.village_id], year_ago, today)
    kinds = {item.kind for person, _m, _n in served
             for item in await hours_service.items_for(person, year_ago, today)}
    assert len(served) >= 3 and kinds == {"patrol", "event"}, (served, kinds)
    page = (await client.get(f"/console/villages/{resident.village_id}/hours")).text
    assert "小时" in page and (now().month == 1 or served[0][0].display_name in page)
