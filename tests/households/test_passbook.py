"""积分存折: staff print a resident's entries since the last print; the next print
continues after it, with the balance brought forward."""

from __future__ import annotations

import re

import pytest

from tests.factories import (
    api_token,
    csrf_from,
    make_event,
    make_user,
    make_village,
    web_login,
)
from torreya.checkins.codes import member_code
from torreya.models import PassbookPrint, Role

pytestmark = pytest.mark.usefixtures("clean_audit")


def _lines(html: str) -> list[list[str]]:
    body = html.split('id="passbook"')[1].split("</tbody>")[0]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(
        r"<td[^>]*>(.*?)</td>", row, re.S)] for row in re.findall(r"<tr[^>]*>(.*?)</tr>",
                                                                 body, re.S)[1:]]


async def test_each_print_continues_where_the_last_ended(client, settings):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    staff = await make_user(Role.STAFF, village)
    elder = await make_user(village=village, display_name="王秀英", password_hash=None)
    await _check_in_for(client, settings, village, elder, admin)
    token = await web_login(client, staff)
    first = await client.get(f"/console/users/{elder.id}/passbook")
    assert first.status_code == 200 and "积分存折" in first.text and "王秀英" in first.text
    assert [line[2:] for line in _lines(first.text)] == [["+10", "10"], ["+20", "30"]]
    up_to = re.search(r'name="up_to" value="(\d+)"', first.text).group(1)
    done = await client.post(f"/console/users/{elder.id}/passbook/printed",
                             data={"csrf_token": csrf_from(first.text), "up_to": up_to},
                             follow_redirects=True)
    assert "已标记为打印" in done.text
    # marking the same page again records nothing more
    await client.post(f"/console/users/{elder.id}/passbook/printed",
                      data={"csrf_token": token, "up_to": up_to})
    assert await PassbookPrint.filter(user_id=elder.id).count() == 1
    empty = await client.get(f"/console/users/{elder.id}/passbook")
    assert "上次打印后没有新记录。余额：30" in empty.text
    await client.post(f"/api/v1/users/{elder.id}/adjustments",
                      headers=await api_token(client, admin), json={"delta": 5, "memo": "表彰"})
    second = await client.get(f"/console/users/{elder.id}/passbook")
    assert _lines(second.text) == [["承上页", "30"], [_lines(second.text)[1][0], "表彰", "+5",
                                                      "35"]]


async def _check_in_for(client, settings, village, elder, admin):
    """An elder's points as staff scan their card (here: two events through the API)."""
    for points in (10, 20):
        event = await make_event(village, points=points)
        answer = await client.post(f"/api/v1/events/{event.id}/checkins",
                                   headers=await api_token(client, admin),
                                   json={"member_code": member_code(
                                       settings, user_id=elder.id, serial=elder.card_serial)})
        assert answer.status_code == 201, answer.text


async def test_only_staff_within_reach_print_a_passbook(client):
    village = await make_village()
    elder = await make_user(village=village)
    await web_login(client, await make_user(village=village))
    assert (await client.get(f"/console/users/{elder.id}/passbook")).status_code == 403
    client.cookies.clear()
    await web_login(client, await make_user(Role.STAFF, await make_village()))
    assert (await client.get(f"/console/users/{elder.id}/passbook")).status_code == 404

