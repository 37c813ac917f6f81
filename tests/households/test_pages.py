"""The households' screens: the clerk adds a household and its members by name, phone or
username, rates it, prints the 红榜; the resident sees 我家."""

from __future__ import annotations

import pytest

from tests.factories import csrf_from, make_user, make_village, web_login
from tests.households.test_households import _check_in
from torreya.db import now
from torreya.models import Household, HouseholdMember, HouseholdRating, Role

pytestmark = pytest.mark.usefixtures("clean_audit")


async def test_a_clerk_builds_a_household_and_rates_it(client, settings):
    village = await make_village(name="古来村")
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    await make_user(village=village, display_name="赵建国")
    wife = await make_user(village=village, display_name="钱秀英", phone="+8613900001111")
    twin_a = await make_user(village=village, display_name="孙明")
    await make_user(village=village, display_name="孙明")
    token = await web_login(client, admin)
    listing = await client.get(f"/console/villages/{village.id}/households")
    assert listing.status_code == 200 and "还没有登记户" in listing.text
    made = await client.post(f"/console/villages/{village.id}/households/new", data={
        "csrf_token": token, "name": "赵建国家", "head": "赵建国"}, follow_redirects=True)
    assert "已新建“赵建国家”" in made.text and "（户主）" in made.text
    household = await Household.get(name="赵建国家")
    page = f"/console/households/{household.id}"
    by_phone = await client.post(f"{page}/members", data={
        "csrf_token": token, "person": "139 0000 1111"}, follow_redirects=True)
    assert "钱秀英" in by_phone.text
    twins = await client.post(f"{page}/members", data={
        "csrf_token": token, "person": "孙明"}, follow_redirects=True)
    assert "有几位居民都叫孙明，请填写手机号" in twins.text
    by_username = await client.post(f"{page}/members", data={
        "csrf_token": token, "person": twin_a.username}, follow_redirects=True)
    assert "孙明" in by_username.text.split('id="members"')[1].split("</ul>")[0]
    removed = await client.post(f"{page}/members/{twin_a.id}/remove",
                                data={"csrf_token": token}, follow_redirects=True)
    assert "已移出本户" in removed.text
    await _check_in(client, settings, village, wife, 15)
    client.cookies.clear()
    token = await web_login(client, admin)
    shown = await client.get(page)
    assert '<span class="stat-num" id="points-year">15</span>' in shown.text
    rated = await client.post(f"{page}/ratings", data={
        "csrf_token": token, "year": str(now().year), "stars": "4", "note": "无矛盾纠纷"},
        follow_redirects=True)
    assert "已评定" in rated.text and "★★★★☆" in rated.text
    assert 'name="stars"' not in rated.text  # one rating a year
    again = await client.post(f"{page}/ratings", data={
        "csrf_token": token, "year": str(now().year), "stars": "5"}, follow_redirects=True)
    assert "已经评定过" in again.text
    assert (await HouseholdRating.get(household_id=household.id)).stars == 4
    roll = await client.get(f"/console/villages/{village.id}/honour-roll?year={now().year}")
    assert roll.status_code == 200
    for bad in ("99999999", "明年"):
        wrong = await client.get(f"/console/villages/{village.id}/honour-roll?year={bad}")
        assert wrong.status_code == 422 and "year" in wrong.text
    honour = roll.text.split('id="honour"')[1].split("</ol>")[0]
    assert "赵建国家" in honour and "★★★★" in honour
    # the resident sees 我家 from the home page
    client.cookies.clear()
    await web_login(client, wife)
    home = await client.get("/")
    assert 'href="/me/household"' in home.text
    mine = await client.get("/me/household")
    assert "赵建国家" in mine.text
    assert '<span class="stat-num" id="points-year">15</span>' in mine.text
    client.cookies.clear()
    await web_login(client, twin_a)
    assert "您还没有登记到户" in (await client.get("/me/household")).text


async def test_staff_see_households_but_do_not_change_them(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    head = await make_user(village=village)
    household = await Household.create(town_id=village.town_id, village=village, name="周家",
                                       head=head)
    token = await web_login(client, staff)
    page = await client.get(f"/console/households/{household.id}")
    assert page.status_code == 200 and 'name="person"' not in page.text
    refused = await client.post(f"/console/households/{household.id}/ratings", data={
        "csrf_token": token, "year": "2025", "stars": "3"})
    assert refused.status_code == 403
    assert csrf_from(page.text)



async def test_the_big_screen_and_the_monthly_report_show_households(client, settings):
    import csv
    import io

    from tests.factories import api_token

    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    h_admin = await api_token(client, admin)
    for name, points in (("赵建国家", 30), ("钱秀英家", 50)):
        head = await make_user(village=village, display_name=name[:-1])
        await client.post(f"/api/v1/villages/{village.id}/households", headers=h_admin,
                          json={"name": name, "head_user_id": head.id})
        await _check_in(client, settings, village, head, points)
    screen = await client.get(f"/villages/{village.id}/display?tab=households")
    assert screen.status_code == 200 and "户积分排行" in screen.text
    assert f"/villages/{village.id}/display.json?tab=households" in screen.text
    shown = (await client.get(f"/villages/{village.id}/display.json?tab=households")).json()
    assert [(i["rank"], i["name"], i["points"]) for i in shown["items"]] == [
        (1, "钱*家", 50), (2, "赵*家", 30)]
    assert "秀英" not in str(shown)
    await web_login(client, admin)
    report = await client.get(f"/console/villages/{village.id}/report.csv")
    rows = list(csv.reader(io.StringIO(report.text.lstrip("\ufeff"))))
    at = rows.index(["村/社区", "名次", "户", "积分", "星级"])
    assert rows[at + 1][1:4] == ["1", "钱秀英家", "50"]
    assert rows[at + 2][1:4] == ["2", "赵建国家", "30"]


async def test_a_clerk_moves_a_resident_and_dissolves_a_household(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    son = await make_user(village=village, display_name="李小龙")
    old_head = await make_user(village=village, display_name="李大山")
    token = await web_login(client, admin)
    for name, head in (("李大山家", "李大山"), ("李小龙家", "李小龙")):
        await client.post(f"/console/villages/{village.id}/households/new", data={
            "csrf_token": token, "name": name, "head": head})
    old = await Household.get(name="李大山家")
    new = await Household.get(name="李小龙家")
    await client.post(f"/console/households/{old.id}/members", data={
        "csrf_token": token, "person": son.username})  # already in his own: refused
    assert (await HouseholdMember.get(user_id=son.id, left_at=None)).household_id == new.id
    # the father moves in with his son: he leaves his own household, which loses its head
    moved = await client.post(f"/console/households/{new.id}/members", data={
        "csrf_token": token, "person": old_head.username, "move": "1"}, follow_redirects=True)
    assert "李大山" in moved.text.split('id="members"')[1].split("</ul>")[0]
    assert (await Household.get(id=old.id)).head_id is None
    gone = await client.post(f"/console/households/{new.id}/dissolve",
                             data={"csrf_token": token}, follow_redirects=True)
    assert "已撤销这一户" in gone.text and "李小龙家" not in gone.text.split(
        'id="households"')[1]
    assert not await HouseholdMember.exists(left_at=None, household_id=new.id)
