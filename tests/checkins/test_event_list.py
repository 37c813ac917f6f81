"""GET /villages/{id}/events (issue 29): an integrator learns the village's events without
creating one; staff and the village's residents see them, nobody else; times are RFC 3339 on
both databases; a resident is not handed the poster's code."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from tests.factories import api_token, make_event, make_user, make_village
from torreya.db import now
from torreya.models import Role, Town
from torreya.models.checkins import QrMode
from torreya.settings import LOCAL


async def _list(client, headers, village_id, query=""):
    return await client.get(f"/api/v1/villages/{village_id}/events{query}", headers=headers)


async def test_staff_and_residents_list_the_events_in_a_range(client):
    village = await make_village()
    old = await make_event(village, opens_in=timedelta(days=-60), title="上季度演练")
    today = await make_event(village, title="反诈宣传进村")
    rotating = await make_event(village, opens_in=timedelta(days=3), title="消防培训",
                                kind="training", qr_mode=QrMode.ROTATING)
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village)

    answer = await _list(client, await api_token(client, staff), village.id)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    # the last 30 days onwards by default, earliest first
    assert [i["id"] for i in items] == [today.id, rotating.id]
    first = items[0]
    assert first["title"] == "反诈宣传进村" and first["kind"] == "campaign"
    assert first["checkin_url"].startswith("http://testserver/c/")
    assert first["checkout"] is False
    assert items[1]["checkin_url"] is None  # a rotating code is shown, not printed
    for item in items:  # RFC 3339: a T and an offset, on both databases
        for key in ("starts_at", "ends_at"):
            assert "T" in item[key] and datetime.fromisoformat(item[key]).utcoffset() \
                is not None, item[key]

    mine = await _list(client, await api_token(client, resident), village.id)
    assert mine.status_code == 200
    assert [i["id"] for i in mine.json()["items"]] == [today.id, rotating.id]
    # a resident checks in at the event: the poster's code is not sent ahead
    assert all(i["checkin_url"] is None for i in mine.json()["items"])

    start = old.starts_at.astimezone(LOCAL).date().isoformat()
    back = await _list(client, await api_token(client, staff), village.id,
                       f"?from={start}&to={start}")
    assert [i["id"] for i in back.json()["items"]] == [old.id]


async def test_a_moment_with_its_offset_and_an_unencoded_plus_both_work(client):
    village = await make_village()
    event = await make_event(village)
    headers = await api_token(client, await make_user(Role.STAFF, village))
    moment = (now() - timedelta(hours=2)).astimezone(LOCAL).replace(microsecond=0)
    encoded = await _list(client, headers, village.id, f"?from={quote(moment.isoformat())}")
    assert [i["id"] for i in encoded.json()["items"]] == [event.id]
    # "+08:00" sent as is arrives as " 08:00": read as the client meant it
    plain = await _list(client, headers, village.id, f"?from={moment.isoformat()}")
    assert plain.status_code == 200, plain.text
    assert [i["id"] for i in plain.json()["items"]] == [event.id]
    later = (now() + timedelta(days=1)).astimezone(LOCAL).replace(microsecond=0)
    none = await _list(client, headers, village.id, f"?from={quote(later.isoformat())}")
    assert none.json()["items"] == []


async def test_other_villages_and_towns_see_nothing(client):
    village = await make_village()
    await make_event(village)
    neighbour = await make_village(town=await Town.get(id=village.town_id))
    other_town = await make_village()
    for outsider in (await make_user(village=neighbour), await make_user(Role.STAFF, neighbour),
                     await make_user(Role.TOWN_ADMIN, other_town)):
        answer = await _list(client, await api_token(client, outsider), village.id)
        assert answer.status_code == 404, (outsider.role, answer.text)
        assert answer.json()["error"]["code"] == "not_found"
    town_admin = await make_user(Role.TOWN_ADMIN, town=await Town.get(id=village.town_id))
    assert (await _list(client, await api_token(client, town_admin), village.id)
            ).status_code == 200
    assert (await _list(client, {}, village.id)).status_code == 401


@pytest.mark.parametrize("query, field, says", [
    ("?from=yesterday", "from", "must be a date"),
    ("?from=2026-13-40", "from", "must be a date"),
    ("?from=2026-12-01T08:00:00", "from", "offset"),
    ("?from=2026-12-10&to=2026-12-01", "to", "must be after"),
    ("?from=2026-01-01&to=2027-06-01", "to", "366 days"),
    ("?from=1900-01-01", "from", "out of range"),
])
async def test_a_bad_range_is_refused_naming_the_field(client, query, field, says):
    village = await make_village()
    headers = await api_token(client, await make_user(Role.STAFF, village))
    answer = await _list(client, headers | {"Accept-Language": "en"}, village.id, query)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request" and error["field"] == field, error
    assert says in error["message"], error
    chinese = await _list(client, headers, village.id, query)
    assert chinese.json()["error"]["message"] != error["message"]  # zh-CN by default
