"""Committed if and only if recorded: a change, its audit record and its outbox messages
commit together. Faults are real database faults (a trigger that refuses the insert), not
mocks."""

from __future__ import annotations

import pytest
from tortoise import connections

from tests.conftest import BACKEND
from tests.factories import api_token, make_event, make_user, make_village
from torreya.checkins.codes import poster_token
from torreya.ledger.invariants import audit_ledger
from torreya.ledger.service import Posting, post_entry
from torreya.models import AuditEvent, LedgerEntry, OutboxMessage, Redemption, Role, User

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _refuse_inserts(table: str) -> None:
    """Make every INSERT into `table` fail, as a full disk or a broken table would."""
    db = connections.get("default")
    if BACKEND == "postgres":
        await db.execute_script(
            "CREATE OR REPLACE FUNCTION torreya_test_refuse() RETURNS trigger AS $$"
            " BEGIN RAISE EXCEPTION 'injected fault'; END; $$ LANGUAGE plpgsql;"
            f" CREATE TRIGGER torreya_test_refuse BEFORE INSERT ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION torreya_test_refuse()")
    else:
        await db.execute_script(f"CREATE TRIGGER torreya_test_refuse BEFORE INSERT ON {table}"
                                " BEGIN SELECT RAISE(ABORT, 'injected fault'); END")


async def _allow_inserts(table: str) -> None:
    db = connections.get("default")
    suffix = f" ON {table}" if BACKEND == "postgres" else ""
    await db.execute_script(f"DROP TRIGGER torreya_test_refuse{suffix}")


async def _types() -> list[str]:
    return [m.event_type for m in await OutboxMessage.all().order_by("id")]


async def test_check_in_writes_its_messages_with_the_entry(client, settings):
    village = await make_village()
    resident = await make_user(village=village)
    event = await make_event(village, points=5)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    response = await client.post("/api/v1/checkins", headers=await api_token(client, resident),
                                 json={"token": token})
    assert response.status_code == 201
    assert await _types() == ["checkin.created", "ledger.entry_created"]
    checkin_message, entry_message = await OutboxMessage.all().order_by("id")
    entry = await LedgerEntry.get(user_id=resident.id)
    assert entry_message.payload["id"] == entry.id
    assert entry_message.payload["balance_after"] == 5
    assert checkin_message.payload["event_id"] == event.id
    assert checkin_message.town_id == village.town_id


async def test_messages_the_database_writes_are_what_the_document_declares(client, settings):
    """`checkin.created` and `ledger.entry_created` come from triggers (migration 0013):
    the same fields, types and time format as the messages written from Python."""
    from datetime import datetime

    from torreya.checkins.codes import member_code
    from torreya.outbox.service import payload_fields

    village = await make_village()
    resident = await make_user(village=village)
    staff = await make_user(Role.STAFF, village)
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    event = await make_event(village, points=5)
    card_event = await make_event(village, points=3)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    assert (await client.post("/api/v1/checkins", headers=await api_token(client, resident),
                              json={"token": token})).status_code == 201
    scanned = await client.post(f"/api/v1/events/{card_event.id}/checkins",
                                headers=await api_token(client, staff),
                                json={"member_code": member_code(settings, user_id=resident.id,
                                                                   serial=resident.card_serial)})
    assert scanned.status_code == 201, scanned.text
    assert (await client.post(f"/api/v1/users/{resident.id}/adjustments",
                              headers=await api_token(client, admin),
                              json={"delta": -2, "memo": "更正"})).status_code == 201
    messages = await OutboxMessage.all().order_by("id")
    assert sorted(m.event_type for m in messages) == [
        "checkin.created", "checkin.created", "ledger.entry_created", "ledger.entry_created",
        "ledger.entry_created"]
    for message in messages:
        data = message.payload
        assert set(data) == payload_fields(message.event_type), message.event_type
        assert message.town_id == village.town_id
        assert data["village_id"] == village.id
        made = datetime.fromisoformat(data["created_at"])
        assert made.utcoffset() is not None
        assert made.isoformat() == data["created_at"]
    entries = [m.payload for m in messages if m.event_type == "ledger.entry_created"]
    ledger = await LedgerEntry.filter(user_id=resident.id).order_by("id")
    assert [(e["id"], e["delta"], e["balance_after"], e["proxy"], e["kind"]) for e in entries] \
        == [(e.id, e.delta, e.balance_after, e.proxy, e.kind) for e in ledger]
    assert [e["proxy"] for e in entries] == [False, True, False]
    assert [datetime.fromisoformat(e["created_at"]) for e in entries] == [
        e.created_at for e in ledger]
    card = [m.payload for m in messages if m.event_type == "checkin.created"][1]
    assert card["staff_id"] == staff.id and card["points"] == 3


