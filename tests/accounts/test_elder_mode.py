"""长辈模式: one tap for larger type and a simpler home, remembered for the account."""

from __future__ import annotations

import pytest

from tests.factories import csrf_from, make_user, make_village, web_login

pytestmark = pytest.mark.usefixtures("clean_audit")


async def test_elder_mode_is_one_tap_and_stays_with_the_account(app, client):
    resident = await make_user(village=await make_village())
    await web_login(client, resident)
    home = await client.get("/")
    assert 'class="elder"' not in home.text and "长辈模式" in home.text
    on = await client.post("/me/elder-mode", data={"on": "1", "csrf_token": csrf_from(home.text)})
    assert on.status_code == 303
    simple = await client.get("/")
    assert '<html lang="zh-CN" class="elder">' in simple.text
    actions = simple.text.split('id="elder-actions"')[1].split("</nav>")[0]
    assert actions.count('class="button big-action') == 4
    assert "/shop" in actions and "/me/ledger" in actions and "/groups" not in simple.text
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
