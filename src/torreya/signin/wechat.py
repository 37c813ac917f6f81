"""WeChat web authorization (网页授权, SPEC §4.7) through authlib.

WeChat is OAuth 2.0 in outline but not in detail, and authlib's hooks bridge each
difference rather than a hand-written client:
- the authorize URL names the app `appid` (not `client_id`), wants its parameters in its
  documented order and ends with `#wechat_redirect`: authlib makes the URL and keeps the
  state in the signed session, `authorize_url` below rewrites it;
- the code is exchanged by GET with `appid` and `secret` in the query: a client auth method;
- errors come back as `{"errcode": …, "errmsg": …}` in a 200 answer (as `text/plain`), and a
  good answer has no `token_type`: an `access_token_response` compliance hook turns the
  first into an OAuth error and completes the second;
- the user info wants `access_token` and `openid` in the query, not a bearer header: a
  `protected_request` hook.
There is no ID token; the person is the `openid` (per app). The first time, WeChat gives
no phone number, so the person proves theirs once with an SMS code and the `openid` is
linked to that resident; from then on one tap signs them in.
"""

from __future__ import annotations

import json
import logging
import time
from functools import cache
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.integrations.starlette_client import OAuth, OAuthError
from tortoise.exceptions import IntegrityError

from torreya import audit
from torreya.errors import DomainError, NotFoundError
from torreya.models import User, UserIdentity
from torreya.settings import Settings

log = logging.getLogger("torreya.signin")
PENDING_SECONDS = 5 * 60  # how long an unlinked openid waits for its SMS code


class WechatError(DomainError):
    status = 400
    code = "wechat_failed"
    message = ("The sign-in with WeChat did not complete. Please try again, or log in with "
               "your phone.")


class WechatStateError(WechatError):
    code = "wechat_state"
    message = ("This sign-in was started in another browser or has expired. Please start "
               "again.")


def enabled(settings: Settings) -> bool:
    return bool(settings.WECHAT_APPID and settings.WECHAT_SECRET)


def issuer(settings: Settings) -> str:
    """The identity's issuer: an openid means something only for its app."""
    return f"wechat:{settings.WECHAT_APPID}"


def in_wechat(user_agent: str) -> bool:
    return "MicroMessenger" in user_agent


def _appid_and_secret(auth, method, uri, headers, body):
    """Client auth for the token endpoint: `appid` and `secret` in the query."""
    return add_params_to_uri(uri, [("appid", auth.client_id),
                                   ("secret", auth.client_secret)]), headers, body


def _token_response(response: httpx.Response) -> httpx.Response:
    """WeChat's answer made standard: an `errcode` is an error, a token is a bearer."""
    try:
        data = json.loads(response.content or b"{}")
    except ValueError:
        data = {"errcode": -1, "errmsg": "not JSON"}
    if not isinstance(data, dict):
        data = {"errcode": -1, "errmsg": "not an object"}
    if data.get("errcode"):
        data = {"error": f"wechat_{data['errcode']}",
                "error_description": str(data.get("errmsg", ""))[:200]}
    elif "access_token" in data:
        data.setdefault("token_type", "Bearer")
    return httpx.Response(200, json=data, request=response.request)


def _token_in_query(url, headers, body):
    """The user info call: WeChat reads `access_token` from the query, not a header."""
    token = headers.pop("Authorization", "").removeprefix("Bearer ").strip()
    return add_params_to_uri(url, [("access_token", token)]), headers, body


def _compliance_fix(session) -> None:
    session.register_compliance_hook("access_token_response", _token_response)
    session.register_compliance_hook("protected_request", _token_in_query)


@cache
def _client(appid: str, secret: str, authorize_base: str, api_base: str, scope: str):
    oauth = OAuth()
    oauth.register(
        name="wechat", client_id=appid, client_secret=secret,
        authorize_url=f"{authorize_base}/connect/oauth2/authorize",
        access_token_url=f"{api_base}/sns/oauth2/access_token",
        access_token_params={"method": "GET"},
        api_base_url=f"{api_base}/",
        client_auth_methods=[("wechat", _appid_and_secret)], compliance_fix=_compliance_fix,
        client_kwargs={"scope": scope, "token_endpoint_auth_method": "wechat", "timeout": 10})
    return oauth.create_client("wechat")


def client_for(settings: Settings):
    if not enabled(settings):
        raise NotFoundError()
    return _client(settings.WECHAT_APPID, settings.WECHAT_SECRET,
                   settings.WECHAT_AUTHORIZE_BASE, settings.WECHAT_API_BASE,
                   settings.WECHAT_SCOPE)


