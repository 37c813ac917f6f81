"""axe-core (axe-playwright-python): on every page the browser tests visit (axe_everywhere.py),
and here on the main pages for certain, at phone and desktop sizes; elder mode's sizes.
Residents of 溪口村 r007 and r008 and its committee."""

from __future__ import annotations

import pytest

from tests.browser.axe_everywhere import SERIOUS, SIZES, pattern
from tests.browser.conftest import skip_without_axe
from tests.browser.test_pages import login

pytestmark = pytest.mark.browser

PUBLIC = ["/login", "/towns/1/trust", "/r/1-AAAAAA"]
RESIDENT = ["/", "/me/ledger", "/shop", "/inbox", "/me/settings", "/me/family", "/card",
            "/pledges", "/reports/new", "/groups", "/me/hours"]
COMMITTEE = ["/console/", "/console/villages/3", "/console/villages/3/residents",
             "/console/villages/3/dashboard", "/console/villages/3/registrations",
             "/console/villages/3/hours"]


def _serious(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] for n in v["nodes"][:3])
            for v in results.response["violations"] if v["impact"] in SERIOUS]


@skip_without_axe
def test_the_main_pages_are_checked_at_both_sizes(browser, live_server, axe):
    """Every page any browser test loads is checked (axe_everywhere.py); these are loaded
    here so that the main ones surely are, whatever the other tests do."""
    for who, paths in ((None, PUBLIC), ("xikou_r007", RESIDENT), ("xikou_admin", COMMITTEE)):
        context = browser.new_context(viewport=SIZES["phone"], locale="zh-CN")
        page = context.new_page()
        if who:
            login(page, live_server, who)
        for path in paths:
            page.goto(f"{live_server.url}{path}")
            page.wait_for_function("() => window.__axeDone === true")
        context.close()  # checks them again at desktop size
    for path in PUBLIC + RESIDENT + COMMITTEE:
        assert {(pattern(path), size) for size in SIZES} <= axe.checked, path


@skip_without_axe
def test_a_violation_on_any_visited_page_is_caught(browser, live_server, axe):
    """The check can fail: a page of ours with an image without text and a button without
    a name is reported for the phone and the desktop size."""
    context = browser.new_context(viewport=SIZES["phone"], locale="zh-CN")
    page = context.new_page()
    probe = f"{live_server.url}/axe-probe/1"
    context.route(probe, lambda route: route.fulfill(content_type="text/html", body=(
        "<!doctype html><html lang='zh-CN'><head><title>probe</title></head><body><main>"
        "<h1>probe</h1><img src='/static/none.png'><button></button></main></body></html>")))
    page.goto(probe)
    page.wait_for_function("() => window.__axeDone === true")
    context.close()
    found = axe.take_found()
    for size in SIZES:
        assert any(f.startswith(f"/axe-probe/{{id}} at {size} size: image-alt (critical)")
                   for f in found), found
        assert any(f.startswith(f"/axe-probe/{{id}} at {size} size: button-name") for f in found)


def test_elder_mode_meets_the_ageing_friendly_sizes(browser, live_server):
    """MIIT 适老化: body text ≥ 22 px, tap targets ≥ 48 px, and still no serious violation."""
    context = browser.new_context(viewport=SIZES["phone"], locale="zh-CN")
    page = context.new_page()
    login(page, live_server, "xikou_r008")
    page.goto(f"{live_server.url}/")
    body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert body >= 18  # normal mode already
    page.click("#elder-toggle")
    page.wait_for_selector("html.elder #actions")
    sizes = page.evaluate("""() => {
      const px = e => parseFloat(getComputedStyle(e).fontSize);
      const texts = [...document.querySelectorAll('main p, main a, main button, main span')]
        .filter(e => e.offsetParent && e.textContent.trim());
      const taps = [...document.querySelectorAll('main a.button, main button')]
        .filter(e => e.offsetParent).map(e => e.getBoundingClientRect().height);
      return {text: Math.min(...texts.map(px)), tap: Math.min(...taps),
              actions: document.querySelectorAll('#actions a').length};
    }""")
    # every action kept (issue 28), each big enough to tap
    assert sizes["text"] >= 22 and sizes["tap"] >= 48 and sizes["actions"] == 13, sizes
    assert not _serious(page)
    page.goto(f"{live_server.url}/shop")  # every page, not only the home
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 22
    context.close()
