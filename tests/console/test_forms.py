"""Issue 27: a console form and its API endpoint are validated by one declaration (the
API's model), so they accept and refuse the same values with the same message."""

from __future__ import annotations

import html

import pytest

from tests.factories import api_token, make_user, make_village, web_login
from torreya.models import Event, Pledge, Reward, Role

GOOD_EVENT = {"title": "防诈骗讲座", "kind": "training", "points": "5",
              "starts_at": "2030-01-01T09:00", "ends_at": "2030-01-01T11:00",
              "qr_mode": "static", "place": "村委会"}
AS_JSON = {"points": 5, "starts_at": "2030-01-01T09:00:00+08:00",
           "ends_at": "2030-01-01T11:00:00+08:00"}


@pytest.mark.parametrize(("field", "form_value", "json_value"), [
    ("title", "<b>讲座</b>", "<b>讲座</b>"),
    ("title", "", ""),
    ("title", "讲" * 121, "讲" * 121),
    ("kind", "party", "party"),
    ("points", "10001", 10001),
    ("points", "-1", -1),
    ("qr_mode", "sometimes", "sometimes"),
    ("starts_at", "1999-12-31T09:00", "1999-12-31T09:00:00+08:00"),
])
async def test_the_event_form_and_the_api_refuse_alike(client, field, form_value,
                                                         json_value):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    answer = await client.post(f"/api/v1/villages/{village.id}/events",
                               headers=await api_token(client, admin),
                               json={**GOOD_EVENT, **AS_JSON, field: json_value})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == field
    message = answer.json()["error"]["message"]
    csrf = await web_login(client, admin)
    page = await client.post(f"/villages/{village.id}/events",
                             data={**GOOD_EVENT, field: form_value, "csrf_token": csrf})
    assert page.status_code == 422 and message in html.unescape(page.text), message
    assert await Event.filter(village_id=village.id).count() == 0


async def test_a_good_form_makes_what_the_api_makes(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    made = await client.post(f"/api/v1/villages/{village.id}/events",
                             headers=await api_token(client, admin),
                             json={**GOOD_EVENT, **AS_JSON})
    assert made.status_code == 201
    csrf = await web_login(client, admin)
    page = await client.post(f"/villages/{village.id}/events",
                             data={**GOOD_EVENT, "remind_day_before": "on", "csrf_token": csrf})
    assert page.status_code == 303
    api_event, form_event = await Event.filter(village_id=village.id).order_by("id")
    for name in ("title", "kind", "points", "starts_at", "ends_at", "qr_mode", "place"):
        assert getattr(api_event, name) == getattr(form_event, name), name
    assert form_event.remind_day_before and not api_event.remind_day_before


async def test_the_reward_form_takes_empty_optional_fields_as_not_given(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    csrf = await web_login(client, admin)
    done = await client.post(f"/console/villages/{village.id}/rewards/new", data={
        "name": "毛巾", "cost": "15", "stock": "", "per_user_limit": "", "limit_period": "",
        "description": "", "category": "goods", "available_from": "", "available_until": "",
        "csrf_token": csrf})
    assert done.status_code == 303
    towel = await Reward.get(village_id=village.id)
    assert (towel.cost, towel.stock, towel.per_user_limit, towel.limit_period) == (
        15, None, None, None)
    await client.get(f"/console/villages/{village.id}/rewards")  # the first one's flash
    refused = await client.post(f"/console/villages/{village.id}/rewards/new", data={
        "name": "香皂", "cost": "0", "category": "goods", "csrf_token": csrf})
    shown = await client.get(refused.headers["location"])
    assert 'data-code="invalid_request">cost 不能小于 1。' in shown.text
    assert await Reward.filter(village_id=village.id).count() == 1


async def test_a_pledge_form_takes_one_confirmation_per_line_with_the_apis_limit(client):
    """A list field of a form (the confirmations box) is the API model's list: one line
    each, blank lines dropped, at most ten, refused in words rather than cut short."""
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    csrf = await web_login(client, admin)
    form = {"title": "反诈承诺", "text": "我承诺不信陌生来电。", "points": "3",
            "csrf_token": csrf}
    too_many = "\n".join(f"我已知晓第{n}条" for n in range(11))
    page = await client.post(f"/console/villages/{village.id}/pledges/new",
                             data={**form, "confirmations": too_many}, follow_redirects=True)
    assert "confirmations 项目太多（最多 10 项）" in page.text, page.text[-800:]
    assert await Pledge.filter(village_id=village.id).count() == 0
    done = await client.post(f"/console/villages/{village.id}/pledges/new",
                             data={**form, "confirmations": "我已知晓\n\n  不转账  \n"})
    assert done.status_code == 303
    pledge = await Pledge.get(village_id=village.id)
    assert pledge.confirmations == ["我已知晓", "不转账"] and pledge.points == 3
