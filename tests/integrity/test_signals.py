"""Integrity signals (issue 32): each pattern raises exactly one signal naming the right
residents, the ordinary pattern raises none, nothing is blocked, the audit stays clean."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta

import pytest
from PIL import Image

from tests.factories import api_token, csrf_from, make_event, make_user, make_village, web_login
from tests.signin.conftest import phone_inbox  # noqa: F401  (a fixture)
from tests.signin.flows import web_code_login
from torreya.checkins.codes import poster_token
from torreya.db import now
from torreya.integrity import detect, devices
from torreya.models import (
    DeviceSighting,
    FamilyHelper,
    LedgerEntry,
    OutboxMessage,
    Patrol,
    PatrolScan,
    Role,
    Signal,
    SignalStatus,
    SmsCode,
    Town,
    User,
)
from torreya.outbox import worker

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _signals(kind: str) -> list[Signal]:
    return await Signal.filter(kind=kind).order_by("id")


async def _raised() -> list[dict]:
    rows = await OutboxMessage.filter(event_type="signal.raised").order_by("id")
    return [r.payload if isinstance(r.payload, dict) else json.loads(r.payload) for r in rows]


# --- one device, many residents ----------------------------------------------------------

async def _self_checkin(client, settings, event, resident, **headers):
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    auth = await api_token(client, resident)
    return await client.post("/api/v1/checkins", headers={**auth, **headers},
                             json={"token": token})


async def test_one_phone_checking_in_five_neighbours_raises_one_signal(client, settings,
                                                                     monkeypatch):
    village = await make_village()
    event = await make_event(village, points=10)
    residents = [await make_user(village=village) for _ in range(6)]
    phone = {"User-Agent": "Mozilla/5.0 (Linux; Android 9; Redmi 7A)"}
    for resident in residents[:5]:
        answer = await _self_checkin(client, settings, event, resident, **phone)
        assert answer.status_code == 201  # nothing is blocked
    # (the app's own flusher may have written some of them already, on a slow machine)
    await devices.flush()
    seen = await DeviceSighting.filter(event_id=event.id).values_list("user_id", flat=True)
    assert {r.id for r in residents[:5]} <= set(seen)  # (rows of an earlier test may share
    # this event's id on PostgreSQL, whose ids restart; the signal below names only these)
    [signal] = await _signals("one_device_many_residents")
    assert sorted(signal.user_ids) == sorted(r.id for r in residents[:5])
    assert signal.village_id == village.id and signal.status == SignalStatus.OPEN
    assert signal.evidence["event_id"] == event.id and signal.evidence["most_in_window"] == 5
    assert signal.evidence["agent"] == phone["User-Agent"]
    assert signal.evidence["address"] == "203.0.113.7"
    # A sixth: the same signal, now naming six, once a minute has passed since its last
    # update (a crowd is not read again every flush); one signal.raised all along.
    assert (await _self_checkin(client, settings, event, residents[5], **phone)).status_code == 201
    await devices.flush()
    [signal] = await _signals("one_device_many_residents")
    assert len(signal.user_ids) == 5
    monkeypatch.setattr(detect, "UPDATE_EVERY", 0.0)
    await devices.flush()
    [signal] = await _signals("one_device_many_residents")
    assert sorted(signal.user_ids) == sorted(r.id for r in residents)
    assert [m["id"] for m in await _raised()] == [signal.id]
    for resident in residents:
        assert (await User.get(id=resident.id)).balance == 10


async def test_two_flushes_at_once_raise_one_signal_and_neither_fails(client, settings,
                                                                      monkeypatch):
    """The app's own flusher and another flush may look at the same device at the same
    moment: one signal, and neither flush fails (one did, with a KeyError, on a busy CI)."""
    village = await make_village()
    event = await make_event(village, points=10)
    phone = {"User-Agent": "Mozilla/5.0 (Linux; Android 9; Redmi 7A)"}
    for n in range(6):
        resident = await make_user(village=village)
        assert (await _self_checkin(client, settings, event, resident, **phone)
                ).status_code == 201
        if n == 4:
            await devices.flush()  # five: the signal is raised
    await devices.flush()  # the sixth is looked at again later (the signal is new)
    monkeypatch.setattr(detect, "UPDATE_EVERY", 0.0)
    assert await asyncio.gather(devices.flush(), devices.flush()) == [0, 0]
    [signal] = await _signals("one_device_many_residents")
    assert len(signal.user_ids) == 6


async def test_neighbours_on_their_own_phones_raise_nothing(client, settings):
    village = await make_village()
    event = await make_event(village, points=10)
    for n in range(6):  # one shared address (the village Wi-Fi), a phone each
        resident = await make_user(village=village)
        answer = await _self_checkin(client, settings, event, resident,
                                     **{"User-Agent": f"Mozilla/5.0 (Linux; Android 9; Phone{n})"})
        assert answer.status_code == 201
    await devices.flush()
    assert await _signals("one_device_many_residents") == []


async def test_a_browsers_device_cookie_is_the_device(client, settings):
    """Five residents on one browser (the cookie the check-in page set) are one device, even
    though the address changes; different browsers are not, even on one address."""
    village = await make_village()
    event = await make_event(village, points=5)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    residents = [await make_user(village=village) for _ in range(5)]
    for resident in residents:
        await web_login(client, resident)
        page = await client.get(f"/c/{token}")
        done = await client.post(f"/c/{token}", data={"csrf_token": csrf_from(page.text)})
        assert done.status_code == 201
        client.cookies.delete("torreya")  # logged out; the device cookie stays
    assert devices.COOKIE in client.cookies
    await devices.flush()
    [signal] = await _signals("one_device_many_residents")
    assert signal.evidence["device"] == "cookie"
    assert sorted(signal.user_ids) == sorted(r.id for r in residents)


async def test_a_family_helper_checking_in_for_their_elders_is_not_a_crowd(
        client, settings, phone_inbox):  # noqa: F811
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    elders = [await make_user(village=village, password_hash=None,
                              phone=f"+861390000{n:04d}") for n in range(5)]
    helper_phone = "+8613700000099"
    for elder in elders:
        await FamilyHelper.create(member_id=elder.id, phone=helper_phone, name="儿子",
                                  added_by_id=staff.id)
    event = await make_event(village, points=5)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    for elder in elders:
        client.cookies.delete("torreya")
        # a login a minute apart (the resend limit), as a helper's day would go
        await SmsCode.filter(phone=helper_phone).update(created_at=now() - timedelta(minutes=2))
        chooser = await web_code_login(client, phone_inbox, helper_phone)
        await client.post("/login/choose", data={"user_id": str(elder.id),
                                                 "csrf_token": csrf_from(chooser.text)})
        page = await client.get(f"/c/{token}")
        done = await client.post(f"/c/{token}", data={"csrf_token": csrf_from(page.text)})
        assert done.status_code == 201
        assert (await User.get(id=elder.id)).balance == 5
    await devices.flush()
    assert await _signals("one_device_many_residents") == []


# --- adjustments concentrated ------------------------------------------------------------

async def _adjust(client, headers, user_id, delta, memo="表彰"):
    answer = await client.post(f"/api/v1/users/{user_id}/adjustments", headers=headers,
                               json={"delta": delta, "memo": memo})
    assert answer.status_code == 201, answer.text


async def test_three_additions_to_one_friend_raise_one_signal(client):
    village = await make_village()
    clerk = await make_user(Role.VILLAGE_ADMIN, village, display_name="刘会计")
    friend = await make_user(village=village)
    headers = await api_token(client, clerk)
    for _ in range(2):
        await _adjust(client, headers, friend.id, 20)
    await _adjust(client, headers, friend.id, -5, "更正")  # a correction down is not a gift
    await worker.dispatch()
    assert await _signals("adjustments_concentrated") == []
    await _adjust(client, headers, friend.id, 30)
    await worker.dispatch()
    [signal] = await _signals("adjustments_concentrated")
    assert signal.user_ids == [friend.id] and signal.evidence["actor_id"] == clerk.id
    assert signal.evidence["count"] == 3 and signal.evidence["points"] == 70
    await _adjust(client, headers, friend.id, 10)
    await worker.dispatch()
    [signal] = await _signals("adjustments_concentrated")
    assert signal.evidence["count"] == 4
    assert (await User.get(id=friend.id)).balance == 75  # nothing reversed


async def test_additions_spread_over_residents_raise_nothing(client):
    village = await make_village()
    clerk = await make_user(Role.VILLAGE_ADMIN, village)
    headers = await api_token(client, clerk)
    for _ in range(4):
        await _adjust(client, headers, (await make_user(village=village)).id, 20)
    await worker.dispatch()
    assert await _signals("adjustments_concentrated") == []


async def test_an_addition_to_ones_own_family_raises_a_signal_at_once(client):
    village = await make_village()
    clerk = await make_user(Role.VILLAGE_ADMIN, village, phone="+8613800000077")
    mother = await make_user(village=village)
    await FamilyHelper.create(member_id=mother.id, phone="+8613800000077", name="女儿")
    await _adjust(client, await api_token(client, clerk), mother.id, 10)
    await worker.dispatch()
    [signal] = await _signals("adjustments_concentrated")
    assert signal.user_ids == [mother.id]
    assert signal.evidence["family_link"] == "actor_helps_resident"


# --- duplicate photos --------------------------------------------------------------------

def _photo(seed: int, size=(1200, 900), quality=90) -> bytes:
    image = Image.new("RGB", (64, 48))
    image.putdata([((x * 7 + seed * 31) % 256, (y * 11 + seed * 17) % 256, (x * y) % 256)
                   for y in range(48) for x in range(64)])
    out = io.BytesIO()
    image.resize(size).save(out, format="JPEG", quality=quality)
    return out.getvalue()


async def _report(client, resident, photo: bytes):
    token = await web_login(client, resident)
    answer = await client.post("/reports/new", data={
        "csrf_token": token, "category": "hazard", "description": "路灯坏了",
        "location": "村口", "file_anyway": "1"},  # past the suggestion to follow instead
        files={"photo": ("p.jpg", photo, "image/jpeg")})
    assert answer.status_code == 303, answer.text
    client.cookies.delete("torreya")


async def test_the_same_photo_filed_by_another_resident_raises_one_signal(client):
    village = await make_village()
    first, second, third = [await make_user(village=village) for _ in range(3)]
    await _report(client, first, _photo(1))
    await _report(client, first, _photo(1))  # the same resident again: not this signal
    await _report(client, third, _photo(2))  # another lamp
    await worker.dispatch()
    assert await _signals("duplicate_photo") == []
    # resized and re-encoded, by someone else
    await _report(client, second, _photo(1, size=(800, 600), quality=60))
    await worker.dispatch()
    [signal] = await _signals("duplicate_photo")
    assert sorted(set(signal.user_ids)) == sorted({first.id, second.id})
    assert len(signal.evidence["earlier"]) == 2  # both of the first resident's reports
    assert all(e["user_id"] == first.id for e in signal.evidence["earlier"])


def test_a_photos_print_survives_resizing_not_another_photo():
    one, again, other = (detect.photo_print(_photo(1)),
                         detect.photo_print(_photo(1, size=(640, 480), quality=40)),
                         detect.photo_print(_photo(5)))
    assert detect.distance(one, again) <= 6 < detect.distance(one, other)


# --- patrol pace -------------------------------------------------------------------------

async def _patrol(client, *, spacing: timedelta):
    from tests.community.test_patrols import Crew, _walk

    crew = await Crew().build(client)
    patrol = await crew.start(client)
    await _walk(client, crew, patrol, plates=3, minutes=90)
    scans = await PatrolScan.filter(patrol_id=patrol["id"]).order_by("id")
    start = now() - timedelta(minutes=60)
    for n, scan in enumerate(scans):
        await PatrolScan.filter(id=scan.id).update(created_at=start + n * spacing)
    approved = await client.post(f"/api/v1/patrols/{patrol['id']}/approve",
                                 headers=await api_token(client, crew.admin))
    assert approved.status_code == 200
    await worker.dispatch()
    return crew, patrol


async def test_plates_scanned_faster_than_the_route_can_be_walked(client):
    crew, patrol = await _patrol(client, spacing=timedelta(seconds=20))
    [signal] = await _signals("patrol_pace")
    assert signal.user_ids == [crew.members[0].id]
    assert signal.evidence["patrol_id"] == patrol["id"]
    assert [f["seconds"] for f in signal.evidence["too_fast"]] == [20, 20]
    assert (await Patrol.get(id=patrol["id"])).status == "approved"  # not blocked


async def test_a_patrol_at_walking_pace_raises_nothing(client):
    await _patrol(client, spacing=timedelta(minutes=8))
    assert await _signals("patrol_pace") == []


# --- earning outliers --------------------------------------------------------------------

async def test_a_resident_earning_far_above_the_village_raises_one_signal(client, settings):
    village = await make_village()
    ordinary = [await make_user(village=village) for _ in range(30)]
    star = await make_user(village=village)
    busy = await make_user(village=village)
    events = [await make_event(village, points=p) for p in (10, 200)]
    # every resident earned 10; the busy one 4 × 10 more, the star 200 more
    for resident in [*ordinary, busy, star]:
        await _credit(settings, events[0], resident)
    await _credit(settings, events[1], star)
    for _ in range(4):
        extra = await make_event(village, points=10)
        await _credit(settings, extra, busy)
    assert await detect.earning_outliers(village.town_id) == 1
    assert await detect.earning_outliers(village.town_id) == 1  # the same incident again
    [signal] = await _signals("earning_outlier")
    assert signal.user_ids == [star.id] and signal.evidence["points"] == 210
    assert signal.evidence["median"] == 10 and signal.evidence["residents"] == 32


async def _credit(settings, event, resident):
    from torreya.checkins.service import _check_in

    await _check_in(event, resident, method="card", staff=None)


async def test_too_few_earning_residents_raise_no_outlier(client, settings):
    village = await make_village()
    star = await make_user(village=village)
    await _credit(settings, await make_event(village, points=500), star)
    for _ in range(5):
        await _credit(settings, await make_event(village, points=1),
                      await make_user(village=village))
    assert await detect.earning_outliers(village.town_id) == 0


# --- the queue: list and resolve ---------------------------------------------------------

async def test_a_signal_is_listed_resolved_once_and_kept_to_its_village(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    staff = await make_user(Role.STAFF, village)
    clerk = await make_user(Role.VILLAGE_ADMIN, village)
    friend = await make_user(village=village)
    elsewhere = await make_user(Role.VILLAGE_ADMIN, await make_village(
        await Town.get(id=village.town_id)))
    h_admin = await api_token(client, admin)
    for _ in range(3):
        await _adjust(client, await api_token(client, clerk), friend.id, 10)
    await worker.dispatch()
    listed = await client.get(f"/api/v1/villages/{village.id}/signals?status=open",
                              headers=await api_token(client, staff))
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["kind"] == "adjustments_concentrated" and item["user_ids"] == [friend.id]
    assert item["evidence"]["actor_id"] == clerk.id and item["status"] == "open"
    # staff may see, not resolve; another village's admin sees nothing; a resident neither
    assert (await client.post(f"/api/v1/signals/{item['id']}/resolve", json={
        "decision": "dismiss"}, headers=await api_token(client, staff))).status_code == 403
    other = await api_token(client, elsewhere)
    assert (await client.post(f"/api/v1/signals/{item['id']}/resolve", json={
        "decision": "dismiss"}, headers=other)).status_code == 404
    assert (await client.get(f"/api/v1/villages/{village.id}/signals",
                             headers=other)).status_code == 404
    assert (await client.get(f"/api/v1/villages/{village.id}/signals",
                             headers=await api_token(client, friend))).status_code == 403
    bad = await client.post(f"/api/v1/signals/{item['id']}/resolve", headers=h_admin,
                            json={"decision": "ignore"})
    assert bad.status_code == 422
    done = await client.post(f"/api/v1/signals/{item['id']}/resolve", headers=h_admin,
                             json={"decision": "dismiss", "note": "年终表彰，已核实"})
    assert done.status_code == 200 and done.json() == {"id": item["id"], "status": "dismissed"}
    again = await client.post(f"/api/v1/signals/{item['id']}/resolve", headers=h_admin,
                              json={"decision": "confirm"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    assert (await client.get(f"/api/v1/villages/{village.id}/signals?status=open",
                             headers=h_admin)).json()["items"] == []
    # Dismissed: the same evidence does not bring it back; three new additions do.
    await detect.concentrated_adjustments(
        (await LedgerEntry.filter(user_id=friend.id).order_by("-id").first()).id)
    assert await Signal.filter(status="open").count() == 0
    for _ in range(3):
        await _adjust(client, await api_token(client, clerk), friend.id, 10)
    await worker.dispatch()
    assert await Signal.filter(status="open").count() == 1
    assert await Signal.filter(kind="adjustments_concentrated").count() == 2


async def test_an_addition_within_ones_own_household_raises_a_signal(client):
    """The clerk is a villager too: his resident account (his phone) is in his father's
    household, and his clerk's account adds to his father's points."""
    from torreya.models import Household, HouseholdMember

    village = await make_village()
    clerk = await make_user(Role.VILLAGE_ADMIN, village, phone="+8613800000088")
    himself = await make_user(village=village, phone="+8613800000088")
    father = await make_user(village=village)
    neighbour = await make_user(village=village)
    home = await Household.create(town_id=village.town_id, village=village, name="钱家",
                                  head=father)
    for person in (father, himself):
        await HouseholdMember.create(household=home, user=person, joined_at=now())
    headers = await api_token(client, clerk)
    await _adjust(client, headers, neighbour.id, 10)  # not family: nothing
    await worker.dispatch()
    assert await _signals("adjustments_concentrated") == []
    await _adjust(client, headers, father.id, 10)
    await worker.dispatch()
    [signal] = await _signals("adjustments_concentrated")
    assert signal.user_ids == [father.id] and signal.evidence["family_link"] == "same_household"


async def test_a_crowd_is_found_in_sightings_read_a_page_at_a_time(app, monkeypatch):
    """One address with 1,300 sightings in three hours (a village's Wi-Fi): the most
    different residents within ten minutes is the same read in pages of 500 or of 7 (pages
    that split sightings of one moment) as counted over all of them at once."""
    base = now() - timedelta(hours=3)
    rows = []
    for n in range(1300):
        user = 2000 + n % 9 if 600 <= n < 640 else 1000 + n % 3  # a crowd of nine, once
        rows.append(DeviceSighting(checkin_id=n, event_id=77, user_id=user, town_id=1,
                                   village_id=1, device="agent:wifi",
                                   created_at=base + timedelta(seconds=(n // 3) * 8)))
    await DeviceSighting.bulk_create(rows)
    window = timedelta(minutes=10)
    # the definition, counted over all of them: the residents within a window ending at each
    expected = max(len({r.user_id for r in rows
                        if end.created_at - window <= r.created_at <= end.created_at})
                   for end in rows)
    assert expected == 12  # the nine and the three regulars
    earliest = base - timedelta(seconds=1)
    for page in (500, 7):
        monkeypatch.setattr(detect, "PAGE", page)
        assert await detect._most_in_window(77, "agent:wifi", earliest, window, 5) == expected
    assert await detect._most_in_window(77, "agent:wifi", earliest, window, 13) == 0
    assert await detect._most_in_window(77, "agent:other", earliest, window, 1) == 0
