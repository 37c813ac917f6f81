"""亲属代办: one phone acts for several residents; every act says so, and the elder sees it."""

from __future__ import annotations

import pytest

from tests.factories import csrf_from, make_event, make_user, make_village, web_login
from tests.signin.flows import texts_to, web_code_login
from torreya.checkins.codes import poster_token
from torreya.ledger.service import adjust_points
from torreya.models import (
    AuditEvent,
    FamilyHelper,
    LedgerEntry,
    Reward,
    SmsCode,
    SmsMessage,
    User,
)

pytestmark = pytest.mark.usefixtures("clean_audit")
ELDER_PHONE = "+8613900000001"
SON_PHONE = "+8613700000002"


async def _family(village=None):
    village = village or await make_village()
    elder = await make_user(village=village, display_name="王秀英", phone=ELDER_PHONE,
                            password_hash=None)
    staff = await make_user(role="staff", village=village)
    await FamilyHelper.create(member_id=elder.id, phone=SON_PHONE, name="儿子 小明",
                              added_by_id=staff.id)
    return village, elder, staff


async def _choose(client, page, user_id: int):
    return await client.post("/login/choose", data={"user_id": str(user_id),
                                                    "csrf_token": csrf_from(page.text)})


async def test_a_helper_picks_whom_to_act_for_and_every_act_says_so(
        client, settings, phone_inbox):
    village, elder, _staff = await _family()
    son = await make_user(village=village, display_name="王小明", phone=SON_PHONE)
    chooser = await web_code_login(client, phone_inbox, SON_PHONE)
    assert chooser.status_code == 200 and "您要为谁办理" in chooser.text
    assert "我自己：王小明" in chooser.text and "为 王秀英 办理" in chooser.text
    assert "代办人：儿子 小明" in chooser.text
    done = await _choose(client, chooser, elder.id)
    assert done.status_code == 303
    home = await client.get("/")
    assert "王秀英" in home.text and "您正在为 王秀英 代办" in home.text
    # A check-in made for the elder: her points, marked in the memo, with an audit record.
    event = await make_event(village, points=10)
    token = poster_token(settings, event_id=event.id, ends_at=event.ends_at)
    page = await client.get(f"/c/{token}")
    answer = await client.post(f"/c/{token}", data={"csrf_token": csrf_from(page.text)})
    assert answer.status_code == 201 and "+10" in answer.text
    entry = await LedgerEntry.get(user_id=elder.id)
    assert entry.delta == 10 and entry.proxy and "亲属代办：儿子 小明" in entry.memo
    act = await AuditEvent.get(tag="signin:helper:act")
    assert act.entry_id == entry.id and act.data["helper"]["name"] == "儿子 小明"
    assert act.data["helper"]["phone"] == "137****0002"
    assert (await User.get(id=son.id)).balance == 0
    # The elder sees who acted, and when.
    client.cookies.clear()
    await web_code_login(client, phone_inbox, ELDER_PHONE)
    mine = await client.get("/me/family")
    assert "儿子 小明" in mine.text and "积分 +10" in mine.text and "为您登录了" in mine.text


async def test_a_number_that_is_only_a_helper_still_chooses_and_cannot_manage(
        client, phone_inbox):
    _village, elder, _staff = await _family()
    chooser = await web_code_login(client, phone_inbox, SON_PHONE)
    assert "我自己" not in chooser.text and "为 王秀英 办理" in chooser.text
    assert (await _choose(client, chooser, 999_999)).status_code == 422  # not a choice
    await _choose(client, chooser, elder.id)
    page = await client.get("/me/family")
    assert 'id="add-helper"' not in page.text  # a helper names no other helpers
    added = await client.post("/me/family", data={
        "phone": "13600000003", "name": "外人", "csrf_token": csrf_from(page.text)})
    assert added.status_code == 403 and "只能由 王秀英 本人办理" in added.text
    assert await FamilyHelper.filter(member_id=elder.id).count() == 1
    ended = await client.post("/logout/everywhere", data={"csrf_token": csrf_from(page.text)})
    assert ended.status_code == 403 and "只能由 王秀英 本人办理" in ended.text


async def test_removing_a_helper_ends_their_login_at_once(client, phone_inbox):
    _village, elder, staff = await _family()
    chooser = await web_code_login(client, phone_inbox, SON_PHONE)
    await _choose(client, chooser, elder.id)
    assert (await client.get("/")).status_code == 200
    helper = await FamilyHelper.get(member_id=elder.id)
    await helper.delete()
    assert (await client.get("/")).status_code == 303  # back to the login page


