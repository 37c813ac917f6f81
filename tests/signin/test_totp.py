"""Two-step login for staff and admins: pyotp makes the codes an authenticator app would."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest

from tests.factories import PASSWORD, api_token, csrf_from, make_user, make_village, web_login
from torreya.db import now
from torreya.models import AuditEvent, Role, User, UserSession

pytestmark = pytest.mark.usefixtures("clean_audit")


async def _turn_on(client, user) -> pyotp.TOTP:
    await web_login(client, user)
    page = await client.get("/me/totp")
    assert page.status_code == 200 and 'id="totp-qr"' in page.text and "<svg" in page.text
    secret = page.text.split("密钥：")[1].split("<")[0].strip()
    app = pyotp.TOTP(secret)
    wrong = await client.post("/me/totp", data={"csrf_token": csrf_from(page.text),
                                                "code": "000000"})
    assert wrong.status_code == 401
    done = await client.post("/me/totp", data={"csrf_token": csrf_from(page.text),
                                               "code": app.now()})
    assert done.status_code == 303
    stored = (await User.get(id=user.id)).totp_secret
    assert stored and secret not in stored  # encrypted at rest
    client.cookies.clear()
    return app


async def _previous(app: pyotp.TOTP) -> str:
    """A code of the step before (still accepted once, for clock drift)."""
    return app.at(now() - timedelta(seconds=30))


async def test_web_login_then_needs_the_apps_code(client):
    admin = await make_user(Role.VILLAGE_ADMIN, await make_village())
    app = await _turn_on(client, admin)
    csrf = csrf_from((await client.get("/login")).text)
    step = await client.post("/login", data={"csrf_token": csrf, "username": admin.username,
                                             "password": PASSWORD, "next": "/console/"})
    assert step.status_code == 200 and "验证器App里的6位验证码" in step.text
    assert (await client.get("/console/")).status_code == 303  # not in yet
    csrf = csrf_from(step.text)
    wrong = await client.post("/login/totp", data={"csrf_token": csrf, "code": "123456"})
    assert wrong.status_code == 401
    done = await client.post("/login/totp", data={"csrf_token": csrf, "code": app.now()})
    assert done.status_code == 303 and done.headers["location"] == "/console/"
    assert (await client.get("/console/")).status_code == 200


async def test_api_token_needs_the_code_and_a_code_works_once(client):
    admin = await make_user(Role.VILLAGE_ADMIN, await make_village())
    app = await _turn_on(client, admin)
    body = {"username": admin.username, "password": PASSWORD}
    missing = await client.post("/api/v1/auth/token", json=body)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "totp_required"
    code = app.now()
    first = await client.post("/api/v1/auth/token", json={**body, "totp": code})
    assert first.status_code == 200
    replay = await client.post("/api/v1/auth/token", json={**body, "totp": code})
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "invalid_code"
    assert await AuditEvent.filter(tag="accounts:totp:enable").count() == 1


async def test_step_up_takes_the_apps_code(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    resident = await make_user(village=village)
    app = await _turn_on(client, admin)
    answer = await client.post("/api/v1/auth/token", json={
        "username": admin.username, "password": PASSWORD, "totp": await _previous(app)})
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    past = now() - timedelta(minutes=6)
    await UserSession.filter(user_id=admin.id).update(created_at=past, stepped_up_at=past)
    big = {"delta": 5000, "memo": "年度表彰"}
    url = f"/api/v1/users/{resident.id}/adjustments"
    assert (await client.post(url, headers=headers, json=big)).status_code == 403
    stepped = await client.post("/api/v1/auth/step-up", headers=headers,
                                json={"password": app.now()})
    assert stepped.status_code == 204
    assert (await client.post(url, headers=headers, json=big)).status_code == 201


async def test_turning_it_off_needs_the_password(client):
    admin = await make_user(Role.STAFF, await make_village())
    app = await _turn_on(client, admin)
    csrf = csrf_from((await client.get("/login")).text)
    step = await client.post("/login", data={"csrf_token": csrf, "username": admin.username,
                                             "password": PASSWORD, "next": "/"})
    await client.post("/login/totp", data={"csrf_token": csrf_from(step.text),
                                           "code": app.now()})
    page = await client.get("/me/totp")
    assert "关闭两步登录" in page.text
    past = now() - timedelta(minutes=6)  # the login's own confirmation has lapsed
    await UserSession.filter(user_id=admin.id).update(created_at=past, stepped_up_at=past)
    form = {"csrf_token": csrf_from(page.text), "action": "disable"}
    assert (await client.post("/me/totp", data=form)).status_code == 403  # step_up_required
    wrong = await client.post("/me/totp", data={**form, "confirm_password": "guess-guess"})
    assert wrong.status_code == 401
    assert (await User.get(id=admin.id)).totp_secret
    off = await client.post("/me/totp", data={**form, "confirm_password": PASSWORD})
    assert off.status_code == 303
    assert (await User.get(id=admin.id)).totp_secret is None
    assert (await client.post("/api/v1/auth/token", json={
        "username": admin.username, "password": PASSWORD})).status_code == 200


async def test_residents_have_no_two_step_login(client):
    resident = await make_user(village=await make_village())
    await web_login(client, resident)
    assert (await client.get("/me/totp")).status_code == 403
    assert 'id="totp-link"' not in (await client.get("/me/settings")).text
    assert (await client.get("/api/v1/me", headers=await api_token(client, resident))
            ).status_code == 200
