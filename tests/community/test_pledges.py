"""Pledge campaigns: sign once, points once, certificate verifies, lists and CSV."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.factories import api_token, make_user, make_village, web_login
from torreya.db import now
from torreya.models import LedgerEntry, Pledge, PledgeSignature, Role

pytestmark = pytest.mark.usefixtures("clean_audit")

TEXT = "我承诺：不轻信陌生来电，不转账给陌生人，发现可疑情况及时报告。"


async def make_pledge(village, **over) -> Pledge:
    values = {"title": "反诈承诺书", "text": TEXT, "points": 20,
              "confirmations": ["我已安装国家反诈中心App"]}
    values.update(over)
    return await Pledge.create(village=village, town_id=village.town_id, **values)


async def _sign(client, headers, pledge_id, name="王秀英",
                confirmations=("我已安装国家反诈中心App",)):
    return await client.post(f"/api/v1/pledges/{pledge_id}/signatures", headers=headers,
                             json={"signed_name": name, "confirmations": list(confirmations)})


async def test_admin_creates_pledge_and_resident_signs(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    created = await client.post(f"/api/v1/villages/{village.id}/pledges",
                                headers=await api_token(client, admin),
                                json={"title": "反诈承诺书", "text": TEXT, "points": 20,
                                      "confirmations": ["我已安装国家反诈中心App"]})
    assert created.status_code == 201
    resident = await make_user(village=village)
    signed = await _sign(client, await api_token(client, resident), created.json()["id"])
    assert signed.status_code == 201
    body = signed.json()
    assert body["points"] == 20 and body["balance"] == 20
    assert body["certificate_url"].startswith("http://testserver/certificates/P")
    verify = await client.get(body["certificate_url"].replace("http://testserver", ""))
    assert verify.status_code == 200 and "王秀英" in verify.text


async def test_second_signature_is_already_signed(client):
    village = await make_village()
    pledge = await make_pledge(village)
    resident = await make_user(village=village)
    headers = await api_token(client, resident)
    assert (await _sign(client, headers, pledge.id)).status_code == 201
    again = await _sign(client, headers, pledge.id)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_signed"


async def test_concurrent_signatures_credit_once(client):
    village = await make_village()
    pledge = await make_pledge(village)
    resident = await make_user(village=village)
    headers = await api_token(client, resident)
    responses = await asyncio.gather(*[_sign(client, headers, pledge.id) for _ in range(20)])
    assert sorted(r.status_code for r in responses) == [201] + [409] * 19
    await resident.refresh_from_db()
    assert resident.balance == 20
    assert await LedgerEntry.filter(user_id=resident.id, kind="pledge").count() == 1


async def test_missing_confirmation_is_refused(client):
    village = await make_village()
    pledge = await make_pledge(village)
    resident = await make_user(village=village)
    response = await _sign(client, await api_token(client, resident), pledge.id,
                           confirmations=())
    assert response.status_code == 422 and response.json()["error"]["field"] == "confirmations"
    assert await PledgeSignature.all().count() == 0


async def test_closed_campaign_and_other_village(client):
    village = await make_village()
    closed = await make_pledge(village, ends_at=now() - timedelta(days=1))
    resident = await make_user(village=village)
    headers = await api_token(client, resident)
    response = await _sign(client, headers, closed.id)
    assert response.status_code == 409 and response.json()["error"]["code"] == "event_not_open"
    foreign = await make_pledge(await make_village())
    assert (await _sign(client, headers, foreign.id)).status_code == 404


async def test_staff_cannot_sign_and_residents_cannot_create(client):
    village = await make_village()
    pledge = await make_pledge(village)
    staff = await make_user(Role.STAFF, village)
    assert (await _sign(client, await api_token(client, staff), pledge.id)).status_code == 403
    resident = await make_user(village=village)
    response = await client.post(f"/api/v1/villages/{village.id}/pledges",
                                 headers=await api_token(client, resident),
                                 json={"title": "x", "text": "y", "points": 1})
    assert response.status_code == 403


async def test_forged_certificate_is_404(client):
    assert (await client.get("/certificates/P1-AAAAAAAA")).status_code == 404


async def test_sign_page_escapes_text_and_shows_certificate(client):
    village = await make_village()
    pledge = await make_pledge(village, text="<script>alert(1)</script>我承诺", confirmations=[])
    resident = await make_user(village=village)
    token = await web_login(client, resident)
    page = await client.get(f"/pledges/{pledge.id}")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    done = await client.post(f"/pledges/{pledge.id}/sign",
                             data={"csrf_token": token, "signed_name": "王秀英"})
    assert done.status_code == 303
    cert = await client.get(done.headers["location"])
    assert "王秀英" in cert.text and "<svg" in cert.text


async def test_signature_list_and_csv_for_staff_only(client):
    village = await make_village()
    pledge = await make_pledge(village, confirmations=[])
    resident = await make_user(village=village)
    await _sign(client, await api_token(client, resident), pledge.id, name="=cmd|calc")
    staff = await make_user(Role.STAFF, village)
    await web_login(client, staff)
    listing = await client.get(f"/console/villages/{village.id}/pledges")
    assert "反诈承诺书" in listing.text
    csv = await client.get(f"/console/pledges/{pledge.id}/signatures.csv")
    assert csv.status_code == 200 and "'=cmd|calc" in csv.text
    outsider = await make_user(Role.STAFF, await make_village())
    client.cookies.clear()
    await web_login(client, outsider)
    assert (await client.get(f"/console/pledges/{pledge.id}/signatures.csv")).status_code == 404
