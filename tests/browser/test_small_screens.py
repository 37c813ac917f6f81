"""Issue 28: finished for a 70-year-old on a 360 px phone, for a clerk at the workbench and
for a TV at 3 m. Real Chromium against the live demo."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.conftest import screen
from tests.browser.test_pages import login

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
# Every page a resident reaches from the home page (the leaderboard's village is added).
RESIDENT_PAGES = ["/", "/scan", "/reports/new", "/inbox", "/shop", "/card", "/vouchers",
                  "/pledges", "/groups", "/me/ledger", "/me/settings", "/me/family",
                  "/me/household", "/me/hours"]
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 1)
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
              + (typeof e.className === 'string' && e.className
                 ? '.' + e.className.split(' ')[0] : ''));
  return {scroll: document.documentElement.scrollWidth, width: width, wide: wide.slice(0, 5)};
}"""


def _phone(browser):
    return browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True,
                               has_touch=True).new_page()


def _no_sideways_scroll(page, url: str) -> None:
    page.goto(url)
    found = page.evaluate(OVERFLOW)
    assert found["scroll"] <= found["width"], (url, found)


def _village_id(live_server, username: str) -> int:
    with live_server.api(username) as user:
        return user.get("/api/v1/me").json()["village_id"]


def test_nothing_scrolls_sideways_at_360_and_elder_mode_keeps_every_action(browser,
                                                                           live_server):
    page = _phone(browser)
    village = _village_id(live_server, "gulaicun_r002")
    login(page, live_server, "gulaicun_r002")
    page.wait_for_url(f"{live_server.url}/")
    normal = page.locator("#actions a").evaluate_all("links => links.map(a => a.pathname)")
    screen(page, "home")
    for path in [*RESIDENT_PAGES, f"/villages/{village}/leaderboard"]:
        _no_sideways_scroll(page, live_server.url + path)
    page.goto(f"{live_server.url}/reports/new")
    screen(page, "report-form")

    page.goto(f"{live_server.url}/")
    page.click("#elder-toggle")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("html.elder").count() == 1
    elder = page.locator("#actions a").evaluate_all("links => links.map(a => a.pathname)")
    assert elder == normal  # bigger, not fewer
    assert elder[:3] == ["/scan", "/reports/new", "/inbox"]  # check in, report, messages
    screen(page, "home-elder")
    for path in [*RESIDENT_PAGES, f"/villages/{village}/leaderboard"]:
        _no_sideways_scroll(page, live_server.url + path)
    page.goto(f"{live_server.url}/")
    page.click("#elder-toggle")  # back, for the other tests' resident pages
    page.context.close()


def test_a_leaders_pages_fit_a_360_phone(browser, live_server):
    page = _phone(browser)
    login(page, live_server, "gulaicun_r006")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/groups")
    page.click("a:text-is('红枫义警')")
    page.wait_for_url(re.compile(r".*/groups/\d+$"))
    group_url = page.url
    _no_sideways_scroll(page, group_url)  # the invitation link wraps
    page.click("a:text-is('打印巡更牌')")
    page.wait_for_url(re.compile(r".*/sheet$"))
    # the live patrol: the join code, the checkpoints and the finish button, at 360
    page.goto(group_url)
    page.click("button:has-text('古来村夜巡线')")
    page.wait_for_url(re.compile(r".*/patrols/\d+$"))
    live = page.url
    _no_sideways_scroll(page, live)
    page.click("#finish summary")
    page.click("#finish-button")
    page.wait_for_selector("#next-step")
    _no_sideways_scroll(page, live)  # finished: the status and what happens next
    page.context.close()


