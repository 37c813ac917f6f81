"""The clerk prints member cards for residents without a phone: an A4 PDF from Chromium
whose QR codes a camera reads (decoded here with ZXing) and which check people in."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.browser.conftest import shot
from tests.browser.test_pages import login
from torreya.masking import mask_name

pytestmark = pytest.mark.browser


def payload_of(url: str) -> str:
    """The signed fields of a scanned card or voucher (not checked here: the server and the
    offline scanner check the signature)."""
    import base64

    text = url.rsplit("/", 1)[1].split(".")[1]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


@pytest.mark.skipif(shutil.which("pdftoppm") is None,
                    reason="pdftoppm not found (apt-get install poppler-utils)")
def test_a_sheet_of_member_cards_prints_with_codes_a_camera_reads(browser, live_server,
                                                                   tmp_path):
    import zxingcpp
    from PIL import Image

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    login(page, live_server, "xikou_staff")
    page.goto(f"{live_server.url}/console/")
    page.click("a:has-text('溪口村')")
    page.click("#all-residents")
    page.select_option("select[name=filter]", "no_phone")
    page.click("#residents-search button[type=submit]")
    rows = page.locator("#residents tbody input[type=checkbox]")
    assert rows.count() >= 1
    page.check("#tick-all")
    shot(page, "residents")
    with page.expect_popup() as opened:
        page.click("button[value=cards]")
    sheet = opened.value
    sheet.wait_for_load_state()
    shot(sheet, "card-sheet")
    sheet.wait_for_selector(".card-sheet")
    names = sheet.locator(".card-name").all_inner_texts()
    codes = sheet.locator(".card-code").all_inner_texts()
    pdf = tmp_path / "cards.pdf"
    sheet.pdf(path=str(pdf), format="A4", print_background=True)
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    urls = []
    for image in sorted(tmp_path.glob("page*.png")):
        urls += [r.text for r in zxingcpp.read_barcodes(Image.open(image))]
    assert len(urls) == len(names) == rows.count(), (urls, names)
    # each QR holds the signed card (checked by a staff phone without signal), naming the
    # holder masked; the short code printed under it is for typing
    assert all(u.startswith(f"{live_server.url}/card/S1.") for u in urls), urls
    held = sorted(payload_of(u).split("|")[5] for u in urls)
    assert held == sorted(mask_name(n) for n in names)
    assert len({payload_of(u).split("|")[3] for u in urls}) == len(codes)
    page.goto(urls[0])  # what the scanning staff's phone opens: events to credit it to
    assert page.locator("form button[type=submit]").count() >= 1
    context.close()


def test_the_clerk_sees_the_report_count_change_as_it_is_filed_and_reviewed(browser,
                                                                             live_server):
    """The workbench of 溪口村's clerk: a resident (r002) files a report from their phone;
    the count goes up; the clerk opens it from the tile and accepts it; the count goes
    down."""
    clerk = browser.new_context(viewport={"width": 1280, "height": 900},
                                locale="zh-CN").new_page()
    login(clerk, live_server, "xikou_staff")
    clerk.wait_for_url(f"{live_server.url}/console/")

    def reports_waiting() -> int:
        clerk.goto(f"{live_server.url}/console/")
        return int(clerk.locator("#q-reports .count").inner_text())

    before = reports_waiting()
    phone = browser.new_context(viewport={"width": 390, "height": 844},
                                locale="zh-CN").new_page()
    login(phone, live_server, "xikou_r002")
    phone.wait_for_url(f"{live_server.url}/")
    phone.goto(f"{live_server.url}/reports/new")
    phone.fill("textarea[name=description]", "溪口桥头的护栏松了")
    phone.click("#report-button")
    phone.wait_for_load_state()
    assert reports_waiting() == before + 1
    clerk.click("#q-reports")
    clerk.click("a:has-text('溪口桥头的护栏松了')")
    clerk.click("#accept-button")
    clerk.wait_for_load_state()
    assert reports_waiting() == before
    shot(clerk, "workbench")