async def test_a_resident_invites_a_helper_who_is_texted(client, phone_inbox):
    village = await make_village()
    elder = await make_user(village=village, display_name="李桂花", phone=ELDER_PHONE)
    csrf = await web_login(client, elder, next_url="/me/family")
    page = await client.get("/me/family")
    assert 'id="add-helper"' in page.text
    added = await client.post("/me/family", data={
        "phone": "137 0000 0002", "name": "女儿 小芳", "csrf_token": csrf})
    assert added.status_code == 303
    assert "女儿 小芳" in (await client.get("/me/family")).text
    # Queued for the sender (a notice: it waits out the quiet hours at night).
    [text] = await SmsMessage.filter(phone=SON_PHONE)
    assert "李桂花" in text.text and "代办" in text.text
    assert await AuditEvent.filter(tag="signin:helper:add", actor_id=elder.id).exists()


@pytest.mark.parametrize(("phone", "name", "says"), [
    ("12345", "儿子", "手机号"),
    (ELDER_PHONE, "儿子", "本人的手机号"),
    (SON_PHONE, "儿子", "已经是该居民的代办亲属"),
    ("13600000009", "<b>儿子</b>", "<"),
    ("13600000009", "", "name"),
])
async def test_bad_helpers_are_refused_and_nothing_is_written(
        client, phone_inbox, phone, name, says):
    village, elder, staff = await _family()
    csrf = await web_login(client, staff, next_url=f"/console/users/{elder.id}")
    added = await client.post(f"/users/{elder.id}/helpers", data={
        "phone": phone, "name": name, "csrf_token": csrf})
    assert added.status_code == 303
    page = await client.get(f"/console/users/{elder.id}")
    assert "flash-error" in page.text and says in page.text.split("flash-error")[1][:300]
    assert await FamilyHelper.filter(member_id=elder.id).count() == 1


async def test_staff_of_another_village_cannot_touch_a_residents_helpers(client):
    _village, elder, _staff = await _family()
    stranger = await make_user(role="staff", village=await make_village())
    csrf = await web_login(client, stranger, next_url="/console/")
    added = await client.post(f"/users/{elder.id}/helpers", data={
        "phone": "13600000009", "name": "外人", "csrf_token": csrf})
    assert added.status_code == 303
    assert await FamilyHelper.filter(member_id=elder.id).count() == 1


async def test_the_api_asks_whom_for_and_keeps_the_code_until_told(client, phone_inbox):
    village, elder, _staff = await _family()
    son = await make_user(village=village, phone=SON_PHONE)
    sent = await client.post("/api/v1/auth/sms-code", json={"phone": SON_PHONE})
    assert sent.status_code == 202
    code = (await texts_to(phone_inbox, SON_PHONE))[-1]["code"]
    ask = await client.post("/api/v1/auth/token", json={"phone": SON_PHONE, "code": code})
    assert ask.status_code == 409 and ask.json()["error"]["code"] == "choose_account"
    assert ask.json()["error"]["details"]["accounts"] == [
        {"user_id": son.id, "display_name": son.display_name, "as_family_helper": False},
        {"user_id": elder.id, "display_name": "王秀英", "as_family_helper": True}]
    assert (await SmsCode.get(phone=SON_PHONE)).used_at is None
    token = await client.post("/api/v1/auth/token", json={
        "phone": SON_PHONE, "code": code, "user_id": elder.id})
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert (await client.get("/api/v1/me", headers=headers)).json()["id"] == elder.id
    assert (await client.post("/api/v1/auth/token", json={
        "phone": SON_PHONE, "code": code, "user_id": elder.id})).status_code == 401  # used
    await FamilyHelper.filter(member_id=elder.id).delete()
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


async def test_a_helpers_redemption_and_its_refund_are_marked_as_theirs(client, phone_inbox):
    """The helper is passed to the ledger by the command (issue 27), not read by it from the
    request: redeeming and cancelling through the API name them in the entry and the trail."""
    village, elder, _staff = await _family()
    await adjust_points(actor=await make_user(role="village_admin", village=village),
                        target=elder, delta=40, memo="开户")
    reward = await Reward.create(town_id=village.town_id, village=village, name="毛巾", cost=15)
    await client.post("/api/v1/auth/sms-code", json={"phone": SON_PHONE})
    code = (await texts_to(phone_inbox, SON_PHONE))[-1]["code"]
    token = await client.post("/api/v1/auth/token", json={"phone": SON_PHONE, "code": code})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    redeemed = await client.post("/api/v1/redemptions", json={"reward_id": reward.id},
                                 headers=headers)
    assert redeemed.status_code == 201 and redeemed.json()["balance"] == 25
    cancelled = await client.post(f"/api/v1/redemptions/{redeemed.json()['id']}/cancel",
                                  headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["balance"] == 40
    entries = await LedgerEntry.filter(user_id=elder.id, kind__in=["redemption", "refund"]
                                       ).order_by("id")
    assert [(e.kind, e.delta, e.proxy) for e in entries] == [
        ("redemption", -15, True), ("refund", 15, True)]
    assert all("亲属代办：儿子 小明" in e.memo for e in entries)
    acts = await AuditEvent.filter(tag="signin:helper:act").order_by("id")
    assert [a.entry_id for a in acts] == [e.id for e in entries]
