"""Logins that end at once, in a real browser: a second browser and a bearer token stop
working after "log out everywhere", a password change and staff's "lost phone" (issue 17).
Residents of 榧香村 (no other browser test uses them)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.browser.conftest import shot
from tests.browser.test_pages import login

pytestmark = pytest.mark.browser


def _phone(browser):
    return browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")


def _logged_in(page, live_server) -> bool:
    page.goto(f"{live_server.url}/me/ledger")
    return "/login" not in page.url


def _token(live_server, username, password="torreya2026") -> dict:
    answer = httpx.post(f"{live_server.url}/api/v1/auth/token",
                        json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _token_works(live_server, headers) -> bool:
    return httpx.get(f"{live_server.url}/api/v1/me", headers=headers).status_code == 200


def _two_phones(browser, live_server, username):
    """The resident logged in on two phones (browser contexts) and with a bearer token."""
    contexts = [_phone(browser), _phone(browser)]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        login(page, live_server, username)
        page.wait_for_url(f"{live_server.url}/")
    return contexts, pages, _token(live_server, username)


def test_log_out_everywhere_ends_the_other_phone_and_the_token(browser, live_server):
    (first, second), (a, b), token = _two_phones(browser, live_server, "feixiang_r001")
    a.goto(f"{live_server.url}/me/settings")
    assert a.locator("#logins li").count() == 3  # two browsers and the token
    shot(a, "settings-logins")
    a.click("#everywhere button")
    a.wait_for_url(re.compile(r".*/login"))
    assert not _logged_in(b, live_server)
    assert not _token_works(live_server, token)
    first.close()
    second.close()


def test_password_change_keeps_this_phone_and_ends_the_other(browser, live_server):
    (first, second), (a, b), token = _two_phones(browser, live_server, "feixiang_r002")
    a.goto(f"{live_server.url}/me/settings")
    a.fill("input[name=current_password]", "torreya2026")
    a.fill("input[name=new_password]", "feixiang-new-2026")
    a.click("button:text('修改密码')")
    a.wait_for_url(re.compile(r".*/me/settings"))
    assert "密码已修改" in a.content()
    assert _logged_in(a, live_server)
    assert not _logged_in(b, live_server)
    assert not _token_works(live_server, token)
    assert _token_works(live_server, _token(live_server, "feixiang_r002", "feixiang-new-2026"))
    first.close()
    second.close()


def test_lost_phone_ends_the_residents_browser_and_token(browser, live_server):
    resident_context, staff_context = _phone(browser), _phone(browser)
    resident, staff = resident_context.new_page(), staff_context.new_page()
    login(resident, live_server, "feixiang_r003")
    resident.wait_for_url(f"{live_server.url}/")
    token = _token(live_server, "feixiang_r003")
    me = httpx.get(f"{live_server.url}/api/v1/me", headers=token).json()
    login(staff, live_server, "feixiang_staff")
    staff.wait_for_url(re.compile(r".*/console/"))
    staff.goto(f"{live_server.url}/console/users/{me['id']}")
    staff.click("form[action$='/sessions/end'] button")
    staff.wait_for_url(re.compile(rf".*/console/users/{me['id']}"))
    assert not _logged_in(resident, live_server)
    assert not _token_works(live_server, token)
    resident_context.close()
    staff_context.close()


def test_resident_logs_in_with_a_text_message_code(page, live_server):
    """An elder with a cheap phone: number, code from the text, in. 溪口村's r001 has the
    demo number +8613802000001."""
    page.goto(f"{live_server.url}/login")
    assert page.locator("#sms-login").is_visible()
    assert not page.locator("input[name=username]").is_visible()  # staff's form is folded
    page.fill("input[name=phone]", "138 0200 0001")
    page.click("#sms-login button[type=submit]")
    page.wait_for_selector("input[name=code]")
    assert "138****0001" in page.content()
    shot(page, "sms-code")
    page.fill("input[name=code]", live_server.last_code("+8613802000001"))
    page.click("form[action='/login/sms/verify'] button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("#balance").is_visible()
