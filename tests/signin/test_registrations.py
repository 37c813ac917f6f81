"""居民认证: a newcomer proves their number with an SMS code, registers, the village approves
(or rejects with a reason), they are told by SMS, then log in with their phone."""

from __future__ import annotations

import importlib
import json
from types import SimpleNamespace

import pytest
from tortoise import connections

from tests.factories import csrf_from, make_user, make_village, web_login
from torreya.models import AuditEvent, Registration, RegistrationStatus, Role, User
from torreya.notifications import sender
from torreya.notifications import service as notices
from torreya.signin import registrations
from torreya.signin.gateway import WebhookGateway

pytestmark = pytest.mark.usefixtures("clean_audit")
NEW = "+8613511112222"


@pytest.fixture
def daytime(monkeypatch):
    from tests.notifications.test_notifications import daytime as moment

    # Both where a decision's text is queued and where it is sent: queued at 21:00 or later
    # (Beijing time) the real clock would hold it for the morning.
    fixed = moment()
    monkeypatch.setattr(sender, "now", lambda: fixed)
    monkeypatch.setattr(registrations, "now", lambda: fixed)
    monkeypatch.setattr(notices, "now", lambda: fixed)
    return fixed


async def _texts(receiver) -> list[dict]:
    await sender.send_due_sms(WebhookGateway(receiver.url, timeout=2.0))
    return [json.loads(body) for _h, body in receiver.received]


