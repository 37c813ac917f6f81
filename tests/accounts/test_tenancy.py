"""Towns, villages and users through the API and the console; every role boundary."""

from __future__ import annotations

import pytest

from tests.factories import api_token, make_town, make_user, make_village, web_login
from torreya.models import AuditEvent, Role, Town, User, Village


async def test_platform_admin_creates_town_with_default_rules(client):
    admin = await make_user(Role.PLATFORM_ADMIN)
    response = await client.post("/api/v1/towns", headers=await api_token(client, admin),
                                 json={"name": "古来镇", "code": "gulai",
                                       "currency_name": "香榧币"})
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "古来镇" and body["currency_name"] == "香榧币"
    town = await Town.get(id=body["id"])
    kinds = sorted(await town.rules.all().values_list("kind", flat=True))
    assert kinds == ["checkin", "patrol", "pledge", "report"]
    assert await AuditEvent.filter(tag="accounts:town:create", actor_id=admin.id).exists()


async def test_duplicate_town_code_is_a_conflict(client):
    admin = await make_user(Role.PLATFORM_ADMIN)
    await make_town(code="gulai")
    response = await client.post("/api/v1/towns", headers=await api_token(client, admin),
                                 json={"name": "x", "code": "gulai", "currency_name": "币"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "code_taken"


@pytest.mark.parametrize("role", [Role.RESIDENT, Role.STAFF, Role.VILLAGE_ADMIN, Role.TOWN_ADMIN])
async def test_only_platform_admin_creates_towns(client, role):
    user = await make_user(role)
    response = await client.post("/api/v1/towns", headers=await api_token(client, user),
                                 json={"name": "x", "code": "x1", "currency_name": "币"})
    assert response.status_code == 403
    assert await Town.filter(code="x1").count() == 0


async def test_town_admin_creates_villages_only_in_own_town(client):
    town, other = await make_town(), await make_town()
    admin = await make_user(Role.TOWN_ADMIN, town=town)
    headers = await api_token(client, admin)
    ok = await client.post(f"/api/v1/towns/{town.id}/villages", headers=headers,
                           json={"name": "榧香村", "code": "feixiang"})
    assert ok.status_code == 201
    assert ok.json() == {"id": ok.json()["id"], "town_id": town.id, "name": "榧香村",
                         "code": "feixiang"}
    probe = await client.post(f"/api/v1/towns/{other.id}/villages", headers=headers,
                              json={"name": "x", "code": "x"})
    assert probe.status_code == 404
    assert await Village.filter(town=other).count() == 0


async def test_village_admin_cannot_create_villages(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    response = await client.post(f"/api/v1/towns/{village.town_id}/villages",
                                 headers=await api_token(client, admin),
                                 json={"name": "x", "code": "x"})
    assert response.status_code == 403


async def test_village_admin_creates_resident_in_own_village(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    response = await client.post("/api/v1/users", headers=await api_token(client, admin), json={
        "username": "zhangsan", "password": "secret-123", "display_name": "张三",
        "village_id": village.id, "role": "resident"})
    assert response.status_code == 201
    assert response.json() == {"id": response.json()["id"], "username": "zhangsan",
                               "display_name": "张三", "village_id": village.id,
                               "role": "resident"}
    created = await User.get(username="zhangsan")
    assert created.town_id == village.town_id
    assert created.password_hash.startswith("$argon2id$")
    assert await AuditEvent.filter(tag="accounts:user:create", subject=f"user:{created.id}"
                                   ).exists()


async def test_village_admin_cannot_reach_another_village(client):
    village = await make_village()
    other = await make_village(await Town.get(id=village.town_id))
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    response = await client.post("/api/v1/users", headers=await api_token(client, admin), json={
        "username": "lisi", "password": "secret-123", "display_name": "李四",
        "village_id": other.id, "role": "resident"})
    assert response.status_code == 404
    assert not await User.exists(username="lisi")


async def test_village_admin_cannot_create_town_admin(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    response = await client.post("/api/v1/users", headers=await api_token(client, admin), json={
        "username": "boss", "password": "secret-123", "display_name": "镇长",
        "village_id": village.id, "role": "town_admin"})
    assert response.status_code == 403


@pytest.mark.parametrize("role", [Role.RESIDENT, Role.STAFF])
async def test_residents_and_staff_cannot_create_users(client, role):
    village = await make_village()
    user = await make_user(role, village)
    response = await client.post("/api/v1/users", headers=await api_token(client, user), json={
        "username": "newbie", "password": "secret-123", "display_name": "新人",
        "village_id": village.id, "role": "resident"})
    assert response.status_code == 403


async def test_town_admin_creates_users_across_own_villages_only(client):
    town = await make_town()
    village = await make_village(town)
    foreign = await make_village()
    admin = await make_user(Role.TOWN_ADMIN, town=town)
    headers = await api_token(client, admin)
    ok = await client.post("/api/v1/users", headers=headers, json={
        "username": "vadmin", "password": "secret-123", "display_name": "村委",
        "village_id": village.id, "role": "village_admin"})
    assert ok.status_code == 201
    probe = await client.post("/api/v1/users", headers=headers, json={
        "username": "spy", "password": "secret-123", "display_name": "间谍",
        "village_id": foreign.id, "role": "resident"})
    assert probe.status_code == 404 and probe.json()["error"]["code"] == "not_found"


async def test_duplicate_username_is_409(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    await make_user(village=village, username="taken")
    response = await client.post("/api/v1/users", headers=await api_token(client, admin), json={
        "username": "taken", "password": "secret-123", "display_name": "重复",
        "village_id": village.id, "role": "resident"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "username_taken"
    assert await User.filter(username="taken").count() == 1


async def test_unknown_village_is_404(client):
    admin = await make_user(Role.PLATFORM_ADMIN)
    response = await client.post("/api/v1/users", headers=await api_token(client, admin), json={
        "username": "ghost", "password": "secret-123", "display_name": "无",
        "village_id": 999999, "role": "resident"})
    assert response.status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"username": "abc", "display_name": "x", "village_id": "one", "role": "resident"},
     "village_id"),
    ({"username": "abc", "display_name": "x", "village_id": 1, "role": "king"}, "role"),
    ({"display_name": "x", "village_id": 1, "role": "resident"}, "username"),
    ({"username": "abc", "display_name": "<script>alert(1)</script>", "village_id": 1,
      "role": "resident"}, "display_name"),
    ({"username": "abc", "display_name": "x" * 65, "village_id": 1, "role": "resident"},
     "display_name"),
    ({"username": 12345, "display_name": "x", "village_id": 1, "role": "resident"}, "username"),
])
async def test_bad_user_bodies_name_the_field(client, body, field):
    admin = await make_user(Role.PLATFORM_ADMIN)
    response = await client.post("/api/v1/users", headers=await api_token(client, admin),
                                 json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["field"] == field
    assert error["message"]
    assert await User.all().count() == 1


async def test_malformed_json_and_wrong_content_type(client):
    admin = await make_user(Role.PLATFORM_ADMIN)
    headers = await api_token(client, admin)
    broken = await client.post("/api/v1/towns", headers={**headers,
                               "content-type": "application/json"}, content=b'{"name": ')
    assert broken.status_code == 422 and broken.json()["error"]["field"] == "body"
    as_form = await client.post("/api/v1/towns", headers=headers, data={"name": "x"})
    assert as_form.status_code == 422
    array = await client.post("/api/v1/towns", headers=headers, json=[1, 2])
    assert array.status_code == 422
    assert await Town.all().count() == 0


async def test_error_messages_follow_accept_language(client):
    admin = await make_user(Role.PLATFORM_ADMIN)
    headers = await api_token(client, admin)
    zh = await client.post("/api/v1/towns", headers=headers, json={})
    en = await client.post("/api/v1/towns", headers={**headers, "accept-language": "en"},
                           json={})
    assert "请填写" in zh.json()["error"]["message"]
    assert en.json()["error"]["message"] == "Field name is required."


async def test_oversized_body_is_413(client):
    admin = await make_user(Role.PLATFORM_ADMIN)
    response = await client.post("/api/v1/towns", headers=await api_token(client, admin),
                                 json={"name": "x" * 2_000_000, "code": "big",
                                       "currency_name": "币"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await Town.all().count() == 0


async def test_unknown_api_route_is_json_404(client):
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# -- the console ----------------------------------------------------------------------------


async def test_console_creates_town_village_and_resident(client):
    admin = await make_user(Role.PLATFORM_ADMIN)
    token = await web_login(client, admin)
    response = await client.post("/console/towns", data={
        "csrf_token": token, "name": "古来镇", "code": "gulai", "currency_name": "香榧币"})
    assert response.status_code == 303
    town = await Town.get(code="gulai")
    await client.post(f"/console/towns/{town.id}/villages",
                      data={"csrf_token": token, "name": "古来村", "code": "gulaicun"})
    village = await Village.get(code="gulaicun")
    await client.post(f"/console/villages/{village.id}/users", data={
        "csrf_token": token, "display_name": "王秀英", "username": "wangxy",
        "password": "", "role": "resident"})
    page = await client.get(f"/console/villages/{village.id}")
    assert "王秀英" in page.text
    resident = await User.get(username="wangxy")
    assert resident.password_hash is None and resident.role == Role.RESIDENT


async def test_console_form_without_csrf_changes_nothing(client):
    admin = await make_user(Role.PLATFORM_ADMIN)
    await web_login(client, admin)
    response = await client.post("/console/towns", data={
        "name": "古来镇", "code": "gulai", "currency_name": "香榧币"})
    assert response.status_code == 403
    assert not await Town.exists(code="gulai")


async def test_console_hides_other_villages(client):
    village = await make_village()
    other = await make_village(await Town.get(id=village.town_id))
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    await web_login(client, admin)
    assert (await client.get(f"/console/villages/{village.id}")).status_code == 200
    assert (await client.get(f"/console/villages/{other.id}")).status_code == 404
    stranger = await make_user(village=other)
    assert (await client.get(f"/console/users/{stranger.id}")).status_code == 404


async def test_audit_log_is_scoped_to_the_viewer(client):
    town = await make_town()
    village, other = await make_village(town), await make_village(town)
    town_admin = await make_user(Role.TOWN_ADMIN, town=town)
    headers = await api_token(client, town_admin)
    for v, name in ((village, "mine"), (other, "theirs")):
        await client.post("/api/v1/users", headers=headers, json={
            "username": name, "password": "secret-123", "display_name": name,
            "village_id": v.id, "role": "resident"})
    village_admin = await make_user(Role.VILLAGE_ADMIN, village)
    await web_login(client, village_admin)
    page = await client.get("/console/audit")
    assert page.status_code == 200
    mine = await User.get(username="mine")
    theirs = await User.get(username="theirs")
    assert f"user:{mine.id}<" in page.text
    assert f"user:{theirs.id}<" not in page.text
