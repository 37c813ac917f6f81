"""Reports: filing (with photos), the review loop, points once, privacy and escaping."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from PIL import Image

from tests.factories import api_token, make_user, make_village, web_login
from tests.loop import stalls_during
from torreya.images import reencode_image
from torreya.models import EarningRule, LedgerEntry, Report, ReportPhoto, ReportStatus, Role

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _file(client, headers, **over):
    body = {"category": "hazard", "description": "村口电线杆倾斜，有倒塌危险",
            "location": "村口桥头"}
    body.update(over)
    return await client.post("/api/v1/reports", headers=headers, json=body)


async def _review(client, headers, report_id, **body):
    return await client.post(f"/api/v1/reports/{report_id}/review", headers=headers, json=body)


async def test_file_accept_and_points_once(client):
    village = await make_village()
    resident = await make_user(village=village)
    staff = await make_user(Role.STAFF, village)
    filed = await _file(client, await api_token(client, resident))
    assert filed.status_code == 201 and filed.json()["status"] == "submitted"
    report_id = filed.json()["id"]
    headers = await api_token(client, staff)
    accepted = await _review(client, headers, report_id, decision="accept", points=25,
                             note="已通知电力所")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    again = await _review(client, headers, report_id, decision="accept", points=25, note="")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    await resident.refresh_from_db()
    assert resident.balance == 25
    moved = await client.post(f"/api/v1/reports/{report_id}/progress", headers=headers,
                              json={"status": "resolved", "note": "已加固"})
    assert moved.json()["status"] == "resolved"


async def test_concurrent_reviews_credit_once(client):
    village = await make_village()
    resident = await make_user(village=village)
    staff = await make_user(Role.STAFF, village)
    report_id = (await _file(client, await api_token(client, resident))).json()["id"]
    headers = await api_token(client, staff)
    responses = await asyncio.gather(*[
        _review(client, headers, report_id, decision="accept", points=30, note="")
        for _ in range(10)])
    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    assert await LedgerEntry.filter(user_id=resident.id, kind="report").count() == 1


async def test_points_outside_the_rule_are_refused(client):
    village = await make_village()
    await EarningRule.filter(town_id=village.town_id, kind="report").update(points=30)
    resident = await make_user(village=village)
    staff = await make_user(Role.STAFF, village)
    report_id = (await _file(client, await api_token(client, resident))).json()["id"]
    response = await _review(client, await api_token(client, staff), report_id,
                             decision="accept", points=31, note="")
    assert response.status_code == 422 and response.json()["error"]["field"] == "points"
    assert (await Report.get(id=report_id)).status == ReportStatus.SUBMITTED


async def test_reject_needs_a_reason_and_pays_nothing(client):
    village = await make_village()
    resident = await make_user(village=village)
    staff = await make_user(Role.STAFF, village)
    report_id = (await _file(client, await api_token(client, resident))).json()["id"]
    headers = await api_token(client, staff)
    no_reason = await _review(client, headers, report_id, decision="reject", note="")
    assert no_reason.status_code == 422
    rejected = await _review(client, headers, report_id, decision="reject", note="重复上报")
    assert rejected.json()["status"] == "rejected"
    await resident.refresh_from_db()
    assert resident.balance == 0


async def test_role_boundaries(client):
    village = await make_village()
    resident = await make_user(village=village)
    report_id = (await _file(client, await api_token(client, resident))).json()["id"]
    neighbour = await make_user(village=village)
    assert (await _review(client, await api_token(client, neighbour), report_id,
                          decision="accept", note="")).status_code == 403
    outsider = await make_user(Role.STAFF, await make_village())
    assert (await _review(client, await api_token(client, outsider), report_id,
                          decision="accept", note="")).status_code == 404
    await web_login(client, outsider)
    assert (await client.get(f"/reports/{report_id}")).status_code == 404
    client.cookies.clear()
    await web_login(client, neighbour)
    assert (await client.get(f"/reports/{report_id}")).status_code == 403


async def test_daily_limit(client):
    resident = await make_user()
    headers = await api_token(client, resident)
    for _ in range(5):
        assert (await _file(client, headers)).status_code == 201
    sixth = await _file(client, headers)
    assert sixth.status_code == 429 and sixth.json()["error"]["code"] == "too_many_attempts"
    assert await Report.filter(user_id=resident.id).count() == 5


async def test_the_daily_limit_holds_just_after_midnight_in_beijing(client, monkeypatch):
    """The day's bound was "00:00+08:00", which SQLite compared as text with the stored UTC
    and so found no report of the day's first eight hours: the limit did nothing then."""
    from datetime import datetime

    from torreya.reports import service
    from torreya.settings import LOCAL

    moment = datetime(2026, 12, 2, 0, 30, tzinfo=LOCAL)
    monkeypatch.setattr(service, "now", lambda: moment)
    resident = await make_user()
    headers = await api_token(client, resident)
    for _ in range(5):
        assert (await _file(client, headers)).status_code == 201
    sixth = await _file(client, headers)
    assert sixth.status_code == 429, sixth.text
    assert await Report.filter(user_id=resident.id).count() == 5