async def _prove(client, receiver, phone=NEW) -> str:
    """The newcomer's phone steps on /login: number, code → the registration form."""
    csrf = csrf_from((await client.get("/login")).text)
    await client.post("/login/sms", data={"csrf_token": csrf, "phone": phone, "next": "/"})
    code = [t for t in await _texts(receiver) if t["phone"] == phone][-1]["code"]
    answer = await client.post("/login/sms/verify", data={"csrf_token": csrf, "phone": phone,
                                                          "code": code, "next": "/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/register"
    return csrf


async def test_register_approve_then_first_login_with_the_phone(client, phone_inbox, daytime):
    village = await make_village(name="古来村")
    staff = await make_user(Role.STAFF, village)
    csrf = await _prove(client, phone_inbox)
    form = await client.get("/register")
    assert "135****2222" in form.text and "古来村" in form.text
    sent = await client.post("/register", data={"csrf_token": csrf, "name": "新 居民",
                                                "village_id": str(village.id),
                                                "id_last4": "123x"})
    assert sent.status_code == 200 and 'id="registered"' in sent.text
    registration = await Registration.get(phone=NEW)
    assert (registration.name, registration.id_last4) == ("新 居民", "123X")
    assert not await User.filter(phone=NEW).exists()  # nothing until the village says yes

    client.cookies.clear()
    staff_csrf = await web_login(client, staff)
    queue = await client.get(f"/console/villages/{village.id}/registrations")
    assert "新 居民" in queue.text and "135****2222" in queue.text and NEW not in queue.text
    approved = await client.post(f"/registrations/{registration.id}/decide",
                                 data={"csrf_token": staff_csrf, "decision": "approve"})
    assert approved.status_code == 303
    again = await client.post(f"/registrations/{registration.id}/decide",
                              data={"csrf_token": staff_csrf, "decision": "approve"})
    assert again.status_code == 303
    assert await User.filter(phone=NEW).count() == 1  # approved once
    resident = await User.get(phone=NEW)
    assert (resident.role, resident.village_id, resident.password_hash) == (
        Role.RESIDENT, village.id, None)
    told = [t for t in await _texts(phone_inbox) if t["phone"] == NEW][-1]
    assert told["text"] == "您已通过古来村的居民认证，可以用手机号登录了。"

    client.cookies.clear()
    token = await client.post("/api/v1/auth/sms-code", json={"phone": NEW})
    assert token.status_code == 429  # a minute has not passed since the last code
    from datetime import timedelta

    from torreya.db import now
    from torreya.models import SmsCode

    await SmsCode.filter(phone=NEW).update(created_at=now() - timedelta(minutes=2))
    assert (await client.post("/api/v1/auth/sms-code", json={"phone": NEW})).status_code == 202
    code = [t for t in await _texts(phone_inbox) if t["phone"] == NEW][-1]["code"]
    login = await client.post("/api/v1/auth/token", json={"phone": NEW, "code": code})
    assert login.status_code == 200
    assert await AuditEvent.filter(tag="signin:registration:approve").count() == 1


async def test_rejected_with_a_reason_told_by_sms(client, phone_inbox, daytime):
    village = await make_village(name="溪口村")
    staff = await make_user(Role.STAFF, village)
    csrf = await _prove(client, phone_inbox)
    await client.post("/register", data={"csrf_token": csrf, "name": "外村人",
                                         "village_id": str(village.id)})
    registration = await Registration.get(phone=NEW)
    client.cookies.clear()
    staff_csrf = await web_login(client, staff)
    no_reason = await client.post(f"/registrations/{registration.id}/decide",
                                  data={"csrf_token": staff_csrf, "decision": "reject"})
    assert no_reason.status_code == 303
    assert (await Registration.get(id=registration.id)).status == RegistrationStatus.PENDING
    await client.post(f"/registrations/{registration.id}/decide", data={
        "csrf_token": staff_csrf, "decision": "reject", "reason": "不是本村户籍"})
    assert (await Registration.get(id=registration.id)).status == RegistrationStatus.REJECTED
    told = [t for t in await _texts(phone_inbox) if t["phone"] == NEW][-1]
    assert told["text"] == "您在溪口村的居民认证未通过：不是本村户籍"
    assert not await User.filter(phone=NEW).exists()


async def test_bad_input_is_refused_and_nothing_is_half_made(client, phone_inbox):
    village = await make_village()
    csrf = await _prove(client, phone_inbox)
    for data, says in [({"name": "<script>", "village_id": str(village.id)}, "不能有"),
                       ({"name": "王五", "village_id": "999999"}, "请选择"),
                       ({"name": "王五", "village_id": str(village.id), "id_last4": "12"},
                        "身份证后4位")]:
        answer = await client.post("/register", data={"csrf_token": csrf, **data})
        assert answer.status_code == 422 and says in answer.text
    assert not await Registration.exists()


async def test_register_needs_a_proven_number(client):
    answer = await client.get("/register")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


async def test_staff_of_another_village_cannot_decide(client, phone_inbox):
    village = await make_village()
    csrf = await _prove(client, phone_inbox)
    await client.post("/register", data={"csrf_token": csrf, "name": "王五",
                                         "village_id": str(village.id)})
    registration = await Registration.get(phone=NEW)
    client.cookies.clear()
    outsider_csrf = await web_login(client, await make_user(Role.STAFF, await make_village()))
    assert (await client.get(f"/console/villages/{village.id}/registrations")
            ).status_code == 404
    await client.post(f"/registrations/{registration.id}/decide",
                      data={"csrf_token": outsider_csrf, "decision": "approve"})
    assert (await Registration.get(id=registration.id)).status == RegistrationStatus.PENDING


async def test_a_self_registered_username_does_not_hold_the_phone(client, phone_inbox):
    """Issue 26 (5): the username is seen by staff and in exports; the number is not in it."""
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    registration = await Registration.create(phone="+8613612345678", name="新居民",
                                             village_id=village.id)
    user = await registrations.approve(staff=staff, registration_id=registration.id)
    assert "12345678" not in user.username
    assert user.username == f"{village.code}_r{registration.id}"


async def test_the_migration_renames_usernames_that_held_a_phone(app):
    migration = importlib.import_module("torreya.migrations.0027_usernames_without_phones")
    village = await make_village()
    held = await make_user(village=village, username=f"{village.code}_13612345678",
                           phone="+8613612345678")
    chosen = await make_user(village=village, username="wang", phone="+8613612345679")
    await migration.rename_phone_usernames(None, SimpleNamespace(client=connections.get(
        "default")))
    assert (await User.get(id=held.id)).username == f"{village.code}_u{held.id}"
    assert (await User.get(id=chosen.id)).username == "wang"
