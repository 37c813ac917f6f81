"""WeChat web authorization (网页授权) through authlib, against a local stand-in of WeChat's
endpoints that behaves as its documentation says (tests/wechat_standin.py)."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.factories import make_user, make_village, web_login
from tests.signin.flows import code_login_from, web_code_login
from tests.wechat_standin import APPID, SECRET, WechatStandIn
from torreya.models import AuditEvent, UserIdentity
from torreya.signin import wechat as wechat_module

pytestmark = pytest.mark.usefixtures("clean_audit")
PHONE = "+8613912345678"
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 12; V2111A) AppleWebKit/537.36 Chrome/116.0 "
             "Mobile Safari/537.36 MicroMessenger/8.0.47.2560")


@pytest.fixture
def wechat():
    with WechatStandIn() as standin:
        yield standin


@pytest.fixture
def wechat_app(app, wechat):
    app.state.settings = dataclasses.replace(
        app.state.settings, WECHAT_APPID=APPID, WECHAT_SECRET=SECRET,
        WECHAT_AUTHORIZE_BASE=wechat.url, WECHAT_API_BASE=wechat.url)
    return app


async def _wechat(client, openid: str, *, decision: str = "allow", link: bool = False):
    """Our /login/wechat → WeChat's consent page, as `openid` → back to our callback."""
    start = await client.get("/login/wechat?next=/" + ("&link=1" if link else ""))
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    async with httpx.AsyncClient() as phone:  # the person's WeChat browser at WeChat
        page = await phone.get(authorize.split("#")[0])
        assert "微信授权登录" in page.text, page.text
        query = parse_qs(urlsplit(authorize).query)
        answer = await phone.post(f"{urlsplit(authorize).scheme}://{urlsplit(authorize).netloc}"
                                  "/connect/oauth2/authorize/confirm", data={
                                      "redirect_uri": query["redirect_uri"][0],
                                      "scope": query["scope"][0], "state": query["state"][0],
                                      "openid": openid, "decision": decision})
    back = urlsplit(answer.headers["location"])
    return await client.get(f"{back.path}?{back.query}")


async def test_the_authorize_address_is_wechats_own_shape(wechat_app, client):
    start = await client.get("/login/wechat")
    url = start.headers["location"]
    assert url.endswith("#wechat_redirect")
    query = urlsplit(url.split("#")[0]).query
    assert [k for k, _v in (p.split("=", 1) for p in query.split("&"))] == [
        "appid", "redirect_uri", "response_type", "scope", "state"]
    params = parse_qs(query)
    assert params["appid"] == [APPID] and params["scope"] == ["snsapi_base"]
    assert params["redirect_uri"][0].endswith("/login/wechat/callback")
    assert "client_id" not in params


async def test_first_wechat_login_links_after_one_sms_code_then_one_tap(
        wechat_app, wechat, client, phone_inbox):
    resident = await make_user(village=await make_village(), phone=PHONE,
                               display_name="王秀英", password_hash=None)
    first = await _wechat(client, "o-wang")
    assert first.status_code == 200 and "第一次用微信登录" in first.text
    assert not await UserIdentity.exists()
    done = await code_login_from(client, phone_inbox, first, PHONE)
    assert done.status_code == 303
    identity = await UserIdentity.get(subject="o-wang")
    assert identity.user_id == resident.id and identity.issuer == f"wechat:{APPID}"
    assert await AuditEvent.filter(tag="signin:identity:link").count() == 1
    # The code was exchanged by GET with appid and secret, as WeChat wants.
    assert wechat.token_requests[-1]["appid"] == APPID
    assert wechat.token_requests[-1]["secret"] == SECRET
    client.cookies.clear()
    again = await _wechat(client, "o-wang")
    assert again.status_code == 303 and again.headers["location"] == "/"
    assert "王秀英" in (await client.get("/")).text


