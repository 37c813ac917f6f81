"""Certificates of volunteer hours (issue 34): signed with the town's key, checked by the API,
by the public page and by `torreya verify-certificate` offline; any edit, a wrong key or a
revocation fails, saying why; the public page shows nothing but the masked holder."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.factories import api_token, csrf_from, make_event, make_user, make_village, web_login
from tests.signin.flows import web_code_login
from torreya.cli import main as cli
from torreya.db import now
from torreya.hours import certificate
from torreya.models import (
    AuditEvent,
    Checkin,
    FamilyHelper,
    Patrol,
    PatrolParticipant,
    PatrolStatus,
    Role,
    ServiceCertificate,
)
from torreya.models.patrols import Group, Route
from torreya.settings import LOCAL
from torreya.trust.signing import rotate_key

pytestmark = pytest.mark.usefixtures("clean_audit")


async def served(village, resident, *, event_minutes=90, patrol_minutes=45):
    """A resident with an event attended (check-in and out) and an approved patrol."""
    event = await make_event(village, opens_in=timedelta(hours=-4), lasts=timedelta(hours=3),
                             checkout=True, title="消防演练")
    await Checkin.create(event=event, user=resident, method="static", points=0,
                         created_at=event.starts_at, checked_out_at=event.starts_at
                         + timedelta(minutes=event_minutes), minutes=event_minutes)
    group = await Group.create(town_id=village.town_id, name="红枫义警",
                               village_ids=[village.id], invite_code=f"H{resident.id}")
    route = await Route.create(group=group, village=village, name="村口到水库",
                               min_checkpoints=1)
    patrol = await Patrol.create(group=group, route=route, leader=resident,
                                 village_id=village.id, town_id=village.town_id,
                                 status=PatrolStatus.APPROVED, join_code=f"J{resident.id}",
                                 started_at=now() - timedelta(hours=2),
                                 duration_minutes=patrol_minutes)
    await PatrolParticipant.create(patrol=patrol, user=resident)
    return event, patrol


def _today() -> str:
    return now().astimezone(LOCAL).date().isoformat()


async def _issue(client, headers, start=None, end=None):
    return await client.post("/api/v1/me/service-certificates", headers=headers,
                             json={"from": start or f"{now().astimezone(LOCAL).year}-01-01",
                                   "to": end or _today()})


async def test_a_certificate_verifies_online_and_offline_and_fails_on_any_edit(
        client, settings, tmp_path, capsys):
    village = await make_village()
    resident = await make_user(village=village, display_name="张晓明")
    await served(village, resident)
    headers = await api_token(client, resident)
    hours = (await client.get("/api/v1/me/service-hours", headers=headers)).json()
    assert hours["total_minutes"] == 135
    assert sorted((i["kind"], i["minutes"]) for i in hours["items"]) == [
        ("event", 90), ("patrol", 45)]

    issued = await _issue(client, headers)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["minutes"] == 135 and body["from"].endswith("-01-01") and body["to"] == _today()
    assert body["url"] == f"http://testserver/certificates/{body['code']}"

    # anyone checks it, without logging in
    client.cookies.clear()
    answer = await client.get(f"/api/v1/certificates/{body['code']}")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["status"] == "valid" and doc["holder"] == "张*明" and doc["minutes"] == 135
    assert doc["items"] == 2 and "张晓明" not in answer.text
    assert certificate.problems(doc, doc["public_key"]) == []
    signed = json.loads(doc["payload"])
    assert signed["name_hash"] == certificate.name_hash(signed["name_salt"], "张晓明")
    assert (await client.get("/api/v1/certificates/NOSUCHCODE00")).status_code == 404

    # offline: the saved answer, and the text of the second QR
    saved = tmp_path / "cert.json"
    saved.write_text(answer.text, encoding="utf-8")
    assert cli(["verify-certificate", str(saved), "--public-key", doc["public_key"],
                "--name", "张晓明"]) == 0
    assert "verifies" in capsys.readouterr().out
    qr_file = tmp_path / "cert.txt"
    qr_file.write_text(certificate.qr_text(doc["payload"], doc["signature"]))
    assert cli(["verify-certificate", str(qr_file), "--public-key", doc["public_key"]]) == 0
    capsys.readouterr()

    # any edited field fails, naming it; so does an edited payload, or another key
    for field, value in (("minutes", 1350), ("holder", "李*明"), ("to", "2099-12-31")):
        saved.write_text(json.dumps(doc | {field: value}), encoding="utf-8")
        assert cli(["verify-certificate", str(saved), "--public-key", doc["public_key"]]) == 1
        assert f"field '{field}'" in capsys.readouterr().out
    saved.write_text(json.dumps(doc | {"payload": doc["payload"].replace('"minutes":135',
                                                                         '"minutes":1350')}))
    assert cli(["verify-certificate", str(saved), "--public-key", doc["public_key"]]) == 1
    assert "signature does not match" in capsys.readouterr().out
    saved.write_text(answer.text, encoding="utf-8")
    other = (await make_village()).town_id
    wrong_key = (await rotate_key(settings, other)).public_key
    assert cli(["verify-certificate", str(saved), "--public-key", wrong_key]) == 1
    assert "another key" in capsys.readouterr().out
    assert cli(["verify-certificate", str(saved), "--public-key", doc["public_key"],
                "--name", "张小明"]) == 1
    assert "full name does not match" in capsys.readouterr().out
    (tmp_path / "junk.txt").write_text("hello")
    assert cli(["verify-certificate", str(tmp_path / "junk.txt"), "--public-key",
                doc["public_key"]]) == 2


async def test_the_public_page_shows_the_masked_holder_and_both_codes(client):
    village = await make_village(name="古来村")
    resident = await make_user(village=village, display_name="张晓明", phone="13800138000")
    await served(village, resident)
    issued = await _issue(client, await api_token(client, resident))
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    client.cookies.clear()
    page = await client.get(f"/certificates/{code}")
    assert page.status_code == 200, page.text
    assert "张*明" in page.text and "张晓明" not in page.text
    assert "13800138000" not in page.text and "138" not in page.text.split("<svg")[0][-2000:]
    assert "古来村" in page.text and "2 小时 15 分钟" in page.text
    assert 'data-status="valid"' in page.text and page.text.count("<svg") == 2
    assert (await client.get("/certificates/NOSUCHCODE00")).status_code == 404


async def test_a_revoked_certificate_says_so_everywhere(client, settings, tmp_path, capsys):
    village = await make_village()
    resident = await make_user(village=village)
    staff = await make_user(Role.STAFF, village)
    await served(village, resident)
    code = (await _issue(client, await api_token(client, resident))).json()["code"]
    path = f"/api/v1/certificates/{code}/revoke"
    # not the holder, not another village's staff
    assert (await client.post(path, headers=await api_token(client, resident),
                              json={"reason": "x"})).status_code == 403
    outsider = await make_user(Role.STAFF, await make_village())
    assert (await client.post(path, headers=await api_token(client, outsider),
                              json={"reason": "x"})).status_code == 404
    revoked = await client.post(path, headers=await api_token(client, staff),
                                json={"reason": "时长录入有误，已重开"})
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = await client.post(path, headers=await api_token(client, staff),
                              json={"reason": "again"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    assert await ServiceCertificate.filter(code=code).exists()  # listed, not deleted
    assert await AuditEvent.filter(tag="hours:certificate:revoke").count() == 1

    client.cookies.clear()
    doc = (await client.get(f"/api/v1/certificates/{code}")).json()
    assert doc["status"] == "revoked" and doc["revoked_at"]
    saved = tmp_path / "revoked.json"
    saved.write_text(json.dumps(doc), encoding="utf-8")
    assert cli(["verify-certificate", str(saved), "--public-key", doc["public_key"]]) == 1
    assert "revoked" in capsys.readouterr().out
    page = await client.get(f"/certificates/{code}")
    assert 'data-status="revoked"' in page.text and "作废" in page.text


async def test_no_hours_bad_periods_and_who_may_issue(client):
    village = await make_village()
    resident = await make_user(village=village)
    headers = await api_token(client, resident)
    none = await _issue(client, headers)
    assert none.status_code == 409 and none.json()["error"]["code"] == "no_hours"
    await served(village, resident)
    year = now().astimezone(LOCAL).year
    for start, end, field in ((f"{year}-02-30", _today(), "from"),
                              (_today(), f"{year - 1}-01-01", "to"),
                              (f"{year}-01-01", f"{year + 1}-01-01", "to"),
                              (f"{year - 9}-01-01", _today(), "to")):
        bad = await _issue(client, headers, start, end)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == field, bad.text
    wrong_type = await client.post("/api/v1/me/service-certificates", headers=headers,
                                   json={"from": 20260101, "to": _today()})
    assert wrong_type.status_code == 422
    assert not await ServiceCertificate.exists()

    # staff issue for a resident without a phone, in their village only
    staff = await make_user(Role.STAFF, village)
    body = {"user_id": resident.id, "from": f"{year}-01-01", "to": _today()}
    made = await client.post("/api/v1/service-certificates",
                             headers=await api_token(client, staff), json=body)
    assert made.status_code == 201 and made.json()["minutes"] == 135
    outsider = await make_user(Role.STAFF, await make_village())
    assert (await client.post("/api/v1/service-certificates",
                              headers=await api_token(client, outsider), json=body)
            ).status_code == 404
    neighbour = await make_user(village=village)
    assert (await client.post("/api/v1/service-certificates",
                              headers=await api_token(client, neighbour), json=body)
            ).status_code == 403
    issued = await ServiceCertificate.get(code=made.json()["code"])
    assert issued.issued_by_id == staff.id


async def test_hours_count_only_approved_patrols_and_the_chosen_year(client):
    village = await make_village()
    resident = await make_user(village=village)
    _event, patrol = await served(village, resident)
    await Patrol.filter(id=patrol.id).update(status=PatrolStatus.SUBMITTED)
    headers = await api_token(client, resident)
    hours = (await client.get("/api/v1/me/service-hours", headers=headers)).json()
    assert [i["kind"] for i in hours["items"]] == ["event"] and hours["total_minutes"] == 90
    last_year = now().astimezone(LOCAL).year - 1
    old = (await client.get(f"/api/v1/me/service-hours?year={last_year}", headers=headers)
           ).json()
    assert old == {"year": last_year, "total_minutes": 0, "items": []}
    assert (await client.get("/api/v1/me/service-hours?year=1900", headers=headers)
            ).status_code == 422


async def test_pages_the_resident_and_staff_use(client):
    village = await make_village(name="古来村")
    resident = await make_user(village=village, display_name="王秀英")
    await served(village, resident)
    await web_login(client, resident)
    mine = await client.get("/me/hours")
    assert mine.status_code == 200 and "2 小时 15 分钟" in mine.text and "消防演练" in mine.text
    posted = await client.post("/me/hours/certificates", data={
        "csrf_token": csrf_from(mine.text), "start": f"{now().astimezone(LOCAL).year}-01-01",
        "end": _today()})
    assert posted.status_code == 303 and posted.headers["location"].startswith("/certificates/")
    printed = await client.get(posted.headers["location"])
    assert "王*英" in printed.text and "王秀英" not in printed.text

    staff = await make_user(Role.STAFF, village)
    client.cookies.clear()
    await web_login(client, staff)
    listed = await client.get(f"/console/villages/{village.id}/hours")
    assert listed.status_code == 200 and "王秀英" in listed.text and "2 小时 15 分钟" in listed.text
    one = await client.get(f"/console/users/{resident.id}/hours")
    assert one.status_code == 200 and "作废原因" in one.text  # a revoke form per certificate
    code = posted.headers["location"].rsplit("/", 1)[1]
    revoked = await client.post(f"/certificates/{code}/revoke", data={
        "csrf_token": csrf_from(one.text), "reason": "填错了时间段"})
    assert revoked.status_code == 303
    after = await client.get(revoked.headers["location"])
    assert f"证明 {code} 已作废" in after.text and "填错了时间段" in after.text
    assert (await ServiceCertificate.get(code=code)).revoked_by_id == staff.id
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    client.cookies.clear()
    await web_login(client, admin)
    month = now().astimezone(LOCAL).strftime("%Y-%m")
    report = await client.get(f"/console/villages/{village.id}/report.csv?month={month}")
    assert report.status_code == 200
    assert "王秀英" in report.text and ",2.2,135,2" in report.text


async def test_a_family_helper_asks_for_their_elder(client, phone_inbox):
    """The certificate is the elder's, asked for on the helper's phone acting for her."""
    village = await make_village()
    elder = await make_user(village=village, display_name="王秀英", phone="+8613900000001",
                            password_hash=None)
    staff = await make_user(Role.STAFF, village)
    await FamilyHelper.create(member_id=elder.id, phone="+8613700000002", name="儿子 小明",
                              added_by_id=staff.id)
    son = await make_user(village=village, display_name="王小明", phone="+8613700000002")
    await served(village, elder)
    chooser = await web_code_login(client, phone_inbox, "+8613700000002")
    await client.post("/login/choose", data={"user_id": str(elder.id),
                                             "csrf_token": csrf_from(chooser.text)})
    mine = await client.get("/me/hours")
    assert "2 小时 15 分钟" in mine.text
    posted = await client.post("/me/hours/certificates", data={
        "csrf_token": csrf_from(mine.text), "start": f"{now().astimezone(LOCAL).year}-01-01",
        "end": _today()})
    assert posted.status_code == 303
    code = posted.headers["location"].rsplit("/", 1)[1]
    issued = await ServiceCertificate.get(code=code)
    assert issued.user_id == elder.id and issued.minutes == 135
    assert not await ServiceCertificate.filter(user_id=son.id).exists()