async def test_bad_bodies(client):
    resident = await make_user()
    headers = await api_token(client, resident)
    assert (await _file(client, headers, category="weather")).status_code == 422
    assert (await _file(client, headers, description="x" * 1001)).status_code == 422
    assert (await _file(client, headers, description="")).status_code == 422
    assert await Report.all().count() == 0


def _jpeg_with_gps() -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (30.0, 1.0, 2.0)}  # GPSInfo
    exif[0x010F] = "PhoneMaker"
    Image.new("RGB", (2000, 1500), (90, 140, 60)).save(out, format="JPEG", exif=exif)
    return out.getvalue()


async def test_web_report_with_photo_strips_location_and_escapes_text(client):
    village = await make_village()
    resident = await make_user(village=village, display_name="李建国")
    token = await web_login(client, resident)
    response = await client.post("/reports/new", data={
        "csrf_token": token, "category": "fraud",
        "description": "<img src=x onerror=alert(1)>有人冒充公检法打电话",
        "location": "3组", "latitude": "29.6", "longitude": "120.8"},
        files={"photo": ("p.jpg", _jpeg_with_gps(), "image/jpeg")})
    assert response.status_code == 303
    report = await Report.get(user_id=resident.id)
    assert report.has_photo and report.latitude == 29.6
    photo = await ReportPhoto.get(report_id=report.id)
    with Image.open(io.BytesIO(photo.content)) as image:
        assert not image.getexif() and max(image.size) <= 800
    page = await client.get(response.headers["location"])
    assert "<img src=x" not in page.text and "&lt;img src=x" in page.text
    assert "李建国" not in page.text.split("<main")[1]  # the reporter sees no reporter line
    staff = await make_user(Role.STAFF, village)
    client.cookies.clear()
    await web_login(client, staff)
    staff_page = await client.get(f"/reports/{report.id}")
    assert "李建国" in staff_page.text
    queue = await client.get(f"/console/villages/{village.id}/reports?status=submitted")
    assert "有人冒充公检法" in queue.text


@pytest.mark.parametrize(("name", "data"), [("virus.exe", b"MZ\x90\x00" * 100),
                                            ("big.jpg", b"\xff\xd8" + b"0" * 6_000_000)])
async def test_bad_uploads_are_refused(client, name, data):
    resident = await make_user()
    token = await web_login(client, resident)
    response = await client.post("/reports/new", data={
        "csrf_token": token, "category": "hazard", "description": "路灯坏了"},
        files={"photo": (name, data, "application/octet-stream")})
    assert response.status_code == 422
    assert "JPEG" in response.text or "5 MB" in response.text
    assert await Report.all().count() == 0


async def test_multiline_text_from_a_browser_is_accepted(client):
    resident = await make_user()
    token = await web_login(client, resident)
    response = await client.post("/reports/new", data={
        "csrf_token": token, "category": "dispute",
        "description": "邻里因宅基地起争执\r\n已经吵了三天"})
    assert response.status_code == 303
    report = await Report.get(user_id=resident.id)
    assert report.description == "邻里因宅基地起争执\n已经吵了三天"


async def test_a_phone_photo_does_not_hold_up_the_other_requests(client, caplog):
    """A phone's 12-megapixel photo takes a sixth of a second to decode and shrink: done on
    the event loop, every other request of the worker waited for it. It is done beside it."""
    noise = Image.effect_noise((4000, 3000), 10)
    out = io.BytesIO()
    Image.merge("RGB", [noise] * 3).save(out, format="JPEG", quality=80)
    photo = out.getvalue()
    began = time.perf_counter()
    reencode_image(photo)
    shrinking = time.perf_counter() - began
    village = await make_village()
    resident = await make_user(village=village)
    token = await web_login(client, resident)
    response, held = await stalls_during(client.post(
        "/reports/new", data={"csrf_token": token, "category": "hazard",
                              "description": "村口电线杆倾斜", "location": "村口桥头"},
        files={"photo": ("p.jpg", photo, "image/jpeg")}), shrinking / 2, caplog)
    assert response.status_code == 303, response.text
    assert (await Report.get(user_id=resident.id)).has_photo
    assert not held, (shrinking, held)
