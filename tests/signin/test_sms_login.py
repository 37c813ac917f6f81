"""Phone + SMS code (SPEC §5.1): the code goes through the gateway to a real local receiver;
the tests read it there, as the resident reads their phone."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from tests.factories import api_token, make_user, make_village
from torreya.db import now
from torreya.models import AuditEvent, Role, SmsCode, SmsMessage, SmsStatus, User
from torreya.notifications import sender
from torreya.signin.gateway import WebhookGateway

pytestmark = pytest.mark.usefixtures("clean_audit")
PHONE = "+8613912345678"


async def _deliver(receiver) -> list[dict]:
    """Run the sender once; the texts the receiver got."""
    await sender.send_due_sms(WebhookGateway(receiver.url, timeout=2.0))
    return [json.loads(body) for _headers, body in receiver.received]


async def _ask(client, phone="139 1234 5678", **headers):
    return await client.post("/api/v1/auth/sms-code", json={"phone": phone}, headers=headers)


async def _code_sent(client, receiver, phone="139 1234 5678") -> str:
    answer = await _ask(client, phone)
    assert answer.status_code == 202, answer.text
    texts = await _deliver(receiver)
    return texts[-1]["code"]


async def _sms_token(client, code, phone=PHONE):
    return await client.post("/api/v1/auth/token", json={"phone": phone, "code": code})


async def test_code_by_sms_signs_the_resident_in(client, phone_inbox):
    resident = await make_user(village=await make_village(), phone=PHONE, password_hash=None)
    answer = await _ask(client)
    assert answer.status_code == 202
    assert answer.json() == {"resend_after": 60, "expires_in": 300}
    [text] = await _deliver(phone_inbox)
    assert text["phone"] == PHONE and len(text["code"]) == 6 and text["code"].isdigit()
    assert text["text"] == f"您的平安积分登录验证码是{text['code']}，5分钟内有效，请勿告诉他人。"
    # Neither table keeps the digits once the text is out.
    assert text["code"] not in (await SmsMessage.get(user_id=resident.id)).text
    assert text["code"] not in (await SmsCode.get(phone=PHONE)).code_hash
    token = await _sms_token(client, text["code"])
    assert token.status_code == 200, token.text
    me = await client.get("/api/v1/me", headers={
        "Authorization": f"Bearer {token.json()['access_token']}"})
    assert me.json()["id"] == resident.id
    assert await AuditEvent.filter(tag="accounts:login:success",
                                   subject=f"user:{resident.id}").exists()


async def test_a_code_is_single_use_even_when_raced(client, phone_inbox):
    await make_user(village=await make_village(), phone=PHONE)
    code = await _code_sent(client, phone_inbox)
    answers = await asyncio.gather(*[_sms_token(client, code) for _ in range(8)])
    assert sorted(a.status_code for a in answers) == [200] + [401] * 7
    assert (await _sms_token(client, code)).json()["error"]["code"] == "invalid_code"


async def test_five_wrong_tries_burn_the_code(client, phone_inbox):
    await make_user(village=await make_village(), phone=PHONE)
    code = await _code_sent(client, phone_inbox)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        assert (await _sms_token(client, wrong)).status_code == 401
    assert (await _sms_token(client, code)).status_code == 401  # burnt, even the right one


async def test_expired_code_and_code_for_another_number_are_refused(client, phone_inbox):
    await make_user(village=await make_village(), phone=PHONE)
    other = await make_user(village=await make_village(), phone="+8613700000001")
    code = await _code_sent(client, phone_inbox)
    answer = await _sms_token(client, code, phone="13700000001")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_code"
    await SmsCode.filter(phone=PHONE).update(expires_at=now() - timedelta(seconds=1))
    assert (await _sms_token(client, code)).status_code == 401
    assert (await User.get(id=other.id)).is_active


async def test_unknown_numbers_get_the_same_answer_and_their_code(client, phone_inbox):
    """The same answer and the same work for every number: nothing tells whether it has an
    account. A newcomer gets their code too, to prove the number and register."""
    await make_user(village=await make_village(), phone=PHONE)
    known, unknown = await _ask(client), await _ask(client, "13600000000")
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert sorted(t["phone"] for t in await _deliver(phone_inbox)) == [
        "+8613600000000", PHONE]
    newcomer = next(json.loads(b) for _h, b in phone_inbox.received
                    if json.loads(b)["phone"] == "+8613600000000")
    answer = await _sms_token(client, newcomer["code"], phone="+8613600000000")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "no_account"
    again_known, again_unknown = await _ask(client), await _ask(client, "13600000000")
    assert again_known.status_code == again_unknown.status_code == 429


async def test_resend_waits_a_minute_and_daily_caps_hold(client, phone_inbox):
    await make_user(village=await make_village(), phone=PHONE)
    assert (await _ask(client)).status_code == 202
    too_soon = await _ask(client)
    assert too_soon.status_code == 429
    assert too_soon.json()["error"]["code"] == "too_many_attempts"
    for _ in range(9):  # nine more over the day, each a minute after the one before
        await SmsCode.filter(phone=PHONE).update(created_at=now() - timedelta(minutes=2))
        assert (await _ask(client)).status_code == 202
    await SmsCode.filter(phone=PHONE).update(created_at=now() - timedelta(minutes=2))
    assert (await _ask(client)).status_code == 429  # the eleventh today
    # Per address: 30 numbers from one address, then no more.
    for n in range(20):
        assert (await _ask(client, f"1350000{n:04d}")).status_code == 202
    assert (await _ask(client, "13511112222")).status_code == 429


@pytest.mark.parametrize("phone", ["12345", "23800138000", "138001380001", "+1 415 555 0100",
                                   "138 0013 800a", "1３８００１３８０００٣"])
async def test_malformed_numbers_are_refused_by_name(client, phone):
    answer = await _ask(client, phone, **{"Accept-Language": "en"})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "phone"
    assert "11-digit" in answer.json()["error"]["message"]
    assert not await SmsCode.exists()


async def test_markup_in_a_number_is_refused_and_full_width_digits_are_read(client):
    markup = await _ask(client, "<b>138</b>")
    assert markup.status_code == 422 and markup.json()["error"]["field"] == "phone"
    assert (await _ask(client, "１３８ ００１３ ８０００")).status_code == 202
    assert (await SmsCode.get()).phone == "+8613800138000"


async def test_a_gateway_that_is_down_is_said_plainly(client, phone_inbox):
    await make_user(village=await make_village(), phone=PHONE)
    phone_inbox.plan = [500, 500]
    assert (await _ask(client)).status_code == 202
    await _deliver(phone_inbox)
    failed = await SmsMessage.get(purpose="code")
    assert failed.attempts == 1 and failed.last_error.startswith("HTTP 500")
    for phone in ("13912345678", "13600000000"):  # known or not, the same answer
        answer = await _ask(client, phone)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "sms_unavailable"


async def test_a_code_opens_only_resident_accounts(client, phone_inbox):
    village = await make_village()
    await make_user(Role.STAFF, village, phone=PHONE)
    code = await _code_sent(client, phone_inbox)
    answer = await _sms_token(client, code)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "no_account"


async def test_a_resident_who_turned_texts_off_still_gets_login_codes(client, phone_inbox):
    await make_user(village=await make_village(), phone=PHONE, sms_notifications=False)
    code = await _code_sent(client, phone_inbox)
    assert (await _sms_token(client, code)).status_code == 200


async def test_web_login_number_then_code_then_home(client, phone_inbox):
    resident = await make_user(village=await make_village(), phone=PHONE,
                               display_name="王秀英", password_hash=None)
    page = await client.get("/login")
    assert "获取验证码" in page.text
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    sent = await client.post("/login/sms", data={"csrf_token": csrf, "phone": "139 1234 5678",
                                                 "next": "/"})
    assert sent.status_code == 200 and "139****5678" in sent.text
    [text] = await _deliver(phone_inbox)
    wrong = await client.post("/login/sms/verify", data={"csrf_token": csrf, "phone": PHONE,
                                                         "code": "000000", "next": "/"})
    assert wrong.status_code == 401 and "验证码不对" in wrong.text
    done = await client.post("/login/sms/verify", data={"csrf_token": csrf, "phone": PHONE,
                                                        "code": text["code"], "next": "/"})
    assert done.status_code == 303
    home = await client.get("/")
    assert home.status_code == 200 and "王秀英" in home.text
    assert (await User.get(id=resident.id)).password_hash is None


async def test_phone_numbers_are_stored_as_e164_and_validated(client):
    village = await make_village()
    admin = await make_user(Role.VILLAGE_ADMIN, village)
    headers = await api_token(client, admin)
    made = await client.post("/api/v1/users", headers=headers, json={
        "username": "wang_xiuying", "display_name": "王秀英", "village_id": village.id,
        "role": "resident", "phone": "138-0013-8000"})
    assert made.status_code == 201, made.text
    assert (await User.get(username="wang_xiuying")).phone == "+8613800138000"
    bad = await client.post("/api/v1/users", headers=headers, json={
        "username": "li_si", "display_name": "李四", "village_id": village.id,
        "role": "resident", "phone": "010-12345678"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "phone"
    assert not await User.filter(username="li_si").exists()


async def test_quiet_hours_do_not_hold_back_a_code(client, phone_inbox, monkeypatch):
    from zoneinfo import ZoneInfo

    night = now().astimezone(ZoneInfo("Asia/Shanghai")).replace(hour=23)
    monkeypatch.setattr(sender, "now", lambda: night)
    await make_user(village=await make_village(), phone=PHONE)
    assert (await _ask(client)).status_code == 202
    assert len(await _deliver(phone_inbox)) == 1
    assert (await SmsMessage.get(purpose="code")).status == SmsStatus.SENT


async def test_staff_see_a_residents_number_masked_the_committee_whole(client):
    from tests.factories import web_login

    village = await make_village()
    resident = await make_user(village=village, phone=PHONE)
    # the committee sees the whole number, as people read it (issue 28)
    for role, shown in ((Role.STAFF, "139****5678"), (Role.VILLAGE_ADMIN, "139 1234 5678")):
        client.cookies.clear()
        await web_login(client, await make_user(role, village))
        page = await client.get(f"/console/users/{resident.id}")
        assert shown in page.text.split('id="phone"')[1].split("</p>")[0]
        if role == Role.STAFF:
            assert PHONE not in page.text and "139 1234 5678" not in page.text
