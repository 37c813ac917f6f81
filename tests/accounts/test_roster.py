"""CSV roster import: all rows or none, problems with line numbers."""

from __future__ import annotations

import pytest

from tests.factories import make_user, make_village, web_login
from torreya.models import AuditEvent, Role, User

GOOD = "姓名,手机号,密码\n王秀英,13800000001,xiangfei-wxy-58\n李建国,13800000002,\n".encode()


async def _upload(client, token, village, data: bytes, name="roster.csv"):
    return await client.post(f"/console/villages/{village.id}/import",
                             data={"csrf_token": token},
                             files={"roster": (name, data, "text/csv")})


async def test_import_creates_residents(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    token = await web_login(client, admin)
    response = await _upload(client, token, village, GOOD)
    assert response.status_code == 200
    assert "已导入 2 位居民" in response.text
    wang = await User.get(phone="+8613800000001")
    assert wang.display_name == "王秀英" and wang.role == Role.RESIDENT
    assert wang.village_id == village.id and wang.password_hash.startswith("$argon2")
    li = await User.get(phone="+8613800000002")
    assert li.password_hash is None
    # The 手机号 column is the phone; a username is made up, never holding the number.
    for person in (wang, li):
        assert person.username.startswith(f"{village.code}_")
        assert "0000000" not in person.username
    assert await AuditEvent.filter(tag="accounts:roster:import").exists()


async def test_import_accepts_excel_bom_and_english_headers(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    token = await web_login(client, admin)
    data = "\ufeffname,username\nZhang San,zhangsan\n".encode()
    response = await _upload(client, token, village, data)
    assert response.status_code == 200
    assert await User.exists(username="zhangsan")


@pytest.mark.parametrize(("data", "expected"), [
    ("姓名,手机号\n王秀英,13800000001\n".encode("gbk"), "UTF-8"),
    ("手机号,密码\n13800000001,xiangfei-wxy-58\n".encode(), "缺少列"),
    ("姓名,用户名,手机号\n王秀英,wxy13800000001,13800000001\n".encode(),
     "第 2 行：用户名不能包含手机号"),
    ("姓名,用户名\n王秀英,wang\n李四,WANG\n".encode(), "第 3 行"),
    ("姓名,手机号\n王秀英,13800000001\n<b>坏人</b>,13800000003\n".encode(), "第 3 行"),
    ("姓名,手机号,密码\n王秀英,13800000001,123\n".encode(), "第 2 行：密码至少需要 8 个字符"),
    ("姓名,手机号,密码\n王秀英,13800000001,secret123\n".encode(), "第 2 行：这个密码太常见"),
    ("姓名,手机号,密码\n王秀英,13800000001,a13800000001\n".encode(), "第 2 行：这个密码太常见"),
    (b"", "文件是空的"),
])
async def test_bad_roster_imports_nothing(client, data, expected):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    token = await web_login(client, admin)
    response = await _upload(client, token, village, data)
    assert response.status_code == 422
    assert "未导入任何数据" in response.text and expected in response.text
    assert await User.filter(role=Role.RESIDENT).count() == 0


async def test_existing_username_refuses_the_whole_file(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    await make_user(village=village, username="lijianguo")
    token = await web_login(client, admin)
    roster = "姓名,用户名,手机号\n王秀英,,13800000001\n李建国,lijianguo,13800000002\n"
    response = await _upload(client, token, village, roster.encode())
    assert response.status_code == 422 and "第 3 行" in response.text
    assert not await User.exists(phone="+8613800000001")


async def test_staff_cannot_import(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    token = await web_login(client, staff)
    assert (await _upload(client, token, village, GOOD)).status_code == 403
    assert not await User.exists(username="13800000001")


async def test_other_village_admin_cannot_import(client):
    village, other = await make_village(), await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, other)
    token = await web_login(client, admin)
    assert (await _upload(client, token, village, GOOD)).status_code == 404


async def test_huge_upload_is_413(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    token = await web_login(client, admin)
    response = await _upload(client, token, village, b"x" * 9_000_000)
    assert response.status_code == 413


async def test_the_household_column_groups_residents_first_listed_head(client):
    from torreya.models import Household, HouseholdMember

    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    existing_head = await make_user(village=village, display_name="孙大爷")
    old = await Household.create(town_id=village.town_id, village=village, name="孙家",
                                 head=existing_head)
    token = await web_login(client, admin)
    roster = ("姓名,手机号,户\n赵建国,13800000011,赵建国家\n钱秀英,13800000012,赵建国家\n"
              "孙小明,13800000013,孙家\n李四,13800000014,\n").encode()
    response = await _upload(client, token, village, roster)
    assert "已导入 4 位居民" in response.text, response.text
    zhao = await Household.get(village_id=village.id, name="赵建国家")
    assert zhao.head_id == (await User.get(phone="+8613800000011")).id
    members = await HouseholdMember.filter(household_id=zhao.id).values_list("user_id",
                                                                             flat=True)
    assert sorted(members) == sorted([(await User.get(phone=p)).id for p in (
        "+8613800000011", "+8613800000012")])
    joined = await HouseholdMember.get(user_id=(await User.get(phone="+8613800000013")).id)
    assert joined.household_id == old.id  # the village's 孙家 took him in
    assert not await HouseholdMember.exists(user_id=(await User.get(phone="+8613800000014")).id)
    bad = await _upload(client, token, village,
                        "姓名,户\n周五,<b>周家</b>\n".encode())
    assert "第 2 行：户名" in bad.text and not await User.exists(display_name="周五")