async def test_userinfo_scope_reads_the_profile_with_the_token_in_the_query(
        app, wechat, client):
    app.state.settings = dataclasses.replace(
        app.state.settings, WECHAT_APPID=APPID, WECHAT_SECRET=SECRET,
        WECHAT_SCOPE="snsapi_userinfo", WECHAT_AUTHORIZE_BASE=wechat.url,
        WECHAT_API_BASE=wechat.url)
    resident = await make_user(village=await make_village(), phone=PHONE)
    await UserIdentity.create(user_id=resident.id, issuer=f"wechat:{APPID}", subject="o-li",
                              label="微信")
    answer = await _wechat(client, "o-li")
    assert answer.status_code == 303
    refused = await _wechat(client, "o-li", decision="deny")  # no code: told plainly
    assert refused.status_code == 400 and "微信登录没有完成" in refused.text


@pytest.mark.parametrize("errcode", [40029, 40163, -1])
async def test_a_wechat_errcode_in_a_200_answer_is_a_clear_refusal(
        wechat_app, wechat, client, errcode):
    await make_user(village=await make_village(), phone=PHONE)
    wechat.fail_next_token = errcode
    answer = await _wechat(client, "o-wang")
    assert answer.status_code == 400 and "微信登录没有完成" in answer.text
    assert not await UserIdentity.exists()
    assert (await client.get("/")).status_code == 303


async def test_a_wrong_secret_and_a_foreign_state_are_refused(wechat_app, wechat, client):
    wechat.secret = "not-ours"
    assert (await _wechat(client, "o-wang")).status_code == 400
    wechat.secret = SECRET
    await client.get("/login/wechat")  # a state of this browser …
    forged = await client.get("/login/wechat/callback?code=abc&state=not-this-browsers")
    assert forged.status_code == 400 and "重新开始" in forged.text
    assert not await UserIdentity.exists()


async def test_the_button_shows_when_configured_and_first_inside_wechat(
        app, wechat_app, client):
    plain = await client.get("/login")
    assert 'id="wechat-login"' in plain.text
    assert plain.text.index('id="wechat-login"') > plain.text.index('id="sms-login"')
    inside = await client.get("/login", headers={"user-agent": WECHAT_UA})
    assert inside.text.index('id="wechat-login"') < inside.text.index('id="sms-login"')
    app.state.settings = dataclasses.replace(app.state.settings, WECHAT_APPID="")
    assert 'wechat-login' not in (await client.get("/login")).text
    assert (await client.get("/login/wechat")).status_code == 404


async def test_a_resident_links_wechat_in_settings_and_one_openid_is_one_resident(
        wechat_app, client):
    village = await make_village()
    resident = await make_user(village=village)
    other = await make_user(village=village)
    await web_login(client, resident, next_url="/me/settings")
    page = await client.get("/me/settings")
    assert 'id="link-wechat"' in page.text
    linked = await _wechat(client, "o-mine", link=True)
    assert linked.status_code == 303 and linked.headers["location"] == "/me/settings"
    assert (await UserIdentity.get(subject="o-mine")).user_id == resident.id
    assert 'id="link-wechat"' not in (await client.get("/me/settings")).text
    client.cookies.clear()
    await web_login(client, other, next_url="/me/settings")
    taken = await _wechat(client, "o-mine", link=True)
    assert taken.status_code == 303
    assert "已关联另一位居民" in (await client.get("/me/settings")).text
    assert await UserIdentity.filter(subject="o-mine").count() == 1


async def test_a_waiting_wechat_account_links_only_in_its_own_flow_and_only_for_minutes(
        wechat_app, client, phone_inbox, monkeypatch):
    """Issue 26: an unlinked WeChat identity waited 15 minutes in the browser and was linked
    to whoever next logged in by SMS there (a shared phone, the office PC)."""
    village = await make_village()
    await make_user(village=village, phone=PHONE, password_hash=None)
    other = "+8613912345679"
    await make_user(village=village, phone=other, password_hash=None)
    await _wechat(client, "o-stranger")
    assert (await web_code_login(client, phone_inbox, other)).status_code == 303
    assert not await UserIdentity.exists()  # the next person's login from a fresh page
    client.cookies.clear()
    first = await _wechat(client, "o-late")
    assert wechat_module.PENDING_SECONDS <= 5 * 60
    monkeypatch.setattr(wechat_module, "PENDING_SECONDS", 0)  # its minutes are up
    assert (await code_login_from(client, phone_inbox, first, PHONE)).status_code == 303
    assert not await UserIdentity.exists()
