"""Idempotency-Key (SPEC §5.1): tied to the caller, the endpoint and the request; replays the
first answer; 409 for another body or target; 50 concurrent repeats → one effect."""

from __future__ import annotations

import asyncio

import pytest

from tests.factories import api_token, make_user, make_village
from torreya.models import AuditEvent, IdempotencyKey, LedgerEntry, Redemption, Reward, Role, User

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _adjust(client, headers, user_id, delta, key, memo="表彰"):
    return await client.post(f"/api/v1/users/{user_id}/adjustments",
                             headers={**headers, "Idempotency-Key": key},
                             json={"delta": delta, "memo": memo})


async def _people():
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    return village, admin, await make_user(village=village), await make_user(village=village)


async def test_repeat_with_same_body_replays_the_first_answer(client):
    _, admin, resident, _ = await _people()
    headers = await api_token(client, admin)
    first = await _adjust(client, headers, resident.id, 20, "k-1")
    again = await _adjust(client, headers, resident.id, 20, "k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert (await User.get(id=resident.id)).balance == 20
    assert await LedgerEntry.filter(user_id=resident.id).count() == 1
    assert await AuditEvent.filter(tag="ledger:adjustment:create").count() == 1


async def test_same_key_other_body_is_a_mismatch(client):
    _, admin, resident, _ = await _people()
    headers = await api_token(client, admin)
    assert (await _adjust(client, headers, resident.id, 20, "k-2")).status_code == 201
    other = await _adjust(client, headers, resident.id, 25, "k-2")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_mismatch"
    assert (await User.get(id=resident.id)).balance == 20


async def test_same_key_other_target_is_a_mismatch_and_gives_nothing(client):
    _, admin, first, second = await _people()
    headers = await api_token(client, admin)
    assert (await _adjust(client, headers, first.id, 20, "k-3")).status_code == 201
    other = await _adjust(client, headers, second.id, 20, "k-3")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_mismatch"
    assert (await User.get(id=second.id)).balance == 0
    assert await LedgerEntry.filter(user_id=second.id).count() == 0


async def test_long_keys_differing_at_the_end_are_different_keys(client):
    _, admin, resident, _ = await _people()
    headers = await api_token(client, admin)
    stem = "x" * 254
    assert (await _adjust(client, headers, resident.id, 5, stem + "a")).status_code == 201
    assert (await _adjust(client, headers, resident.id, 5, stem + "b")).status_code == 201
    assert (await User.get(id=resident.id)).balance == 10
    too_long = await _adjust(client, headers, resident.id, 5, stem + "ab")
    assert too_long.status_code == 422
    assert too_long.json()["error"]["field"] == "Idempotency-Key"
    assert (await User.get(id=resident.id)).balance == 10


async def test_keys_are_scoped_to_the_caller(client):
    village, admin, resident, _ = await _people()
    other_admin = await make_user(Role.VILLAGE_ADMIN, village)
    first = await _adjust(client, await api_token(client, admin), resident.id, 7, "shared")
    second = await _adjust(client, await api_token(client, other_admin), resident.id, 7,
                           "shared")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert (await User.get(id=resident.id)).balance == 14


async def test_redemption_repeat_with_another_reward_is_a_mismatch(client):
    village, admin, resident, _ = await _people()
    admin_headers = await api_token(client, admin)
    await _adjust(client, admin_headers, resident.id, 100, "seed")
    ids = []
    for name in ("大米", "食用油"):
        created = await client.post(f"/api/v1/villages/{village.id}/rewards",
                                    headers=admin_headers,
                                    json={"name": name, "cost": 10, "stock": 5})
        ids.append(created.json()["id"])
    headers = {**await api_token(client, resident), "Idempotency-Key": "buy-1"}
    first = await client.post("/api/v1/redemptions", headers=headers, json={"reward_id": ids[0]})
    assert first.status_code == 201
    other = await client.post("/api/v1/redemptions", headers=headers, json={"reward_id": ids[1]})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_mismatch"
    again = await client.post("/api/v1/redemptions", headers=headers, json={"reward_id": ids[0]})
    assert again.json() == first.json()
    assert await Redemption.filter(user_id=resident.id).count() == 1
    assert (await Reward.get(id=ids[1])).stock == 5
    assert (await User.get(id=resident.id)).balance == 90


async def test_a_failed_request_stores_nothing_and_its_retry_runs_again(client):
    _, admin, resident, _ = await _people()
    headers = await api_token(client, admin)
    refused = await _adjust(client, headers, resident.id, -5, "k-4", memo="纠错")
    assert refused.json()["error"]["code"] == "insufficient_points"
    assert await IdempotencyKey.all().count() == 0
    await _adjust(client, headers, resident.id, 10, "seed-4")
    assert (await _adjust(client, headers, resident.id, -5, "k-4", memo="纠错")).status_code == 201
    assert (await User.get(id=resident.id)).balance == 5


async def test_fifty_concurrent_repeats_have_one_effect_and_one_answer(client):
    village, admin, resident, _ = await _people()
    admin_headers = await api_token(client, admin)
    await _adjust(client, admin_headers, resident.id, 100, "seed")
    reward = (await client.post(f"/api/v1/villages/{village.id}/rewards", headers=admin_headers,
                                json={"name": "毛巾", "cost": 3, "stock": 100})).json()
    headers = {**await api_token(client, resident), "Idempotency-Key": "tap-tap-tap"}
    answers = await asyncio.gather(*[
        client.post("/api/v1/redemptions", headers=headers, json={"reward_id": reward["id"]})
        for _ in range(50)])
    assert {a.status_code for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    assert await Redemption.filter(user_id=resident.id).count() == 1
    assert (await User.get(id=resident.id)).balance == 97
    assert (await Reward.get(id=reward["id"])).stock == 99


async def test_console_form_resubmitted_adjusts_once(client):
    from tests.factories import web_login

    village, admin, resident, _ = await _people()
    await web_login(client, admin)
    page = await client.get(f"/console/users/{resident.id}")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    key = page.text.split('name="idem_key" value="')[1].split('"')[0]
    form = {"csrf_token": token, "delta": "15", "memo": "代老人登记", "idem_key": key}
    for _ in range(2):
        assert (await client.post(f"/console/users/{resident.id}/adjust",
                                  data=form)).status_code == 303
    assert (await User.get(id=resident.id)).balance == 15
    changed = await client.post(f"/console/users/{resident.id}/adjust",
                                data={**form, "delta": "16"})
    assert changed.status_code == 303
    assert (await User.get(id=resident.id)).balance == 15
