"""Issue 26, the outside review's holes in sign-in and sessions, each as it was reproduced:
step-up bypassed by turning on two-step login, a logout that left the cookie working,
family helpers reaching account controls through the API, pages cached for a login."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest

from tests.factories import (
    PASSWORD,
    api_token,
    csrf_from,
    make_user,
    make_village,
    web_login,
)
from tests.signin.flows import texts_to, web_code_login
from torreya.db import now
from torreya.models import (
    AuditEvent,
    FamilyHelper,
    LedgerEntry,
    Role,
    SmsCode,
    User,
    UserSession,
)

pytestmark = pytest.mark.usefixtures("clean_audit")
ELDER_PHONE = "+8613900000001"
SON_PHONE = "+8613700000002"


async def _age_logins(user: User) -> None:
    """The login's own confirmation (5 minutes) has lapsed, as a stolen session's would
    have; the login's SMS code is as old."""
    past = now() - timedelta(minutes=10)
    await UserSession.filter(user_id=user.id).update(created_at=past, stepped_up_at=past)
    if user.phone:
        await SmsCode.filter(phone=user.phone).update(created_at=past,
                                                      expires_at=past + timedelta(minutes=5))


# -- 1. step-up cannot be bypassed by turning on two-step login --------------------------------


async def test_a_stolen_session_cannot_turn_on_its_own_two_step_login(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    await web_login(client, admin)
    await _age_logins(admin)
    page = await client.get("/me/totp")
    secret = page.text.split("密钥：")[1].split("<")[0].strip()
    refused = await client.post("/me/totp", data={"csrf_token": csrf_from(page.text),
                                                  "code": pyotp.TOTP(secret).now()})
    assert refused.status_code == 403 and "确认" in refused.text
    assert (await User.get(id=admin.id)).totp_secret is None
    # …so the attack's next step, step-up with the app's code, has nothing to use:
    token = await api_token(client, admin)
    await _age_logins(admin)
    stepped = await client.post("/api/v1/auth/step-up", headers=token,
                                json={"password": pyotp.TOTP(secret).now()})
    assert stepped.status_code == 401
    big = await client.post(f"/api/v1/users/{resident.id}/adjustments", headers=token,
                            json={"delta": 5000, "memo": "盗用"})
    assert big.status_code == 403 and big.json()["error"]["code"] == "step_up_required"
    assert await LedgerEntry.filter(user_id=resident.id).count() == 0
    # The owner, with their password, turns it on.
    page = await client.get("/me/totp")
    secret = page.text.split("密钥：")[1].split("<")[0].strip()
    done = await client.post("/me/totp", data={
        "csrf_token": csrf_from(page.text), "code": pyotp.TOTP(secret).now(),
        "confirm_password": PASSWORD})
    assert done.status_code == 303
    assert (await User.get(id=admin.id)).totp_secret


async def test_naming_a_helper_needs_a_fresh_code_sent_to_the_residents_own_phone(
        client, phone_inbox):
    elder = await make_user(village=await make_village(), display_name="王秀英",
                            phone=ELDER_PHONE, password_hash=None)
    await web_code_login(client, phone_inbox, ELDER_PHONE)
    await _age_logins(elder)
    page = await client.get("/me/family")
    form = {"csrf_token": csrf_from(page.text), "phone": "13600000003", "name": "外人"}
    sent_away = await client.post("/me/family", data=form)
    assert sent_away.status_code == 303
    assert sent_away.headers["location"] == "/me/confirm?next=/me/family"
    assert await FamilyHelper.filter(member_id=elder.id).count() == 0
    confirm = await client.get(sent_away.headers["location"])
    assert "确认是您本人" in confirm.text and "139****0001" in confirm.text
    csrf = csrf_from(confirm.text)
    asked = await client.post("/me/confirm", data={"csrf_token": csrf, "action": "send",
                                                   "next": "/me/family"})
    assert asked.status_code == 200 and 'name="code"' in asked.text
    code = (await texts_to(phone_inbox, ELDER_PHONE))[-1]["code"]
    wrong = await client.post("/me/confirm", data={
        "csrf_token": csrf, "code": "000000" if code != "000000" else "111111",
        "next": "/me/family"})
    assert wrong.status_code == 401
    done = await client.post("/me/confirm", data={"csrf_token": csrf, "code": code,
                                                  "next": "/me/family"})
    assert done.status_code == 303 and done.headers["location"] == "/me/family"
    added = await client.post("/me/family", data=form)
    assert added.status_code == 303 and added.headers["location"] == "/me/family"
    assert await FamilyHelper.filter(member_id=elder.id).count() == 1


async def test_staff_naming_a_helper_confirm_with_their_password(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    elder = await make_user(village=village, phone=ELDER_PHONE)
    await web_login(client, staff)
    await _age_logins(staff)
    page = await client.get(f"/console/users/{elder.id}")
    form = {"csrf_token": csrf_from(page.text), "phone": SON_PHONE, "name": "儿子"}
    await client.post(f"/users/{elder.id}/helpers", data=form)
    assert await FamilyHelper.filter(member_id=elder.id).count() == 0
    await client.post(f"/users/{elder.id}/helpers", data={**form, "confirm_password": PASSWORD})
    assert await FamilyHelper.filter(member_id=elder.id).count() == 1


async def test_the_api_step_up_takes_a_residents_sms_code(client, phone_inbox):
    elder = await make_user(village=await make_village(), phone=ELDER_PHONE,
                            password_hash=None)
    await client.post("/api/v1/auth/sms-code", json={"phone": ELDER_PHONE})
    code = (await texts_to(phone_inbox, ELDER_PHONE))[-1]["code"]
    login = await client.post("/api/v1/auth/token", json={"phone": ELDER_PHONE, "code": code})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    await _age_logins(elder)
    empty = await client.post("/api/v1/auth/step-up", headers=headers, json={})
    assert empty.status_code == 422
    used = await client.post("/api/v1/auth/step-up", headers=headers, json={"code": code})
    assert used.status_code == 401 and used.json()["error"]["code"] == "invalid_code"
    session = await UserSession.get(user_id=elder.id)
    assert session.stepped_up_at < now() - timedelta(minutes=5)
    await client.post("/api/v1/auth/sms-code", json={"phone": ELDER_PHONE})
    fresh = (await texts_to(phone_inbox, ELDER_PHONE))[-1]["code"]
    assert (await client.post("/api/v1/auth/step-up", headers=headers,
                              json={"code": fresh})).status_code == 204
    session = await UserSession.get(user_id=elder.id)
    assert session.stepped_up_at > now() - timedelta(minutes=1)


# -- 2. logout ends the login on the server --------------------------------------------------


async def test_logout_ends_the_session_so_a_copied_cookie_is_worthless(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    csrf = await web_login(client, staff)
    copied = dict(client.cookies)
    assert (await client.get(f"/console/villages/{village.id}/residents.csv")).status_code == 200
    out = await client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    client.cookies.clear()
    client.cookies.update(copied)  # the cookie as it was before the logout
    again = await client.get(f"/console/villages/{village.id}/residents.csv")
    assert again.status_code == 303 and again.headers["location"].startswith("/login")
    session = await UserSession.get(user_id=staff.id)
    assert session.ended_at is not None
    assert await AuditEvent.filter(tag="accounts:logout").count() == 1


# -- 3. a helper reaches no account control, web or API --------------------------------------


async def _helper_token(client, phone_inbox, elder) -> dict[str, str]:
    await client.post("/api/v1/auth/sms-code", json={"phone": SON_PHONE})
    code = (await texts_to(phone_inbox, SON_PHONE))[-1]["code"]
    answer = await client.post("/api/v1/auth/token", json={
        "phone": SON_PHONE, "code": code, "user_id": elder.id})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_a_helpers_token_reaches_no_account_control(client, phone_inbox):
    village = await make_village()
    elder = await make_user(village=village, display_name="王秀英", phone=ELDER_PHONE)
    staff = await make_user(Role.STAFF, village)
    await FamilyHelper.create(member_id=elder.id, phone=SON_PHONE, name="儿子",
                              added_by_id=staff.id)
    own = await api_token(client, elder)
    helper = await _helper_token(client, phone_inbox, elder)
    assert (await client.get("/api/v1/me", headers=helper)).status_code == 200
    for method, path, body in [
            ("GET", "/api/v1/me/sessions", None),
            ("POST", "/api/v1/me/sessions/revoke", None),
            ("POST", "/api/v1/me/sessions/anything/revoke", None),
            ("POST", "/api/v1/me/password", {"current_password": "x", "new_password": "y"}),
            ("POST", "/api/v1/auth/step-up", {"password": PASSWORD})]:
        answer = await client.request(method, path, headers=helper, json=body)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"]["code"] == "helper_forbidden", path
    # The resident's own login still works: nothing was ended.
    assert (await client.get("/api/v1/me/sessions", headers=own)).status_code == 200
    assert await UserSession.filter(user_id=elder.id, ended_at=None).count() == 2


# -- 8. nothing a login sees is kept in a cache ------------------------------------------------


async def test_answers_for_a_login_are_not_stored_and_public_ones_may_be(client):
    village = await make_village()
    staff = await make_user(Role.STAFF, village)
    resident = await make_user(village=village)
    public = await client.get(f"/villages/{village.id}/stock")
    assert "no-store" not in public.headers.get("cache-control", "")
    assert "no-store" not in (await client.get("/static/css/torreya.css")).headers.get(
        "cache-control", "")
    await web_login(client, staff)
    for path in (f"/console/villages/{village.id}/residents.csv", f"/console/users/{resident.id}",
                 "/me/settings", "/"):
        answer = await client.get(path)
        assert answer.headers["cache-control"] == "no-store", path
    token = await api_token(client, resident)
    client.cookies.clear()
    me = await client.get("/api/v1/me", headers=token)
    assert me.status_code == 200 and me.headers["cache-control"] == "no-store"
