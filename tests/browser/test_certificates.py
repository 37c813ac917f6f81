"""A volunteer asks for a certificate of hours on a 360 px phone; the clerk prints it on one
A4 page whose two QR codes a camera reads (ZXing here): the verify address, which says it
is valid, and the signed text, which verifies offline with the town's published key."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.browser.conftest import shot
from tests.browser.test_pages import login
from tests.browser.test_small_screens import OVERFLOW
from torreya.hours import certificate

pytestmark = pytest.mark.browser


@pytest.mark.skipif(shutil.which("pdftoppm") is None,
                    reason="pdftoppm not found (apt-get install poppler-utils)")
def test_a_certificate_asked_for_on_a_phone_prints_on_one_a4_page_and_checks(
        browser, live_server, tmp_path):
    import zxingcpp
    from PIL import Image

    phone = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN",
                                is_mobile=True, has_touch=True).new_page()
    login(phone, live_server, "gulaicun_r001")
    phone.wait_for_url(f"{live_server.url}/")
    phone.click("a[href='/me/hours']")
    total = phone.locator("#hours-total").inner_text()
    assert "小时" in total, total  # the demo's patrols count
    found = phone.evaluate(OVERFLOW)
    assert found["scroll"] <= found["width"], found
    shot(phone, "my-hours")
    phone.click("#certificate-form button[type=submit]")
    phone.wait_for_url(f"{live_server.url}/certificates/*")
    assert phone.locator("#certificate").get_attribute("data-status") == "valid"
    assert "有效" in phone.locator("#certificate-status").inner_text()
    found = phone.evaluate(OVERFLOW)
    assert found["scroll"] <= found["width"], found
    shot(phone, "certificate-phone")
    address = phone.url

    # the clerk's browser prints at the paper's width (A4 at 96 dpi)
    desk = browser.new_context(viewport={"width": 794, "height": 1123},
                               locale="zh-CN").new_page()
    desk.goto(address)
    pdf = tmp_path / "certificate.pdf"
    desk.pdf(path=str(pdf), format="A4", print_background=True)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    assert "Pages:           1" in info.stdout, info.stdout
    subprocess.run(["pdftoppm", "-r", "200", "-png", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    read = [r.text for image in sorted(tmp_path.glob("page*.png"))
            for r in zxingcpp.read_barcodes(Image.open(image))]
    assert address in read, read
    offline = next(text for text in read if text.startswith(certificate.QR_PREFIX))
    with live_server.api("gulaicun_r001") as user:
        code = address.rsplit("/", 1)[1]
        doc = user.get(f"/api/v1/certificates/{code}").json()
    saved = certificate.read_saved(offline)
    assert certificate.problems(saved, doc["public_key"]) == []
    assert json.loads(saved["payload"])["minutes"] == doc["minutes"]
    assert certificate.problems(saved, "00" * 32) != []
    desk.context.close()
    phone.context.close()
