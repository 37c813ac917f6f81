"""Signing in the way residents already do, in Chromium at phone size: WeChat against the
local stand-in of its endpoints, and a family helper's chooser (亲属代办). Residents of
溪口村 r004–r005 (no other browser test uses them)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import shot
from tests.browser.test_pages import login

pytestmark = pytest.mark.browser


def _phone(browser):
    return browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")


def _code_login(page, live_server, phone: str) -> None:
    page.fill("input[name=phone]", phone[3:])
    page.click("#sms-login button[type=submit]")
    page.wait_for_selector("input[name=code]")
    page.fill("input[name=code]", live_server.last_code(phone))
    page.click("form[action='/login/sms/verify'] button[type=submit]")


def _wechat(page, openid: str) -> None:
    page.click("#wechat-login")
    page.wait_for_selector("#openid")  # WeChat's consent page (the stand-in)
    page.fill("#openid", openid)
    page.click("#allow")


def test_first_wechat_login_asks_for_the_phone_once_then_one_tap(browser, live_server):
    context = _phone(browser)
    page = context.new_page()
    page.goto(f"{live_server.url}/login")
    _wechat(page, "o-xikou-r004")
    page.wait_for_selector("#login-notice")
    assert "第一次用微信登录" in page.locator("#login-notice").inner_text()
    shot(page, "wechat-first")
    _code_login(page, live_server, "+8613802000004")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("#balance").is_visible()
    context.close()
    again = _phone(browser)  # another day, the same WeChat: one tap
    page = again.new_page()
    page.goto(f"{live_server.url}/login")
    _wechat(page, "o-xikou-r004")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("#balance").is_visible()
    again.close()


def test_a_family_helper_chooses_the_elder_and_acts_for_her(browser, live_server):
    staff = _phone(browser).new_page()  # the clerk names the son as her helper
    login(staff, live_server, "xikou_staff")
    staff.goto(f"{live_server.url}/console/")
    staff.click("a:has-text('溪口村')")
    row = staff.locator("tr", has_text="xikou_r005")  # no phone, no password: a card
    elder = row.locator("a").first.inner_text()
    row.locator("a").first.click()
    staff.wait_for_selector("#family-helpers")
    staff.fill("#add-helper input[name=name]", "儿子 小明")
    staff.fill("#add-helper input[name=phone]", "137 1111 2222")
    staff.click("#add-helper button[type=submit]")
    staff.wait_for_selector("#family-helpers li strong")
    assert "儿子 小明" in staff.locator("#family-helpers").inner_text()
    son = _phone(browser).new_page()
    son.goto(f"{live_server.url}/login")
    _code_login(son, live_server, "+8613711112222")
    son.wait_for_selector("#choices")
    assert "您要为谁办理" in son.content()
    shot(son, "family-chooser")
    son.click(f"#choices button:has-text('{elder}')")
    son.wait_for_url(f"{live_server.url}/")
    assert "您正在为" in son.locator("#acting-banner").inner_text()
    son.goto(f"{live_server.url}/me/family")
    assert son.locator("#add-helper").count() == 0  # a helper names no other helpers
    assert "为您登录了" in son.locator("#helper-acts").inner_text()
