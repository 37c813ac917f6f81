"""长辈模式: one tap for larger type and a simpler home, remembered for the account."""

from __future__ import annotations

import re

import pytest

from tests.factories import csrf_from, make_user, make_village, web_login

pytestmark = pytest.mark.usefixtures("clean_audit")


def _actions(page: str) -> list[str]:
    nav = page.split('id="actions"')[1].split("</nav>")[0]
    return re.findall(r'href="([^"]+)"', nav)


async def test_elder_mode_is_one_tap_and_stays_with_the_account(app, client):
    resident = await make_user(village=await make_village())
    await web_login(client, resident)
    home = await client.get("/")
    assert 'class="elder"' not in home.text and "长辈模式" in home.text
    on = await client.post("/me/elder-mode", data={"on": "1", "csrf_token": csrf_from(home.text)})
    assert on.status_code == 303
    simple = await client.get("/")
    assert '<html lang="zh-CN" class="elder">' in simple.text
    # Bigger, not fewer (issue 28): every action of the standard home, check-in first.
    assert _actions(simple.text) == _actions(home.text)
    assert _actions(simple.text)[:3] == ["/scan", "/reports/new", "/inbox"]
    assert len(_actions(home.text)) == 13 and "/groups" in _actions(simple.text)
    assert "/me/household" in _actions(simple.text)  # 我家 (issue 33)
    client.cookies.clear()  # another day, another phone: still elder mode
    await web_login(client, resident)
    again = await client.get("/")
    assert 'class="elder"' in again.text and "标准模式" in again.text
    off = await client.post("/me/elder-mode", data={"on": "0", "csrf_token": csrf_from(again.text)})
    assert off.status_code == 303 and 'class="elder"' not in (await client.get("/")).text


async def test_elder_mode_needs_a_login_and_the_form_token(app, client):
    assert (await client.post("/me/elder-mode", data={"on": "1"})).status_code in (303, 403)
    resident = await make_user(village=await make_village())
    await web_login(client, resident)
    forged = await client.post("/me/elder-mode", data={"on": "1", "csrf_token": "forged"})
    assert forged.status_code == 403
    assert 'class="elder"' not in (await client.get("/")).text
