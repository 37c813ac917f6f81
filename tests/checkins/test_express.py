"""The express check-in (issue 13): scans written in batches, one statement (PostgreSQL) or
one hop of the SQLite thread each. It writes exactly what the ordinary path writes, gives
way to it for everything but a plain success, and a batch commits whole or not at all."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from tortoise import connections

from tests.conftest import BACKEND
from tests.factories import api_token, make_event, make_user, make_village
from torreya.checkins import express, service
from torreya.checkins.codes import CodeError, poster_token, read_checkin_token
from torreya.checkins.events import event_by_id
from torreya.models import (
    Checkin,
    CheckinRefusal,
    EarningRule,
    EarningTotal,
    LedgerEntry,
    OutboxMessage,
    Role,
    User,
)
from torreya.security import read_access_token
from torreya.trust import encoding, sealing

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _login(client, settings, user: User):
    """An API login: its bearer headers and the claims the express path is given."""
    headers = await api_token(client, user)
    claims = read_access_token(settings, headers["Authorization"].removeprefix("Bearer "))
    return headers, claims


async def express_only(settings, claims, token: str) -> service.CheckinResult | None:
    """The batch path alone, as service.check_in tries it first: its result, or None where
    it gives way to the ordinary path (having written nothing)."""
    try:
        code = read_checkin_token(settings, token)
    except CodeError:
        return None
    event = await event_by_id(code.event_id)
    if event is None or event.qr_mode != code.mode or claims.helper_id is not None:
        return None
    written = await express.check_in(event, mode=code.mode, login=claims)
    return None if written is None else service.CheckinResult(
        written[0], event, claims.user_id, event.points, written[1])


def _poster(settings, event) -> str:
    return poster_token(settings, event_id=event.id, ends_at=event.ends_at)


async def _written() -> tuple[int, int, int, int]:
    return (await Checkin.all().count(), await LedgerEntry.all().count(),
            await EarningTotal.all().count(), await OutboxMessage.all().count())


async def test_express_writes_what_the_ordinary_path_writes(client, settings, monkeypatch):
    village = await make_village()
    event = await make_event(village, points=15, title="防溺水宣传")
    fast, slow = await make_user(village=village), await make_user(village=village)
    _headers, claims = await _login(client, settings, fast)
    token = _poster(settings, event)
    done = await express_only(settings, claims, token)
    assert done is not None and (done.points, done.balance, done.user_id) == (15, 15, fast.id)
    _headers, slow_claims = await _login(client, settings, slow)

    async def no() -> bool:
        return False

    monkeypatch.setattr(express, "may_seal_in_database", no)  # the ordinary path, then
    async def person() -> tuple[User, None]:
        return await User.get(id=slow.id), None

    await service.check_in(settings, token=token, login=slow_claims, person=person)
    monkeypatch.undo()

    def same(row: dict, user: User) -> dict:
        """The row but what differs between two residents and two moments."""
        mine = {k: "ME" for k in ("user_id", "actor_id") if row.get(k) == user.id}
        return {k: v for k, v in row.items()
                if k not in ("id", "created_at", "seal", "idem_key")} | mine

    for user in (fast, slow):
        entry = await LedgerEntry.get(user_id=user.id).values()
        assert encoding.seal_ok(sealing.key(), entry), "the seal must verify"
        assert entry["idem_key"] == f"checkin:{event.id}:{user.id}"
    fast_entry = await LedgerEntry.get(user_id=fast.id).values()
    slow_entry = await LedgerEntry.get(user_id=slow.id).values()
    assert same(fast_entry, fast) == same(slow_entry, slow)
    assert fast_entry["memo"] == "防溺水宣传" and fast_entry["balance_after"] == 15
    fast_checkin = await Checkin.get(user_id=fast.id).values()
    slow_checkin = await Checkin.get(user_id=slow.id).values()
    assert same(fast_checkin, fast) == same(slow_checkin, slow)

    async def totals(user: User) -> set:
        return set(await EarningTotal.filter(user_id=user.id).values_list(
            "kind", "period", "total", "town_id", "village_id"))

    assert await totals(fast) == await totals(slow) and len(await totals(fast)) == 8
    for user in (fast, slow):
        assert (await User.get(id=user.id)).lifetime_points == 15

    def message(m: OutboxMessage, user: User) -> tuple:
        data = {k: v for k, v in m.payload.items() if k not in ("id", "created_at")}
        assert data["user_id"] == user.id
        return m.event_type, m.town_id, data | {"user_id": "ME"}

    messages = await OutboxMessage.all().order_by("id")
    assert [m.event_type for m in messages] == ["checkin.created", "ledger.entry_created"] * 2
    assert [message(m, fast) for m in messages[:2]] == [message(m, slow) for m in messages[2:]]
    assert messages[1].payload["id"] == fast_entry["id"]


async def test_a_crowd_of_scans_all_count_once(client, settings):
    village = await make_village()
    events = [await make_event(village, points=p) for p in (10, 5)]
    people = [await make_user(village=village) for _ in range(30)]
    logins = [await _login(client, settings, person) for person in people]
    scans = [express_only(settings, claims, _poster(settings, event))
             for event in events for _headers, claims in logins]
    results = await asyncio.gather(*scans)
    assert all(r is not None for r in results)
    assert sorted({r.id for r in results}) == sorted(r.id for r in results)  # distinct
    for person in people:
        assert (await User.get(id=person.id)).balance == 15
        balances = await LedgerEntry.filter(user_id=person.id).order_by("id").values_list(
            "balance_after", flat=True)
        assert balances in ([10, 15], [5, 15])  # in the order they were written
    assert await Checkin.all().count() == 60


async def test_anything_but_a_plain_success_is_left_to_the_ordinary_path(client, settings):
    """None, with nothing written: the ordinary path then says why."""
    village = await make_village()
    event = await make_event(village)
    token = _poster(settings, event)

    async def gives_way(claims, scan_token=token) -> None:
        before = await _written()
        assert await express_only(settings, claims, scan_token) is None
        assert await _written() == before

    again = await make_user(village=village)
    _h, claims = await _login(client, settings, again)
    assert await express_only(settings, claims, token) is not None
    await gives_way(claims)  # already checked in

    left = await make_user(village=village)
    _h, claims = await _login(client, settings, left)
    await User.filter(id=left.id).update(is_active=False)
    await gives_way(claims)

    outsider = await make_user(village=await make_village())  # another town
    _h, claims = await _login(client, settings, outsider)
    await gives_way(claims)

    staff = await make_user(Role.STAFF, village)
    _h, claims = await _login(client, settings, staff)
    await gives_way(claims)

    person = await make_user(village=village)
    _h, claims = await _login(client, settings, person)
    await gives_way(claims, "not-a-code")
    await gives_way(claims, _poster(settings, await make_event(village, points=0)))
    ended = await make_event(village, opens_in=timedelta(hours=-4))
    await gives_way(claims, _poster(settings, ended))
    await EarningRule.filter(town_id=village.town_id, kind="checkin").update(cap_day=5)
    await gives_way(claims)  # 10 points over a cap of 5
    assert await CheckinRefusal.all().count() == 0  # the ordinary path logs refusals


async def test_ended_logins_are_refused_as_before(client, settings):
    village = await make_village()
    event = await make_event(village)
    resident = await make_user(village=village)
    phone, claims = await _login(client, settings, resident)
    tablet, tablet_claims = await _login(client, settings, resident)
    ended = await client.post(f"/api/v1/me/sessions/{claims.sid}/revoke", headers=tablet)
    assert ended.status_code == 204
    assert await express_only(settings, claims, _poster(settings, event)) \
        is None
    answer = await client.post("/api/v1/checkins", headers=phone,
                               json={"token": _poster(settings, event)})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthenticated"
    # An ended login is told so before a bad body is.
    assert (await client.post("/api/v1/checkins", headers=phone, json={})).status_code == 401
    assert (await client.post("/api/v1/checkins", headers=tablet, json={})).status_code == 422
    # Logging out everywhere (the generation) ends the other one too.
    assert (await client.post("/api/v1/me/sessions/revoke", headers=tablet)).status_code == 204
    assert await express_only(settings, tablet_claims, _poster(settings, event)) is None
    assert (await client.post("/api/v1/checkins", headers=tablet,
                              json={"token": _poster(settings, event)})).status_code == 401
    assert await LedgerEntry.all().count() == 0


async def test_a_cap_is_reached_at_the_cap_not_before(client, settings):
    village = await make_village()
    await EarningRule.filter(town_id=village.town_id, kind="checkin").update(cap_day=20)
    events = [await make_event(village, title=f"第{n}场") for n in range(3)]
    resident = await make_user(village=village)
    headers, claims = await _login(client, settings, resident)
    for event in events[:2]:  # 10, then 20: at the cap is allowed
        assert await express_only(settings, claims, _poster(settings, event)) is not None
    answer = await client.post("/api/v1/checkins", headers=headers,
                               json={"token": _poster(settings, events[2])})
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "cap_reached"
    assert (await User.get(id=resident.id)).balance == 20


async def test_caps_hold_when_one_resident_scans_many_events_at_once(client, settings):
    village = await make_village()
    await EarningRule.filter(town_id=village.town_id, kind="checkin").update(cap_day=30)
    events = [await make_event(village, title=f"第{n}场") for n in range(8)]
    resident = await make_user(village=village)
    headers = await api_token(client, resident)
    answers = await asyncio.gather(*[
        client.post("/api/v1/checkins", headers=headers, json={"token": _poster(settings, e)})
        for e in events])
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 3 + [409] * 5, codes
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
        "cap_reached"}
    assert (await User.get(id=resident.id)).balance == 30
    assert await CheckinRefusal.filter(reason="cap_reached").count() == 5


async def _refuse_ledger_inserts() -> None:
    db = connections.get("default")
    if BACKEND == "postgres":
        await db.execute_script(
            "CREATE OR REPLACE FUNCTION torreya_test_refuse() RETURNS trigger AS $$"
            " BEGIN RAISE EXCEPTION 'injected fault'; END; $$ LANGUAGE plpgsql;"
            " CREATE TRIGGER torreya_test_refuse BEFORE INSERT ON ledger_entries"
            " FOR EACH ROW EXECUTE FUNCTION torreya_test_refuse()")
    else:  # not RAISE(ABORT): SQLite reports that as a constraint, i.e. a duplicate
        await db.execute_script("CREATE TRIGGER torreya_test_refuse BEFORE INSERT ON"
                                " ledger_entries BEGIN SELECT torreya_injected_fault(); END")


async def test_a_batch_that_fails_writes_nothing_and_every_scan_says_so(client, settings):
    village = await make_village()
    event = await make_event(village)
    people = [await make_user(village=village) for _ in range(5)]
    headers = [await api_token(client, p) for p in people]
    await _refuse_ledger_inserts()
    token = _poster(settings, event)
    answers = await asyncio.gather(*[client.post("/api/v1/checkins", headers=h,
                                                 json={"token": token}) for h in headers])
    assert [a.status_code for a in answers] == [500] * 5
    assert {a.json()["error"]["code"] for a in answers} == {"server_error"}
    assert await _written() == (0, 0, 0, 0)
    assert all(u.balance == 0 for u in await User.filter(id__in=[p.id for p in people]))
    suffix = " ON ledger_entries" if BACKEND == "postgres" else ""
    await connections.get("default").execute_script(f"DROP TRIGGER torreya_test_refuse{suffix}")
    answers = await asyncio.gather(*[client.post("/api/v1/checkins", headers=h,
                                                 json={"token": token}) for h in headers])
    assert [a.status_code for a in answers] == [201] * 5
    assert await Checkin.filter(event_id=event.id).count() == 5
