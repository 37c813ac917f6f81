"""Adjustments, balances, the append-only ledger, caps and the audit."""

from __future__ import annotations

import pytest
from tortoise import connections

from tests.factories import api_token, make_user, make_village, web_login
from torreya.ledger.invariants import audit_ledger
from torreya.models import AuditEvent, EarningRule, LedgerEntry, Role, User

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _adjust(client, headers, user_id, delta, memo="表彰", key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return await client.post(f"/api/v1/users/{user_id}/adjustments",
                             headers={**headers, **extra}, json={"delta": delta, "memo": memo})


async def test_adjustment_credits_and_is_audited(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    response = await _adjust(client, await api_token(client, admin), resident.id, 50)
    assert response.status_code == 201
    entry = response.json()
    assert entry["delta"] == 50 and entry["balance_after"] == 50
    assert entry["kind"] == "adjustment" and entry["memo"] == "表彰"
    assert entry["created_at"].endswith("+00:00")
    await resident.refresh_from_db()
    assert resident.balance == 50 and resident.lifetime_points == 50
    assert await AuditEvent.filter(tag="ledger:adjustment:create").count() == 1


async def test_negative_adjustment_cannot_overdraw(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    headers = await api_token(client, admin)
    await _adjust(client, headers, resident.id, 30)
    refused = await _adjust(client, headers, resident.id, -31, memo="纠错")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "insufficient_points"
    ok = await _adjust(client, headers, resident.id, -30, memo="纠错")
    assert ok.json()["balance_after"] == 0
    await resident.refresh_from_db()
    assert resident.balance == 0 and resident.lifetime_points == 30
    assert await LedgerEntry.filter(user_id=resident.id).count() == 2


async def test_adjustment_needs_a_memo(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    response = await _adjust(client, await api_token(client, admin), resident.id, 5, memo="  ")
    assert response.status_code == 422 and response.json()["error"]["field"] == "memo"
    assert await LedgerEntry.all().count() == 0


async def test_adjustment_replays_same_idempotency_key(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    headers = await api_token(client, admin)
    first = await _adjust(client, headers, resident.id, 20, key="abc")
    second = await _adjust(client, headers, resident.id, 20, key="abc")
    assert first.json()["id"] == second.json()["id"]
    await resident.refresh_from_db()
    assert resident.balance == 20


@pytest.mark.parametrize("role", [Role.RESIDENT, Role.STAFF])
async def test_residents_and_staff_cannot_adjust(client, role):
    village = await make_village()
    actor = await make_user(role, village)
    resident = await make_user(village=village)
    response = await _adjust(client, await api_token(client, actor), resident.id, 100)
    assert response.status_code == 403
    assert await LedgerEntry.all().count() == 0


async def test_other_villages_admin_cannot_adjust(client):
    village, other = await make_village(), await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, other)
    resident = await make_user(village=village)
    response = await _adjust(client, await api_token(client, admin), resident.id, 100)
    assert response.status_code == 404
    assert await LedgerEntry.all().count() == 0


async def test_console_adjustment_by_proxy(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village, password_hash=None)
    token = await web_login(client, admin)
    page = await client.get(f"/console/users/{resident.id}")
    assert page.status_code == 200
    key = page.text.split('name="idem_key" value="')[1].split('"')[0]
    form = {"csrf_token": token, "delta": "15", "memo": "代老人登记", "idem_key": key,
            "proxy": "on"}
    assert (await client.post(f"/console/users/{resident.id}/adjust", data=form)
            ).status_code == 303
    await client.post(f"/console/users/{resident.id}/adjust", data=form)  # double tap
    entry = await LedgerEntry.get(user_id=resident.id)
    assert entry.proxy and entry.actor_id == admin.id and entry.delta == 15


async def test_my_ledger_pages_newest_first(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    headers = await api_token(client, admin)
    for n in range(1, 26):
        await _adjust(client, headers, resident.id, n, memo=f"第{n}次")
    mine = await api_token(client, resident)
    first = (await client.get("/api/v1/me/ledger", headers=mine)).json()
    assert [e["delta"] for e in first["items"]] == list(range(25, 5, -1))
    second = (await client.get(f"/api/v1/me/ledger?cursor={first['next_cursor']}",
                               headers=mine)).json()
    assert [e["delta"] for e in second["items"]] == [5, 4, 3, 2, 1]
    assert second["next_cursor"] is None
    bad = await client.get("/api/v1/me/ledger?cursor=abc", headers=mine)
    assert bad.status_code == 422


async def test_ledger_rows_cannot_be_changed_or_deleted(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    await _adjust(client, await api_token(client, admin), resident.id, 10)
    connection = connections.get("default")
    with pytest.raises(Exception, match="append-only"):
        await connection.execute_script("UPDATE ledger_entries SET delta = 1000")
    with pytest.raises(Exception, match="append-only"):
        await connection.execute_script("DELETE FROM ledger_entries")
    assert (await LedgerEntry.get(user_id=resident.id)).delta == 10


async def test_balance_cannot_go_negative_in_the_database(client):
    resident = await make_user()
    with pytest.raises(Exception, match="negative|nonneg"):
        await connections.get("default").execute_script(
            f"UPDATE users SET balance = -5 WHERE id = {resident.id}")


async def test_audit_reports_a_tampered_balance(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    await _adjust(client, await api_token(client, admin), resident.id, 10)
    assert (await audit_ledger()).clean
    await User.filter(id=resident.id).update(balance=99)
    report = await audit_ledger()
    assert not report.clean
    assert any("balance 99" in p for p in report.problems)
    await User.filter(id=resident.id).update(balance=10)


async def test_rule_caps_are_edited_in_the_console(client):
    village = await make_village()
    town_admin = await make_user(Role.TOWN_ADMIN, town=await village.town)
    token = await web_login(client, town_admin)
    form = {"csrf_token": token}
    for kind in ("checkin", "patrol", "pledge", "report"):
        form.update({f"{kind}_points": "10", f"{kind}_cap_day": "", f"{kind}_cap_month": "",
                     f"{kind}_cap_year": ""})
    form["checkin_cap_day"] = "20"
    form["report_needs_review"] = "on"
    response = await client.post(f"/console/towns/{village.town_id}/rules", data=form)
    assert response.status_code == 303
    rule = await EarningRule.get(town_id=village.town_id, kind="checkin")
    assert rule.cap_day == 20 and rule.cap_month is None and not rule.needs_review
    assert (await EarningRule.get(town_id=village.town_id, kind="report")).needs_review
    assert await AuditEvent.filter(tag="ledger:rule:update").count() == 4


async def test_admins_cannot_adjust_themselves_or_staff(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    staff = await make_user(Role.STAFF, village)
    headers = await api_token(client, admin)
    own = await _adjust(client, headers, admin.id, 1000)
    assert own.status_code == 403
    other = await _adjust(client, headers, staff.id, 1000)
    assert other.status_code == 409 and other.json()["error"]["code"] == "invalid_state"
    assert await LedgerEntry.all().count() == 0


async def test_a_bad_cap_leaves_every_rule_unchanged(client):
    village = await make_village()
    town_admin = await make_user(Role.TOWN_ADMIN, town=await village.town)
    token = await web_login(client, town_admin)
    form = {"csrf_token": token}
    for kind in ("checkin", "patrol", "pledge", "report"):
        form.update({f"{kind}_points": "99", f"{kind}_cap_day": "", f"{kind}_cap_month": "",
                     f"{kind}_cap_year": ""})
    form["report_cap_day"] = "-1"
    await client.post(f"/console/towns/{village.town_id}/rules", data=form)
    points = await EarningRule.filter(town_id=village.town_id).values_list("points", flat=True)
    assert 99 not in points
