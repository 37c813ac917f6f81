"""Households (issue 33, first part): made and joined through the API, points earned while
members (joining and leaving mid-period), the masked board, one rating per year."""

from __future__ import annotations

import pytest

from tests.factories import api_token, make_event, make_user, make_village, web_login
from torreya.checkins.codes import poster_token
from torreya.db import now
from torreya.models import AuditEvent, HouseholdMember, LedgerEntry, Role, Town, User

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _check_in(client, settings, village, resident, points):
    event = await make_event(village, points=points)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    answer = await client.post("/api/v1/checkins", headers=await api_token(client, resident),
                               json={"token": token})
    assert answer.status_code == 201, answer.text


async def test_points_are_what_members_earned_while_members(client, settings):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    zhao = await make_user(village=village, display_name="赵建国")
    wife = await make_user(village=village, display_name="钱秀英")
    h_admin = await api_token(client, admin)
    await _check_in(client, settings, village, zhao, 10)  # before the household: not its
    made = await client.post(f"/api/v1/villages/{village.id}/households", headers=h_admin,
                             json={"name": "赵建国家", "head_user_id": zhao.id})
    assert made.status_code == 201, made.text
    household = made.json()
    assert household["head_user_id"] == zhao.id
    assert household["members"] == [{"user_id": zhao.id, "display_name": "赵建国"}]
    await _check_in(client, settings, village, zhao, 20)
    added = await client.post(f"/api/v1/households/{household['id']}/members", headers=h_admin,
                              json={"user_id": wife.id})
    assert added.status_code == 201
    await _check_in(client, settings, village, wife, 5)
    left = await client.delete(f"/api/v1/households/{household['id']}/members/{wife.id}",
                               headers=h_admin)
    assert left.status_code == 204
    retried = await client.delete(f"/api/v1/households/{household['id']}/members/{wife.id}",
                                  headers=h_admin)
    assert retried.status_code == 204  # nothing more happened
    await _check_in(client, settings, village, wife, 7)  # after leaving: not the household's
    # a committee's award counts, as on the boards; a correction down is not earning
    await client.post(f"/api/v1/users/{zhao.id}/adjustments", headers=h_admin,
                      json={"delta": 100, "memo": "表彰"})
    await client.post(f"/api/v1/users/{zhao.id}/adjustments", headers=h_admin,
                      json={"delta": -3, "memo": "更正"})
    seen = await client.get(f"/api/v1/households/{household['id']}",
                            headers=await api_token(client, zhao))
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert body["points"] == {"week": 125, "month": 125, "year": 125, "all": 125}
    assert body["members"] == [{"user_id": zhao.id, "display_name": "赵建国"}]
    assert body["stars"] is None
    # the wife, no longer a member, does not see it; her past membership is kept
    gone = await client.get(f"/api/v1/households/{household['id']}",
                            headers=await api_token(client, wife))
    assert gone.status_code == 404
    assert await HouseholdMember.filter(user_id=wife.id).exclude(left_at=None).count() == 1
    # she may join another household now
    again = await client.post(f"/api/v1/villages/{village.id}/households", headers=h_admin,
                              json={"name": "钱秀英家", "head_user_id": wife.id})
    assert again.status_code == 201