async def authorize_url(settings: Settings, request, redirect_uri: str) -> str:
    """WeChat's authorize address, its state kept by authlib in the signed session."""
    client = client_for(settings)
    made = await client.create_authorization_url(redirect_uri)
    await client.save_authorize_data(request, redirect_uri=redirect_uri, **made)
    endpoint = urlsplit(made["url"])
    query = urlencode([("appid", settings.WECHAT_APPID), ("redirect_uri", redirect_uri),
                       ("response_type", "code"), ("scope", settings.WECHAT_SCOPE),
                       ("state", made["state"])])
    return f"{endpoint.scheme}://{endpoint.netloc}{endpoint.path}?{query}#wechat_redirect"


async def openid_from_callback(settings: Settings, request) -> dict:
    """{"openid", "unionid"?, "nickname"?} of the person WeChat sent back, or WechatError."""
    client = client_for(settings)
    if not request.query_params.get("code"):  # snsapi_userinfo refused: no code at all
        raise WechatError()
    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:
        log.info("WeChat callback refused: %s %s", exc.error, exc.description)
        if exc.error in ("mismatching_state", "missing_state"):
            raise WechatStateError() from None
        raise WechatError() from None
    except (httpx.HTTPError, ValueError, KeyError) as exc:  # WeChat unreachable
        log.warning("WeChat callback failed: %r", exc)
        raise WechatError() from None
    openid = str(token.get("openid") or "")[:128]
    if not openid:
        raise WechatError()
    person = {"openid": openid, "unionid": str(token.get("unionid") or "")[:128]}
    if "snsapi_userinfo" in str(token.get("scope", settings.WECHAT_SCOPE)):
        try:
            info = (await client.get("sns/userinfo", token=token,
                                     params={"openid": openid, "lang": "zh_CN"})).json()
            if isinstance(info, dict) and not info.get("errcode"):
                person["nickname"] = str(info.get("nickname") or "")[:64]
        except (httpx.HTTPError, OAuthError, ValueError) as exc:
            log.info("WeChat userinfo failed: %r", exc)
    return person


async def linked_resident(settings: Settings, openid: str) -> User | None:
    identity = await UserIdentity.get_or_none(issuer=issuer(settings), subject=openid)
    if identity is None:
        return None
    return await User.get_or_none(id=identity.user_id, is_active=True)


# A WeChat account nobody has yet is linked to the person who proves their phone in the
# same flow: the login page WeChat's callback shows carries a mark in its SMS form; the
# code asked for there binds the waiting account to that number; the login by that
# number's code links it, within PENDING_SECONDS. Any other login in that browser (a fresh
# login page, a code asked for without the mark) drops it: on a shared phone or an office
# PC, whoever logs in next must not get someone else's WeChat linked to their account.


def remember_pending(request, openid: str) -> None:
    request.session["wechat_pending"] = [openid, int(time.time()), ""]


def _pending(request) -> list | None:
    value = request.session.get("wechat_pending")
    if (isinstance(value, list) and len(value) == 3 and isinstance(value[1], int)
            and time.time() - value[1] < PENDING_SECONDS):
        return value
    return None


def has_pending(request) -> bool:
    value = _pending(request)
    return value is not None and not value[2]


def bind_pending(request, phone: str) -> None:
    """A code was asked for `phone` from the WeChat first-time page: bind the account."""
    value = _pending(request)
    if value is not None and value[2] in ("", phone):  # a new code for the same number too
        request.session["wechat_pending"] = [value[0], value[1], phone]
    else:
        drop_pending(request)


def drop_pending(request) -> None:
    request.session.pop("wechat_pending", None)


def take_pending(request, phone: str) -> str | None:
    """The waiting openid, if it was bound to `phone` (just proven) in this flow."""
    value = _pending(request)
    drop_pending(request)
    return str(value[0]) if value is not None and value[2] == phone else None


async def link(settings: Settings, *, user: User, openid: str) -> bool:
    """Link this WeChat account to `user`; False if it is already someone's."""
    try:
        identity, made = await UserIdentity.get_or_create(
            issuer=issuer(settings), subject=openid,
            defaults={"user_id": user.id, "label": "微信"})
    except IntegrityError:  # a concurrent first sign-in linked it
        return False
    if made:
        await audit.record(user, "signin:identity:link", connection=None,
                           subject=f"user:{user.id}", village_id=user.village_id,
                           data={"provider": "wechat"})
    return identity.user_id == user.id