@pytest.mark.parametrize("table", ["audit_events", "outbox"])
async def test_adjustment_is_all_or_nothing_when_a_record_cannot_be_written(client, table):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    headers = {**await api_token(client, admin), "Idempotency-Key": "award-1"}
    await _refuse_inserts(table)
    failed = await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                               json={"delta": 30, "memo": "表彰"})
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "server_error"
    assert (await User.get(id=resident.id)).balance == 0
    assert await LedgerEntry.all().count() == 0
    assert await AuditEvent.filter(tag="ledger:adjustment:create").count() == 0
    assert await OutboxMessage.all().count() == 0
    await _allow_inserts(table)
    # The client retries with its key: now done once, with everything recorded.
    retried = await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=headers,
                                json={"delta": 30, "memo": "表彰"})
    assert retried.status_code == 201
    entry = await LedgerEntry.get(user_id=resident.id)
    assert await AuditEvent.filter(tag="ledger:adjustment:create", entry_id=entry.id).count() == 1
    assert await _types() == ["ledger.entry_created"]


async def test_redemption_is_all_or_nothing_when_the_audit_cannot_be_written(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    admin_headers = await api_token(client, admin)
    await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=admin_headers,
                      json={"delta": 50, "memo": "初始"})
    reward = (await client.post(f"/api/v1/villages/{village.id}/rewards", headers=admin_headers,
                                json={"name": "大米", "cost": 20, "stock": 3})).json()
    before = await OutboxMessage.all().count()
    headers = await api_token(client, resident)  # a login is audited too: before the fault
    await _refuse_inserts("audit_events")
    failed = await client.post("/api/v1/redemptions", headers=headers,
                               json={"reward_id": reward["id"]})
    assert failed.status_code == 500
    await _allow_inserts("audit_events")
    assert (await User.get(id=resident.id)).balance == 50
    assert await Redemption.all().count() == 0
    assert await OutboxMessage.all().count() == before
    listed = (await client.get(f"/api/v1/villages/{village.id}/rewards", headers=headers)).json()
    assert listed["items"][0]["stock"] == 3


async def test_redeem_fulfil_cancel_each_leave_a_message(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village)
    admin_headers = await api_token(client, admin)
    await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=admin_headers,
                      json={"delta": 50, "memo": "初始"})
    reward = (await client.post(f"/api/v1/villages/{village.id}/rewards", headers=admin_headers,
                                json={"name": "大米", "cost": 20, "stock": 3})).json()
    headers = await api_token(client, resident)
    first = (await client.post("/api/v1/redemptions", headers=headers,
                               json={"reward_id": reward["id"]})).json()
    second = (await client.post("/api/v1/redemptions", headers=headers,
                                json={"reward_id": reward["id"]})).json()
    staff_headers = await api_token(client, staff)
    assert (await client.post(f"/api/v1/vouchers/{first['voucher_code']}/fulfil",
                              headers=staff_headers)).status_code == 200
    assert (await client.post(f"/api/v1/redemptions/{second['id']}/cancel",
                              headers=staff_headers)).status_code == 200
    types = await _types()
    assert types.count("redemption.created") == 2
    assert types.count("redemption.fulfilled") == 1
    assert types.count("redemption.cancelled") == 1
    cancelled = await OutboxMessage.get(event_type="redemption.cancelled")
    assert cancelled.payload["id"] == second["id"] and cancelled.payload["status"] == "cancelled"
    assert "voucher_code" not in cancelled.payload
    # The refund was made by staff for the resident: audited with the entry it made.
    refund = await LedgerEntry.get(kind="refund")
    assert await AuditEvent.filter(entry_id=refund.id,
                                   tag="rewards:redemption:cancel").count() == 1


async def test_audit_names_an_entry_made_by_an_admin_without_its_record(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    from tortoise.transactions import in_transaction

    # Behind the commands' back: an admin's entry written without its audit record.
    async with in_transaction() as connection:
        entry = await post_entry(Posting(user=resident, delta=9, kind="adjustment",
                                        idem_key="sneaky", actor=admin, earned=True), connection)
    report = await audit_ledger()
    assert not report.clean
    assert any(f"entry {entry.id} " in p and "no audit record" in p for p in report.problems)
    # Record it, as the command would have, and the audit is clean again.
    await AuditEvent.create(actor=admin, tag="ledger:adjustment:create", entry_id=entry.id,
                            town_id=village.town_id)
    assert (await audit_ledger()).clean


async def test_openapi_describes_what_each_event_sends(client, settings):
    from torreya.outbox.service import EVENT_TYPES

    doc = (await client.get("/api/v1/openapi.json")).json()
    assert set(doc["webhooks"]) == set(EVENT_TYPES)
    village = await make_village()
    resident = await make_user(village=village)
    event = await make_event(village, points=5)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    await client.post("/api/v1/checkins", headers=await api_token(client, resident),
                      json={"token": token})
    for message in await OutboxMessage.all():
        schema = doc["webhooks"][message.event_type]["post"]["requestBody"]["content"][
            "application/json"]["schema"]["properties"]["data"]
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        assert set(schema["properties"]) == set(message.payload)
        assert set(schema["required"]) == set(message.payload)
