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
    before = len(live_server.sms.received)
    page.fill("input[name=phone]", phone[3:])
    page.click("#sms-login button[type=submit]")
    page.wait_for_selector("input[name=code]")
    page.fill("input[name=code]", live_server.last_code(phone, after=before))
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


def test_a_receipt_is_genuine_on_any_phone_and_a_forged_one_is_refused(browser, live_server):
    """溪口村 r003 opens a receipt from their history; a neighbour's phone (not logged in)
    opens the same address, as a scan of its QR would; a made-up code is refused."""
    import datetime
    from zoneinfo import ZoneInfo

    page = _phone(browser).new_page()
    login(page, live_server, "xikou_r003")
    page.goto(f"{live_server.url}/me/ledger")
    links = page.locator(".receipt-link")
    assert links.count() > 0
    href = links.last.get_attribute("href")  # the oldest: covered by yesterday's record
    neighbour = _phone(browser).new_page()
    neighbour.goto(f"{live_server.url}{href}")
    status = neighbour.locator("#receipt-status").inner_text()
    assert "真实有效" in status
    yesterday = (datetime.datetime.now(ZoneInfo("Asia/Shanghai"))
                 - datetime.timedelta(days=1)).date().isoformat()
    assert yesterday in neighbour.locator("#receipt-proof").inner_text()
    assert neighbour.locator(".qr svg").count() == 1
    shot(neighbour, "receipt")
    neighbour.goto(f"{live_server.url}/r/12-ABCDEF")
    assert "无效的凭证" in neighbour.locator("#receipt-status").inner_text()


def test_a_resident_logs_in_with_the_government_single_sign_on(browser, live_server):
    """浙里办 (oidc-provider-mock, a real provider): 溪口村 r006's verified number links them."""
    page = _phone(browser).new_page()
    page.goto(f"{live_server.url}/login")
    page.click("#oidc-login")
    page.wait_for_selector("input[name=sub]")  # the provider's own page
    page.fill("input[name=sub]", "zlb-xikou-r006")
    page.click("button:has-text('Authorize')")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("#balance").is_visible()
    page.goto(f"{live_server.url}/me/settings")
    assert "浙里办" in page.locator("#identities").inner_text()  # the provider, by name


def test_a_newcomer_registers_is_approved_and_logs_in(browser, live_server):
    """居民认证: a number nobody has → code → register → the clerk approves → first login."""
    phone = "+8613955550001"
    newcomer = _phone(browser).new_page()
    newcomer.goto(f"{live_server.url}/login")
    _code_login(newcomer, live_server, phone)
    newcomer.wait_for_url(f"{live_server.url}/register")
    newcomer.fill("input[name=name]", "赵新来")
    newcomer.select_option("select[name=village_id]", label="溪口村")
    newcomer.click("form[action='/register'] button[type=submit]")
    newcomer.wait_for_selector("#registered")
    clerk = _phone(browser).new_page()
    login(clerk, live_server, "xikou_staff")
    clerk.goto(f"{live_server.url}/console/")
    clerk.click("a:has-text('溪口村')")
    village_url = clerk.url.rstrip("/")
    clerk.goto(f"{village_url}/registrations")
    item = clerk.locator("section.registration", has_text="赵新来")
    item.locator("button:has-text('批准')").click()
    clerk.wait_for_selector("text=赵新来")
    assert "短信" in clerk.content()
    # Stand-in for the minute that must pass before the same number gets a new code.
    live_server.sql(f"DELETE FROM sms_codes WHERE phone = '{phone}'")
    newcomer.goto(f"{live_server.url}/login")
    _code_login(newcomer, live_server, phone)
    newcomer.wait_for_url(f"{live_server.url}/")
    assert newcomer.locator("#balance").is_visible()
    assert "赵新来" in newcomer.content()
