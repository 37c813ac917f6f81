"""axe-core (axe-playwright-python) on the pages people use, at phone and desktop sizes:
no serious or critical violation. Residents of 溪口村 r007 and its committee."""

from __future__ import annotations

import pytest

from tests.browser.test_pages import login

pytestmark = pytest.mark.browser

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
PUBLIC = ["/login", "/towns/1/trust", "/r/1-AAAAAA"]
RESIDENT = ["/", "/me/ledger", "/shop", "/inbox", "/me/settings", "/me/family", "/card",
            "/pledges", "/reports/new", "/groups"]
COMMITTEE = ["/console/", "/console/villages/3", "/console/villages/3/residents",
             "/console/villages/3/dashboard", "/console/villages/3/registrations"]


def _serious(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] for n in v["nodes"][:3])
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("size", SIZES)
def test_pages_have_no_serious_accessibility_violations(browser, live_server, size):
    found = {}
    for who, paths in ((None, PUBLIC), ("xikou_r007", RESIDENT), ("xikou_admin", COMMITTEE)):
        context = browser.new_context(viewport=SIZES[size], locale="zh-CN")
        page = context.new_page()
        if who:
            login(page, live_server, who)
        for path in paths:
            page.goto(f"{live_server.url}{path}")
            problems = _serious(page)
            if problems:
                found[path] = problems
        context.close()
    assert not found, "\n".join(f"{p}: {v}" for p, vs in found.items() for v in vs)


def test_elder_mode_meets_the_ageing_friendly_sizes(browser, live_server):
    """MIIT 适老化: body text ≥ 22 px, tap targets ≥ 48 px, and still no serious violation."""
    context = browser.new_context(viewport=SIZES["phone"], locale="zh-CN")
    page = context.new_page()
    login(page, live_server, "xikou_r008")
    page.goto(f"{live_server.url}/")
    body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert body >= 18  # normal mode already
    page.click("#elder-toggle")
    page.wait_for_selector("#elder-actions")
    sizes = page.evaluate("""() => {
      const px = e => parseFloat(getComputedStyle(e).fontSize);
      const texts = [...document.querySelectorAll('main p, main a, main button, main span')]
        .filter(e => e.offsetParent && e.textContent.trim());
      const taps = [...document.querySelectorAll('main a.button, main button')]
        .filter(e => e.offsetParent).map(e => e.getBoundingClientRect().height);
      return {text: Math.min(...texts.map(px)), tap: Math.min(...taps),
              actions: document.querySelectorAll('#elder-actions a').length};
    }""")
    assert sizes["text"] >= 22 and sizes["tap"] >= 48 and sizes["actions"] == 4, sizes
    assert not _serious(page)
    page.goto(f"{live_server.url}/shop")  # every page, not only the home
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 22
    context.close()
