"""Scanning without signal (issue 15), in Chromium with the context offline: the staff's
scanner keeps working through a reload, checks cards and vouchers by their signature,
queues the scans and syncs them once, from two tabs. Residents of 榧香村 r004–r008."""

from __future__ import annotations

import io
import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import shot
from tests.browser.test_pages import login

pytestmark = pytest.mark.browser


def scanned(page, live_server, path: str) -> str:
    """What a camera reads from the QR on that page (ZXing on a screenshot)."""
    import zxingcpp
    from PIL import Image

    page.goto(f"{live_server.url}{path}")
    image = Image.open(io.BytesIO(page.locator(".card-qr").screenshot()))
    return zxingcpp.read_barcodes(image)[0].text.rsplit("/", 1)[1]


def balance(live_server, username: str) -> int:
    with live_server.api(username) as api:
        return api.get("/api/v1/me").json()["balance"]


def record(page, code: str) -> str:
    page.fill("#offline-code", code)
    page.click("#offline-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('scan-result').textContent !== ''")
    text = page.inner_text("#scan-result")
    page.evaluate("() => { document.getElementById('scan-result').textContent = ''; }")
    return text


def test_staff_scan_cards_and_a_voucher_without_signal_and_sync_once(browser, live_server):
    people = ["feixiang_r004", "feixiang_r006", "feixiang_r008"]
    ids = {}
    for name in people + ["feixiang_r007", "feixiang_staff"]:
        with live_server.api(name) as api:
            ids[name] = api.get("/api/v1/me").json()
    # a voucher to hand over: r008 redeems the cheapest item it can afford
    with live_server.api("feixiang_r008") as api:
        me = ids["feixiang_r008"]
        items = api.get(f"/api/v1/villages/{me['village_id']}/rewards").json()["items"]
        cheapest = min((i for i in items if i["cost"] <= me["balance"]), key=lambda i: i["cost"])
        voucher = api.post("/api/v1/redemptions", json={"reward_id": cheapest["id"]}).json()
    before = {name: balance(live_server, name) for name in people}

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    login(page, live_server, "feixiang_staff")
    page.wait_for_url(re.compile(r".*/console/"))
    cards = {name: scanned(page, live_server, f"/users/{ids[name]['id']}/card")
             for name in people}
    voucher_code = scanned(page, live_server, f"/vouchers/{voucher['id']}")
    # r007 lost a card and was given a new one: the old one must be refused offline
    old_card = scanned(page, live_server, f"/users/{ids['feixiang_r007']['id']}/card")
    page.goto(f"{live_server.url}/console/users/{ids['feixiang_r007']['id']}")
    page.click("form[action$='/card/reissue'] button")
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/console/")
    event_id = page.locator("#events a", has_text="平安积分集市").first.get_attribute(
        "href").rsplit("/", 1)[1]

    # with signal: open the scanner once; the service worker and IndexedDB keep it
    scanner = f"{live_server.url}/events/{event_id}/scan/offline"
    ready = "() => document.getElementById('offline-scanner').dataset.ready === 'yes'"
    page.goto(scanner)
    page.wait_for_function(ready)
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now under the service worker, which keeps the page as it passes
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.wait_for_function(ready)

    context.set_offline(True)
    page.reload()  # no signal: the kept page and the kept kit
    page.wait_for_function(ready)
    assert "无信号" in page.inner_text("#net-state")
    for name, code in cards.items():
        assert "已记录，待同步" in record(page, code), name
    assert "已记录，待同步" in record(page, voucher_code)
    assert "不再有效" in record(page, old_card)
    forged = old_card[:-6] + ("AAAAAA" if not old_card.endswith("AAAAAA") else "BBBBBB")
    assert "不是本镇" in record(page, forged)
    assert "已在本机扫过" in record(page, cards["feixiang_r004"])
    page.reload()  # still offline: the page and its queue are still there
    page.wait_for_selector("#queue li")
    assert page.locator("#queue li.waiting").count() == 4
    shot(page, "offline-queue")

    # a second tab with the same queue; the signal comes back and both send it
    second = context.new_page()
    second.goto(scanner)
    second.wait_for_selector("#queue li")
    context.set_offline(False)
    page.click("#sync-now")
    second.click("#sync-now")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    emptied = "() => document.querySelectorAll('#queue li.waiting').length === 0"
    for tab in (page, second):
        try:
            tab.wait_for_function(emptied, timeout=20_000)
        except PlaywrightTimeout:
            # A tab whose request failed as the signal came back says so and keeps its queue
            # (once in a CI run, the server having applied the other tab's): staff press
            # 立即上传 again. The balances below still prove each scan counted once.
            tab.click("#sync-now")
            tab.wait_for_function(emptied)
    states = page.locator("#queue li .state").all_inner_texts()
    assert sum("已入账" in s for s in states) == 3 and sum("已交付" in s for s in states) == 1
    shot(page, "offline-synced")
    for name in people:
        assert balance(live_server, name) == before[name] + 10, name  # credited once
    with live_server.api("feixiang_r008") as api:
        mine = api.get("/api/v1/me/redemptions").json()["items"]
        assert next(v for v in mine if v["id"] == voucher["id"])["status"] == "fulfilled"
    context.close()


def test_a_resident_without_signal_keeps_the_scanned_code(browser, live_server):
    """The service worker shows a retry page, not the browser's error, and keeps the code."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    login(page, live_server, "feixiang_r004")
    page.wait_for_url(f"{live_server.url}/")
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    target = f"{live_server.url}/c/a-scanned-code"
    page.goto(target)
    try:
        page.wait_for_selector("#no-signal", timeout=15_000)
    except PlaywrightTimeoutError:
        # CI at bebdbad (PostgreSQL, both suites on two cores) once showed no page of ours
        # here for 30 s; four full runs before passed. The worker is asked once more; a
        # second miss still fails below.
        page.goto(target)
    assert page.url == target
    assert "没有信号" in page.inner_text("#no-signal")
    page.click("#retry")  # still no signal: the same page, the code still in the address
    page.wait_for_selector("#no-signal")
    assert page.url == target
    context.set_offline(False)  # signal again: it tries again by itself
    page.wait_for_selector("#no-signal", state="detached")
    page.wait_for_selector("main h1")
    assert page.url == target and "签到" in page.inner_text("main h1")
    context.close()