def test_staff_pages_on_a_phone_fit_360(browser, live_server):
    """Staff scan cards and hand goods over on their phones, at the event and the shop."""
    village = _village_id(live_server, "gulaicun_admin")
    start = datetime.now(UTC) - timedelta(minutes=5)
    with live_server.api("gulaicun_admin") as admin:
        event = admin.post(f"/api/v1/villages/{village}/events", json={
            "title": "平安夜校·签到", "kind": "training", "points": 5, "qr_mode": "rotating",
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
        }).json()
    page = _phone(browser)
    login(page, live_server, "gulaicun_staff")
    page.wait_for_url(re.compile(r".*/console/"))
    for path in ("/console/", f"/events/{event['id']}/scan",
                 f"/events/{event['id']}/scan/offline", "/fulfil",
                 f"/console/villages/{village}/reports",
                 f"/console/villages/{village}/reports?overdue=1",
                 f"/console/villages/{village}/hours",
                 f"/console/villages/{village}/refusals"):
        _no_sideways_scroll(page, live_server.url + path)
    page.goto(f"{live_server.url}/console/villages/{village}/reports")
    first = page.locator("table a[href^='/reports/']").first.get_attribute("href")
    _no_sideways_scroll(page, live_server.url + first)
    # the demo's integrity signal: the queue and its evidence fit too
    _no_sideways_scroll(page, f"{live_server.url}/console/villages/{village}/signals")
    signal = page.locator("#signals a[href^='/console/signals/']").first.get_attribute("href")
    _no_sideways_scroll(page, live_server.url + signal)
    assert 'id="evidence"' in page.content() and "涉及居民" in page.content()
    page.context.close()


@pytest.mark.parametrize("username", ["gulaicun_staff", "gulaicun_admin", "gulai_admin"])
def test_every_workbench_tile_opens_a_page_its_role_may_see(browser, live_server, username):
    page = browser.new_context(viewport={"width": 1280, "height": 900},
                               locale="zh-CN").new_page()
    login(page, live_server, username)
    page.wait_for_url(re.compile(r".*/console/"))
    links = page.locator("#workbench a[href^='/console/villages/']").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")
    assert links, "the workbench links to its queues"
    for href in dict.fromkeys(links):
        answer = page.goto(live_server.url + href)
        assert answer.status == 200, (username, href, answer.status)
        assert "没有权限" not in page.content(), (username, href)
    if username == "gulaicun_staff":  # what staff cannot act on is not a tile of theirs
        page.goto(f"{live_server.url}/console/")
        assert page.locator("#q-patrols").count() == 0
    page.context.close()


def test_the_report_tile_opens_only_the_reports_waiting(browser, live_server):
    page = browser.new_context(viewport={"width": 1280, "height": 900},
                               locale="zh-CN").new_page()
    login(page, live_server, "gulaicun_staff")
    page.wait_for_url(re.compile(r".*/console/"))
    waiting = int(page.locator("#q-reports .count").inner_text())
    page.click("#q-reports")
    rows = page.locator("table tbody tr").filter(has=page.locator("a"))
    assert rows.count() == waiting
    statuses = [row.locator("td").nth(5).inner_text() for row in rows.all()]
    assert statuses and set(statuses) == {"已提交"}, statuses
    # each with the time it is due to be accepted by, or how long overdue, in red
    assert all(("前受理" in text or "已超期" in text) for text in rows.all_inner_texts())
    page.context.close()


def test_the_big_screens_fill_a_tv_with_nothing_below_the_fold(browser, live_server):
    tv = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = tv.new_page()
    village = _village_id(live_server, "gulaicun_admin")
    page.goto(f"{live_server.url}/villages/{village}/display")
    page.wait_for_selector(".bigscreen[data-loaded]")
    height = page.evaluate("[document.documentElement.scrollHeight, innerHeight]")
    assert height[0] <= height[1], height
    board = page.locator(".bigscreen-cols").bounding_box()
    assert board["width"] > 1920 * 0.85  # the whole width, not a 45 % column
    screen(page, "big-screen")

    start = datetime.now(UTC) - timedelta(minutes=5)
    with live_server.api("gulaicun_admin") as admin:
        event = admin.post(f"/api/v1/villages/{village}/events", json={
            "title": "消防演练·签到", "kind": "drill", "points": 5, "qr_mode": "rotating",
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
        }).json()
    login(page, live_server, "gulaicun_staff")
    page.wait_for_url(re.compile(r".*/console/"))
    page.goto(f"{live_server.url}/events/{event['id']}/display")
    page.wait_for_selector("#qr svg")
    height = page.evaluate("[document.documentElement.scrollHeight, innerHeight]")
    assert height[0] <= height[1], height
    count = page.locator("#count").bounding_box()
    assert count["y"] + count["height"] <= 1080 and count["height"] > 80  # large, in view
    screen(page, "big-screen-checkin")
    tv.close()