async def test_one_household_at_a_time_and_within_the_village(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    staff = await make_user(Role.STAFF, village)
    head = await make_user(village=village)
    other_village = await make_village(await Town.get(id=village.town_id))
    stranger = await make_user(village=other_village)
    h_admin = await api_token(client, admin)
    made = (await client.post(f"/api/v1/villages/{village.id}/households", headers=h_admin,
                              json={"name": "孙家", "head_user_id": head.id})).json()
    twice = await client.post(f"/api/v1/villages/{village.id}/households", headers=h_admin,
                              json={"name": "孙家二", "head_user_id": head.id})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_in_household"
    again = await client.post(f"/api/v1/households/{made['id']}/members", headers=h_admin,
                              json={"user_id": head.id})
    assert again.status_code == 409
    outside = await client.post(f"/api/v1/households/{made['id']}/members", headers=h_admin,
                                json={"user_id": stranger.id})
    assert outside.status_code == 404
    by_staff = await client.post(f"/api/v1/households/{made['id']}/members",
                                 headers=await api_token(client, staff),
                                 json={"user_id": (await make_user(village=village)).id})
    assert by_staff.status_code == 403
    other_admin = await api_token(client, await make_user(Role.VILLAGE_ADMIN, other_village))
    assert (await client.get(f"/api/v1/households/{made['id']}",
                             headers=other_admin)).status_code == 404
    assert (await client.get(f"/api/v1/households/{made['id']}",
                             headers=await api_token(client, staff))).status_code == 200
    bad = await client.post(f"/api/v1/villages/{village.id}/households", headers=h_admin,
                            json={"name": "<b>李家</b>", "head_user_id": stranger.id})
    assert bad.status_code == 422
    assert await AuditEvent.filter(tag="households:create").count() == 1


async def test_the_board_masks_names_and_shows_stars(client, settings):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    h_admin = await api_token(client, admin)
    homes = []
    for name, points in (("赵建国家", 30), ("钱秀英家", 50), ("孙小明家", 30)):
        head = await make_user(village=village, display_name=name[:-1])
        made = await client.post(f"/api/v1/villages/{village.id}/households", headers=h_admin,
                                 json={"name": name, "head_user_id": head.id})
        homes.append(made.json())
        await _check_in(client, settings, village, head, points)
    rated = await client.post(f"/api/v1/households/{homes[1]['id']}/ratings", headers=h_admin,
                              json={"year": now().year, "stars": 5, "note": "无矛盾纠纷"})
    assert rated.status_code == 201
    assert rated.json() == {"household_id": homes[1]["id"], "year": now().year, "stars": 5}
    board = await client.get(f"/api/v1/villages/{village.id}/household-leaderboard"
                             "?period=year")
    assert board.status_code == 200
    assert board.json() == {"period": "year", "items": [
        {"rank": 1, "name": "钱*家", "points": 50, "stars": 5},
        {"rank": 2, "name": "赵*家", "points": 30, "stars": None},
        {"rank": 2, "name": "孙*家", "points": 30, "stars": None}]}
    assert "建国" not in board.text and "秀英" not in board.text


async def test_one_rating_per_household_and_year(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    h_admin = await api_token(client, admin)
    made = (await client.post(f"/api/v1/villages/{village.id}/households", headers=h_admin,
                              json={"name": "周家", "head_user_id": (
                                  await make_user(village=village)).id})).json()
    url = f"/api/v1/households/{made['id']}/ratings"
    year = now().year
    assert (await client.post(url, headers=h_admin, json={"year": year - 1, "stars": 3})
            ).status_code == 201
    second = await client.post(url, headers=h_admin, json={"year": year - 1, "stars": 4})
    assert second.status_code == 409 and second.json()["error"]["code"] == "already_rated"
    for bad in ({"year": year + 1, "stars": 3}, {"year": year, "stars": 6},
                {"year": year, "stars": 0}, {"year": "今年", "stars": 3}):
        assert (await client.post(url, headers=h_admin, json=bad)).status_code == 422, bad
    staff = await api_token(client, await make_user(Role.STAFF, village))
    assert (await client.post(url, headers=staff, json={"year": year, "stars": 3})
            ).status_code == 403
    detail = (await client.get(f"/api/v1/households/{made['id']}", headers=h_admin)).json()
    assert detail["stars"] == {"year": year - 1, "stars": 3}


async def test_a_rating_brings_the_head_the_towns_bonus_per_star(client, settings):
    village = await make_village()
    await Town.filter(id=village.town_id).update(star_bonus=10, star_criteria=[
        {"name": "参加平安巡逻", "weight": 3, "source": "checkin"}])
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    head = await make_user(village=village, display_name="吴大海")
    h_admin = await api_token(client, admin)
    made = (await client.post(f"/api/v1/villages/{village.id}/households", headers=h_admin,
                              json={"name": "吴大海家", "head_user_id": head.id})).json()
    await _check_in(client, settings, village, head, 5)
    rated = await client.post(f"/api/v1/households/{made['id']}/ratings", headers=h_admin,
                              json={"year": now().year, "stars": 4})
    assert rated.status_code == 201
    entry = await LedgerEntry.get(user_id=head.id, source_type="household_rating")
    assert entry.delta == 40 and entry.memo == f"{now().year}年度星级平安户★★★★（吴大海家）"
    assert (await User.get(id=head.id)).balance == 45
    await web_login(client, admin)
    page = (await client.get(f"/console/households/{made['id']}")).text
    assert "已评定" not in page and "★★★★☆" in page


async def test_the_rating_page_shows_the_criteria_with_this_years_records(client, settings):
    village = await make_village()
    await Town.filter(id=village.town_id).update(star_criteria=[
        {"name": "家庭和睦，无矛盾纠纷", "weight": 3, "source": None},
        {"name": "参加签到活动", "weight": 2, "source": "checkin"}])
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    head = await make_user(village=village)
    made = (await client.post(f"/api/v1/villages/{village.id}/households",
                              headers=await api_token(client, admin),
                              json={"name": "郑家", "head_user_id": head.id})).json()
    for _ in range(2):
        await _check_in(client, settings, village, head, 5)
    await web_login(client, admin)
    page = (await client.get(f"/console/households/{made['id']}")).text
    criteria = page.split('id="criteria"')[1].split("</ul>")[0]
    assert "家庭和睦，无矛盾纠纷" in criteria and "权重 3" in criteria
    assert "今年活动签到：2 次" in criteria


async def test_the_board_counts_whole_period_members_from_totals_and_others_from_the_ledger(
        client, settings):
    """A member there all month is read from their month's total; one who joined this month
    from the ledger, only what they earned since joining; the two ways agree with points()."""
    from datetime import timedelta

    from torreya.households.service import board, points
    from torreya.models import Household, Village

    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    old_member = await make_user(village=village)
    newcomer = await make_user(village=village)
    h_admin = await api_token(client, admin)
    await _check_in(client, settings, village, newcomer, 10)  # before joining: not counted
    made = (await client.post(f"/api/v1/villages/{village.id}/households", headers=h_admin,
                              json={"name": "冯家", "head_user_id": old_member.id})).json()
    # the head has belonged since last year
    await HouseholdMember.filter(user_id=old_member.id).update(
        joined_at=now() - timedelta(days=400))
    await client.post(f"/api/v1/households/{made['id']}/members", headers=h_admin,
                      json={"user_id": newcomer.id})
    await _check_in(client, settings, village, old_member, 7)
    await _check_in(client, settings, village, newcomer, 20)
    place = await Village.get(id=village.id)
    for period in ("week", "month", "year", "all"):
        [line] = await board(place.id, period)
        assert line.points == 27, period
    assert (await points(made["id"]))["month"] == 27
    assert (await Household.get(id=made["id"])).name == "冯家"
