"""OpenID Connect sign-in against a real provider server (oidc-provider-mock from PyPI,
started here): its authorize page is a form with a `sub` field; `--user-claims` sets what
it says about each person."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.factories import make_user, make_village, web_login
from tests.oidc_provider import start_provider, stop_provider
from torreya.models import AuditEvent, UserIdentity

pytestmark = pytest.mark.usefixtures("clean_audit")
PHONE = "+8613912345678"
PEOPLE = [
    {"sub": "zlb-wang", "name": "王秀英", "phone_number": PHONE, "phone_number_verified": True},
    {"sub": "zlb-unverified", "phone_number": PHONE, "phone_number_verified": False},
    {"sub": "zlb-stranger", "phone_number": "+8613600000000", "phone_number_verified": True},
    {"sub": "zlb-nophone", "name": "无手机"},
]


@pytest.fixture(scope="module")
def provider():
    try:
        server, url = start_provider(PEOPLE)
    except RuntimeError as error:
        pytest.fail(str(error))
    yield url
    stop_provider(server)


@pytest.fixture
def oidc_app(app, provider):
    app.state.settings = dataclasses.replace(
        app.state.settings, OIDC_ISSUER=provider, OIDC_CLIENT_ID="torreya",
        OIDC_CLIENT_SECRET="torreya-secret", OIDC_LABEL="浙里办登录")
    return app


async def _sign_in(client, sub: str, *, next_url: str = "/", link: bool = False):
    """Our /login/oidc → the provider's form, submitted as `sub` → back to our callback."""
    start = await client.get(f"/login/oidc?next={next_url}" + ("&link=1" if link else ""))
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    async with httpx.AsyncClient() as browser:  # the person's browser at the provider
        answer = await browser.post(authorize, data={"sub": sub})
    assert answer.status_code in (302, 303), answer.text
    back = urlsplit(answer.headers["location"])
    return await client.get(f"{back.path}?{back.query}")


async def test_verified_phone_signs_the_resident_in_and_links_them(oidc_app, client):
    resident = await make_user(village=await make_village(), phone=PHONE,
                               display_name="王秀英", password_hash=None)
    login = await client.get("/login")
    assert "浙里办登录" in login.text and 'href="/login/oidc?next=/"' in login.text
    done = await _sign_in(client, "zlb-wang")
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert "王秀英" in (await client.get("/")).text
    identity = await UserIdentity.get(subject="zlb-wang")
    assert identity.user_id == resident.id
    assert await AuditEvent.filter(tag="signin:identity:link").count() == 1
    # Next time the link is what counts, even if the number on the account changed.
    await resident.__class__.filter(id=resident.id).update(phone="+8613700000009")
    client.cookies.clear()
    again = await _sign_in(client, "zlb-wang")
    assert again.status_code == 303
    assert "王秀英" in (await client.get("/")).text


@pytest.mark.parametrize(("sub", "says"), [
    ("zlb-unverified", "浙里办没有提供已验证的手机号"),
    ("zlb-nophone", "浙里办没有提供已验证的手机号"),
    ("zlb-stranger", "您浙里办账号的手机号还没有登记居民账号"),
])
async def test_no_clear_resident_is_told_what_to_do(oidc_app, client, sub, says):
    await make_user(village=await make_village(), phone=PHONE)
    answer = await _sign_in(client, sub)
    assert answer.status_code in (400, 409)
    # the provider named as a provider: the button says 浙里办登录, the sentence 浙里办
    assert says in answer.text and "浙里办登录" in answer.text, answer.text
    assert "浙里办登录没有" not in answer.text and "浙里办登录账号" not in answer.text
    assert not await UserIdentity.exists()
    assert (await client.get("/")).status_code == 303  # not logged in


async def test_two_residents_with_that_phone_are_not_guessed_between(oidc_app, client):
    village = await make_village()
    await make_user(village=village, phone=PHONE)
    await make_user(village=village, phone=PHONE)
    answer = await _sign_in(client, "zlb-wang")
    assert answer.status_code == 409 and "有几位居民" in answer.text
    assert not await UserIdentity.exists()


async def test_a_callback_with_a_foreign_state_or_an_error_is_refused(oidc_app, client):
    await make_user(village=await make_village(), phone=PHONE)
    start = await client.get("/login/oidc")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    forged = await client.get("/login/oidc/callback?code=stolen&state=not-ours")
    assert forged.status_code == 400 and "重新开始" in forged.text
    denied = await client.get(f"/login/oidc/callback?error=access_denied&state={state}")
    assert denied.status_code == 400 and "登录没有完成" in denied.text
    assert not await UserIdentity.exists()


async def test_a_resident_links_and_unlinks_in_settings(oidc_app, client):
    resident = await make_user(village=await make_village())  # no phone on record
    csrf = await web_login(client, resident)
    settings_page = await client.get("/me/settings")
    assert "关联浙里办" in settings_page.text and "关联浙里办登录" not in settings_page.text
    linked = await _sign_in(client, "zlb-nophone", next_url="/me/settings", link=True)
    assert linked.status_code == 303 and linked.headers["location"] == "/me/settings"
    identity = await UserIdentity.get(user_id=resident.id)
    assert identity.subject == "zlb-nophone"
    unlinked = await client.post(f"/me/identities/{identity.id}/unlink",
                                 data={"csrf_token": csrf})
    assert unlinked.status_code == 303
    assert not await UserIdentity.exists()


async def test_without_configuration_there_is_no_button_and_no_route(client):
    assert "/login/oidc" not in (await client.get("/login")).text
    assert (await client.get("/login/oidc")).status_code == 404
