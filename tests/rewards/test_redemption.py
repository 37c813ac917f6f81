"""Redeeming, vouchers, cancel and expiry: balances, stock and limits under races."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.factories import api_token, make_user, make_village, web_login
from torreya.db import now
from torreya.ledger.service import adjust_points
from torreya.models import (
    LedgerEntry,
    Redemption,
    RedemptionStatus,
    Reward,
    Role,
    StockMovement,
    Town,
    User,
)
from torreya.rewards.codes import ALPHABET
from torreya.rewards.service import expire_vouchers

pytestmark = pytest.mark.usefixtures("clean_audit")


async def resident_with(points: int, village=None, **over) -> User:
    village = village or await make_village()
    resident = await make_user(village=village, **over)
    if points:
        admin = await make_user(Role.VILLAGE_ADMIN, village)
        await adjust_points(actor=admin, target=resident, delta=points, memo="初始积分")
    return resident


async def make_reward(village, **over) -> Reward:
    values = {"name": "大米 5 斤", "cost": 10, "stock": None, "per_user_limit": None}
    values.update(over)
    return await Reward.create(town_id=village.town_id, village=village, **values)


async def _redeem(client, headers, reward_id, key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return await client.post("/api/v1/redemptions", headers={**headers, **extra},
                             json={"reward_id": reward_id})


async def test_redeem_debits_and_yields_a_voucher(client):
    resident = await resident_with(100)
    village = await resident.village
    reward = await make_reward(village, cost=30, stock=5)
    response = await _redeem(client, await api_token(client, resident), reward.id)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending" and body["reward_id"] == reward.id
    assert body["balance"] == 70
    assert len(body["voucher_code"]) == 8 and set(body["voucher_code"]) <= set(ALPHABET)
    await reward.refresh_from_db()
    assert reward.stock == 4
    await resident.refresh_from_db()
    assert resident.balance == 70 and resident.lifetime_points == 100
    assert await StockMovement.filter(reward_id=reward.id, reason="redeem").count() == 1


async def test_idempotency_key_charges_once(client):
    resident = await resident_with(100)
    reward = await make_reward(await resident.village, cost=30)
    headers = await api_token(client, resident)
    first = await _redeem(client, headers, reward.id, key="tap-1")
    second = await _redeem(client, headers, reward.id, key="tap-1")
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["balance"] == 70
    assert await Redemption.all().count() == 1


async def test_concurrent_same_key_charges_once(client):
    resident = await resident_with(100)
    reward = await make_reward(await resident.village, cost=30)
    headers = await api_token(client, resident)
    responses = await asyncio.gather(*[_redeem(client, headers, reward.id, key="k")
                                       for _ in range(20)])
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    await resident.refresh_from_db()
    assert resident.balance == 70


@pytest.mark.parametrize(("setup", "code"), [
    ({"cost": 200}, "insufficient_points"),
    ({"stock": 0}, "out_of_stock"),
    ({"is_active": False}, "not_available"),
])
async def test_refusals_leave_nothing_written(client, setup, code):
    resident = await resident_with(100)
    reward = await make_reward(await resident.village, **setup)
    response = await _redeem(client, await api_token(client, resident), reward.id)
    assert response.status_code == 409 and response.json()["error"]["code"] == code
    assert await Redemption.all().count() == 0
    await resident.refresh_from_db()
    assert resident.balance == 100


async def test_outside_availability_window_is_not_available(client):
    resident = await resident_with(100)
    reward = await make_reward(await resident.village,
                               available_from=now() + timedelta(days=1))
    response = await _redeem(client, await api_token(client, resident), reward.id)
    assert response.json()["error"]["code"] == "not_available"


async def test_per_user_limit(client):
    resident = await resident_with(100)
    reward = await make_reward(await resident.village, per_user_limit=2, limit_period="month")
    headers = await api_token(client, resident)
    assert (await _redeem(client, headers, reward.id)).status_code == 201
    assert (await _redeem(client, headers, reward.id)).status_code == 201
    third = await _redeem(client, headers, reward.id)
    assert third.status_code == 409 and third.json()["error"]["code"] == "limit_reached"
    await resident.refresh_from_db()
    assert resident.balance == 80


async def test_another_villages_item_is_not_found(client):
    resident = await resident_with(100)
    other = await make_village(await Town.get(id=resident.town_id))
    reward = await make_reward(other)
    response = await _redeem(client, await api_token(client, resident), reward.id)
    assert response.status_code == 404


async def test_town_wide_item_is_redeemable_from_every_village(client):
    resident = await resident_with(100)
    reward = await Reward.create(town_id=resident.town_id, village=None, name="毛巾", cost=15)
    response = await _redeem(client, await api_token(client, resident), reward.id)
    assert response.status_code == 201


async def test_staff_cannot_redeem(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    reward = await make_reward(village)
    response = await _redeem(client, await api_token(client, staff), reward.id)
    assert response.status_code == 403


async def test_twenty_residents_race_for_five_items(client):
    village = await make_village()
    reward = await make_reward(village, cost=10, stock=5)
    residents = [await resident_with(50, village) for _ in range(20)]
    headers = [await api_token(client, r) for r in residents]
    responses = await asyncio.gather(*[_redeem(client, h, reward.id) for h in headers])
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 5 and statuses.count(409) == 15, statuses
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "out_of_stock"}
    await reward.refresh_from_db()
    assert reward.stock == 0
    assert await Redemption.all().count() == 5


async def test_one_resident_with_25_points_races_ten_redemptions(client):
    resident = await resident_with(25)
    reward = await make_reward(await resident.village, cost=10)
    headers = await api_token(client, resident)
    responses = await asyncio.gather(*[_redeem(client, headers, reward.id) for _ in range(10)])
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 2, statuses
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "insufficient_points"}
    await resident.refresh_from_db()
    assert resident.balance == 5


async def test_limit_holds_under_a_race(client):
    resident = await resident_with(200)
    reward = await make_reward(await resident.village, cost=10, per_user_limit=3)
    headers = await api_token(client, resident)
    responses = await asyncio.gather(*[_redeem(client, headers, reward.id) for _ in range(10)])
    assert [r.status_code for r in responses].count(201) == 3
    await resident.refresh_from_db()
    assert resident.balance == 170


async def test_fulfil_by_staff_then_invalid_state(client):
    resident = await resident_with(100)
    village = await resident.village
    reward = await make_reward(village)
    code = (await _redeem(client, await api_token(client, resident), reward.id)
            ).json()["voucher_code"]
    staff = await make_user(Role.STAFF, village)
    headers = await api_token(client, staff)
    typed = f"{code[:4]}-{code[4:]}".lower()
    done = await client.post(f"/api/v1/vouchers/{typed}/fulfil", headers=headers)
    assert done.status_code == 200 and done.json()["status"] == "fulfilled"
    again = await client.post(f"/api/v1/vouchers/{code}/fulfil", headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"


async def test_other_village_staff_and_residents_cannot_fulfil(client):
    resident = await resident_with(100)
    reward = await make_reward(await resident.village)
    code = (await _redeem(client, await api_token(client, resident), reward.id)
            ).json()["voucher_code"]
    outsider = await make_user(Role.STAFF, await make_village())
    probe = await client.post(f"/api/v1/vouchers/{code}/fulfil",
                              headers=await api_token(client, outsider))
    assert probe.status_code == 404
    own = await client.post(f"/api/v1/vouchers/{code}/fulfil",
                            headers=await api_token(client, resident))
    assert own.status_code in (403, 404)
    assert (await Redemption.get(voucher_code=code)).status == RedemptionStatus.PENDING


async def test_cancel_refunds_and_restores_stock(client):
    resident = await resident_with(100)
    reward = await make_reward(await resident.village, cost=40, stock=3)
    headers = await api_token(client, resident)
    redemption = (await _redeem(client, headers, reward.id)).json()
    response = await client.post(f"/api/v1/redemptions/{redemption['id']}/cancel",
                                 headers=headers)
    assert response.status_code == 200
    assert response.json() == {"id": redemption["id"], "status": "cancelled", "balance": 100}
    await reward.refresh_from_db()
    assert reward.stock == 3
    again = await client.post(f"/api/v1/redemptions/{redemption['id']}/cancel", headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    kinds = await LedgerEntry.filter(user_id=resident.id).order_by("id").values_list(
        "kind", flat=True)
    assert kinds == ["adjustment", "redemption", "refund"]


async def test_concurrent_cancels_refund_once(client):
    resident = await resident_with(100)
    reward = await make_reward(await resident.village, cost=40)
    headers = await api_token(client, resident)
    redemption = (await _redeem(client, headers, reward.id)).json()
    responses = await asyncio.gather(*[
        client.post(f"/api/v1/redemptions/{redemption['id']}/cancel", headers=headers)
        for _ in range(8)])
    assert sorted(r.status_code for r in responses) == [200] + [409] * 7
    await resident.refresh_from_db()
    assert resident.balance == 100


async def test_someone_else_cannot_cancel(client):
    resident = await resident_with(100)
    village = await resident.village
    reward = await make_reward(village)
    redemption = (await _redeem(client, await api_token(client, resident), reward.id)).json()
    neighbour = await make_user(village=village)
    response = await client.post(f"/api/v1/redemptions/{redemption['id']}/cancel",
                                 headers=await api_token(client, neighbour))
    assert response.status_code == 403
    staff = await make_user(Role.STAFF, village)
    ok = await client.post(f"/api/v1/redemptions/{redemption['id']}/cancel",
                           headers=await api_token(client, staff))
    assert ok.status_code == 200


async def test_expired_vouchers_are_refunded(client):
    resident = await resident_with(100)
    reward = await make_reward(await resident.village, cost=30, stock=2)
    redemption = (await _redeem(client, await api_token(client, resident), reward.id)).json()
    await Redemption.filter(id=redemption["id"]).update(expires_at=now() - timedelta(days=1))
    assert await expire_vouchers() == 1
    assert await expire_vouchers() == 0
    await resident.refresh_from_db()
    assert resident.balance == 100
    assert (await Redemption.get(id=redemption["id"])).status == RedemptionStatus.EXPIRED
    await reward.refresh_from_db()
    assert reward.stock == 2


async def test_catalog_api(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    headers = await api_token(client, admin)
    created = await client.post(f"/api/v1/villages/{village.id}/rewards", headers=headers,
                                json={"name": "洗洁精", "cost": 30, "stock": 10,
                                      "per_user_limit": None})
    assert created.status_code == 201
    assert {k: created.json()[k] for k in ("name", "cost", "stock", "per_user_limit")} == {
        "name": "洗洁精", "cost": 30, "stock": 10, "per_user_limit": None}
    resident = await make_user(village=village)
    listed = (await client.get(f"/api/v1/villages/{village.id}/rewards",
                               headers=await api_token(client, resident))).json()
    assert [i["name"] for i in listed["items"]] == ["洗洁精"]
    bad = await client.post(f"/api/v1/villages/{village.id}/rewards", headers=headers,
                            json={"name": "x", "cost": 0, "stock": 1, "per_user_limit": None})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cost"
    staff = await make_user(Role.STAFF, village)
    refused = await client.post(f"/api/v1/villages/{village.id}/rewards",
                                headers=await api_token(client, staff),
                                json={"name": "x", "cost": 5})
    assert refused.status_code == 403


# -- pages -----------------------------------------------------------------------------------


async def test_shop_redeem_and_voucher_pages(client):
    resident = await resident_with(50)
    village = await resident.village
    await make_reward(village, name="洗衣液", cost=30, stock=4)
    await make_reward(village, name="食用油", cost=150)
    token = await web_login(client, resident)
    shop = await client.get("/shop")
    assert "洗衣液" in shop.text and "还差 100 分" in shop.text
    reward = await Reward.get(name="洗衣液")
    confirm = await client.get(f"/shop/{reward.id}")
    assert "兑换后余额：20" in confirm.text
    key = confirm.text.split('name="idem_key" value="')[1].split('"')[0]
    form = {"csrf_token": token, "idem_key": key}
    response = await client.post(f"/shop/{reward.id}/redeem", data=form)
    assert response.status_code == 303
    again = await client.post(f"/shop/{reward.id}/redeem", data=form)  # double tap
    assert again.headers["location"] == response.headers["location"]
    voucher = await client.get(response.headers["location"])
    assert "<svg" in voucher.text and "待领取" in voucher.text
    await resident.refresh_from_db()
    assert resident.balance == 20


async def test_staff_hand_over_through_the_console(client):
    resident = await resident_with(50)
    village = await resident.village
    reward = await make_reward(village)
    code = (await _redeem(client, await api_token(client, resident), reward.id)
            ).json()["voucher_code"]
    staff = await make_user(Role.STAFF, village)
    token = await web_login(client, staff)
    pickups = await client.get(f"/console/villages/{village.id}/rewards")
    assert f"{code[:4]}-{code[4:]}" in pickups.text
    page = await client.get(f"/v/{code}")
    assert "确认发放" in page.text
    done = await client.post(f"/v/{code}/fulfil", data={"csrf_token": token, "code": code})
    assert done.status_code == 303
    assert (await Redemption.get(voucher_code=code)).status == RedemptionStatus.FULFILLED


async def test_public_stock_list_masks_names(client):
    resident = await resident_with(50, display_name="王秀英")
    village = await resident.village
    reward = await make_reward(village, stock=3)
    await _redeem(client, await api_token(client, resident), reward.id)
    page = await client.get(f"/villages/{village.id}/stock")
    assert page.status_code == 200
    assert "王*英" in page.text and "王秀英" not in page.text


async def test_staff_redeem_at_the_counter_for_a_resident_without_a_phone(client):
    resident = await resident_with(50, password_hash=None)
    village = await resident.village
    reward = await make_reward(village, name="洗洁精", cost=30, stock=3)
    staff = await make_user(Role.STAFF, village)
    token = await web_login(client, staff)
    page = await client.get(f"/console/users/{resident.id}")
    assert "洗洁精 · 30" in page.text
    key = page.text.split('name="idem_key" value="')[1].split('"')[0]
    form = {"csrf_token": token, "reward_id": str(reward.id), "idem_key": key}
    assert (await client.post(f"/console/users/{resident.id}/redeem", data=form)
            ).status_code == 303
    await client.post(f"/console/users/{resident.id}/redeem", data=form)  # double tap
    redemption = await Redemption.get(user_id=resident.id)
    assert redemption.status == RedemptionStatus.FULFILLED
    entry = await LedgerEntry.get(user_id=resident.id, kind="redemption")
    assert entry.proxy and entry.actor_id == staff.id
    await resident.refresh_from_db()
    assert resident.balance == 20
    outsider = await make_user(Role.STAFF, await make_village())
    client.cookies.clear()
    token = await web_login(client, outsider)
    refused = await client.post(f"/console/users/{resident.id}/redeem", data={
        "csrf_token": token, "reward_id": str(reward.id), "idem_key": "other"})
    assert refused.status_code == 404
