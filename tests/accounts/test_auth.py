from __future__ import annotations

import time

from argon2 import PasswordHasher

from tests.factories import PASSWORD, api_token, csrf_from, make_user, web_login
from tests.loop import stalls_during
from torreya.models import AuditEvent, Role


async def test_login_page_is_chinese_with_english_switch(client):
    page = await client.get("/login")
    assert page.status_code == 200
    assert "登录" in page.text
    assert 'href="/lang?to=en' in page.text
    english = await client.get("/lang?to=en&next=/login", follow_redirects=True)
    assert "Log in" in english.text and "登录" not in english.text.split("<main")[1]


async def test_web_login_returns_to_requested_page(client):
    user = await make_user()
    first = await client.get("/me/ledger")
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=/me/ledger"
    page = await client.get(first.headers["location"])
    response = await client.post("/login", data={
        "username": user.username, "password": PASSWORD, "csrf_token": csrf_from(page.text),
        "next": "/me/ledger"})
    assert response.status_code == 303 and response.headers["location"] == "/me/ledger"
    ledger = await client.get("/me/ledger")
    assert ledger.status_code == 200 and "积分明细" in ledger.text


async def test_login_refuses_offsite_next(client):
    user = await make_user()
    page = await client.get("/login")
    response = await client.post("/login", data={
        "username": user.username, "password": PASSWORD, "csrf_token": csrf_from(page.text),
        "next": "//evil.example/"})
    assert response.headers["location"] == "/"


async def test_session_cookie_is_httponly_and_samesite(client):
    page = await client.get("/login")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


async def test_login_form_without_csrf_is_refused(client):
    user = await make_user()
    response = await client.post("/login", data={"username": user.username,
                                                 "password": PASSWORD})
    assert response.status_code == 403
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_wrong_password_is_refused_and_logged(client):
    user = await make_user()
    page = await client.get("/login")
    response = await client.post("/login", data={
        "username": user.username, "password": "wrong", "csrf_token": csrf_from(page.text)})
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert await AuditEvent.filter(tag="accounts:login:fail").count() == 1


async def test_logout_ends_the_session(client):
    user = await make_user()
    token = await web_login(client, user)
    assert (await client.get("/")).status_code == 200
    assert (await client.post("/logout", data={"csrf_token": token})).status_code == 303
    assert (await client.get("/")).status_code == 303


async def test_api_token_and_me(client):
    user = await make_user()
    headers = await api_token(client, user)
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me == {"id": user.id, "username": user.username, "display_name": user.display_name,
                  "role": "resident", "village_id": user.village_id, "town_id": user.town_id,
                  "balance": 0, "lifetime_points": 0}


async def test_api_refuses_bad_credentials_and_tokens(client):
    user = await make_user()
    bad = await client.post("/api/v1/auth/token", json={"username": user.username,
                                                        "password": "nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_credentials"
    anonymous = await client.get("/api/v1/me")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthenticated"
    forged = await client.get("/api/v1/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert forged.status_code == 401


async def test_login_is_rate_limited_per_account(client):
    user = await make_user()
    for _ in range(5):
        response = await client.post("/api/v1/auth/token",
                                     json={"username": user.username, "password": "nope"})
        assert response.status_code == 401
    blocked = await client.post("/api/v1/auth/token",
                                json={"username": user.username, "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "too_many_attempts"


async def test_login_is_rate_limited_per_address(client):
    for n in range(30):
        await client.post("/api/v1/auth/token", json={"username": f"nobody{n}",
                                                      "password": "nope"})
    user = await make_user()
    blocked = await client.post("/api/v1/auth/token",
                                json={"username": user.username, "password": PASSWORD})
    assert blocked.status_code == 429


async def test_deactivated_user_cannot_log_in(client):
    user = await make_user(is_active=False)
    response = await client.post("/api/v1/auth/token",
                                 json={"username": user.username, "password": PASSWORD})
    assert response.status_code == 401


async def test_security_headers_on_every_page(client):
    response = await client.get("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_staff_home_goes_to_console(client):
    staff = await make_user(Role.STAFF)
    await web_login(client, staff)
    response = await client.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    console = await client.get("/console/")
    assert console.status_code == 200 and "管理后台" in console.text


async def test_resident_cannot_open_console(client):
    resident = await make_user()
    await web_login(client, resident)
    assert (await client.get("/console/")).status_code == 403


async def test_a_token_checked_once_still_expires_and_its_forgeries_fail(client, settings):
    """Workers keep the tokens whose signature they checked; expiry is checked every time,
    and a token changed by one character is not the one they checked."""
    from datetime import timedelta

    from torreya.db import now, replaying

    user = await make_user()
    headers = await api_token(client, user)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    token = headers["Authorization"].removeprefix("Bearer ")
    head, body, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for forged in (f"{head}.{body}.{flipped}", f"{head}.{body[:-2]}xx.{signature}"):
        answer = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthenticated"
    later = now() + timedelta(seconds=settings.ACCESS_TOKEN_SECONDS + 1)
    with replaying(later):
        expired = await client.get("/api/v1/me", headers=headers)
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "unauthenticated"
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200


async def test_a_login_does_not_hold_up_the_other_requests(client, caplog):
    """Argon2 takes about a tenth of a second by design. Verifying on the event loop held up
    every other request of the worker meanwhile (a village logging in at once stalled the
    check-ins); it runs beside the loop, which goes on answering."""
    hasher = PasswordHasher()  # the product's parameters, not the factories' light ones
    began = time.perf_counter()
    stored = hasher.hash(PASSWORD)
    verifying = time.perf_counter() - began
    user = await make_user(password_hash=stored)
    answer, held = await stalls_during(client.post(
        "/api/v1/auth/token", json={"username": user.username, "password": PASSWORD}),
        verifying / 2, caplog)
    assert answer.status_code == 200, answer.text
    assert not held, (verifying, held)
