"""A local stand-in for WeChat's web authorization (网页授权) endpoints, as its documentation
describes them (developers.weixin.qq.com, 公众号 › 网页授权):

- GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state
  (#wechat_redirect): WeChat's consent page; here a form where the test says who the
  person is (`openid`), then a redirect to redirect_uri?code=CODE&state=STATE. Refusing an
  snsapi_userinfo request redirects with the state only, no code.
- GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code: JSON sent
  as text/plain, {"access_token", "expires_in", "refresh_token", "openid", "scope",
  "unionid"}; every error is an HTTP 200 with {"errcode", "errmsg"}: 40013 invalid appid,
  40125 invalid appsecret, 40029 invalid code, 40163 code been used.
- GET /sns/userinfo?access_token&openid&lang: the profile, or {"errcode": 40001 …}.
A code is good for one use and five minutes.
"""

from __future__ import annotations

import html
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.receiver import LocalServer, QuietHandler

APPID = "wx1234567890abcdef"
SECRET = "0123456789abcdef0123456789abcdef"


@dataclass
class WechatStandIn(LocalServer):
    appid: str = APPID
    secret: str = SECRET
    nicknames: dict = field(default_factory=dict)  # openid → nickname
    fail_next_token: int = 0  # an errcode the next token request answers with
    codes: dict = field(default_factory=dict)  # code → (openid, scope, made, used)
    tokens: dict = field(default_factory=dict)  # access_token → openid
    token_requests: list = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> WechatStandIn:
        standin = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/connect/oauth2/authorize":
                    standin._authorize_page(self, query)
                elif parts.path == "/sns/oauth2/access_token":
                    standin.token_requests.append(query)
                    self._json(standin._token(query))
                elif parts.path == "/sns/userinfo":
                    self._json(standin._userinfo(query))
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                if urlsplit(self.path).path != "/connect/oauth2/authorize/confirm":
                    self.send_error(404)
                    return
                target = form["redirect_uri"]
                if form.get("decision") == "deny":
                    params = {"state": form["state"]}
                else:
                    code = secrets.token_hex(16)
                    standin.codes[code] = [form["openid"], form["scope"], time.time(), False]
                    params = {"code": code, "state": form["state"]}
                self.send_response(302)
                self.send_header("location", f"{target}?{urlencode(params)}")
                self.send_header("content-length", "0")
                self.end_headers()

            def _json(self, data: dict) -> None:
                body = json.dumps(data, ensure_ascii=False).encode()
                self.send_response(200)  # WeChat answers 200 even for errors
                self.send_header("content-type", "text/plain")  # as WeChat does
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.url = self._serve(Handler)
        return self

    # -- the endpoints ---------------------------------------------------------------------

    def _authorize_page(self, handler, query: dict) -> None:
        problem = None
        if query.get("appid") != self.appid:
            problem = "appid 参数错误"  # WeChat shows an error page, no redirect
        elif query.get("response_type") != "code" or query.get("scope") not in (
                "snsapi_base", "snsapi_userinfo") or not query.get("redirect_uri"):
            problem = "参数错误"
        if problem:
            body = f"<html><body><h1>{problem}</h1></body></html>".encode()
        else:
            fields = "".join(
                f'<input type="hidden" name="{k}" value="{html.escape(query.get(k, ""))}">'
                for k in ("redirect_uri", "scope", "state"))
            body = (
                "<html><head><meta name='viewport' content='width=device-width'></head><body>"
                "<h1>微信授权登录</h1><form method='post' action='/connect/oauth2/authorize/"
                f"confirm'>{fields}<label>openid <input name='openid' id='openid'></label>"
                "<button name='decision' value='allow' id='allow'>允许</button>"
                "<button name='decision' value='deny' id='deny'>拒绝</button>"
                "</form></body></html>").encode()
        handler.send_response(200)
        handler.send_header("content-type", "text/html; charset=utf-8")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _token(self, query: dict) -> dict:
        if self.fail_next_token:
            errcode, self.fail_next_token = self.fail_next_token, 0
            return {"errcode": errcode, "errmsg": "system error"}
        if query.get("appid") != self.appid:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if query.get("secret") != self.secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        if query.get("grant_type") != "authorization_code":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        made = self.codes.get(query.get("code", ""))
        if made is None or time.time() - made[2] > 300:
            return {"errcode": 40029, "errmsg": "invalid code"}
        if made[3]:
            return {"errcode": 40163, "errmsg": "code been used"}
        made[3] = True
        token = secrets.token_hex(16)
        self.tokens[token] = made[0]
        return {"access_token": token, "expires_in": 7200, "refresh_token": secrets.token_hex(8),
                "openid": made[0], "scope": made[1], "is_snapshotuser": 0,
                "unionid": f"union-{made[0]}"}

    def _userinfo(self, query: dict) -> dict:
        openid = self.tokens.get(query.get("access_token", ""))
        if openid is None or openid != query.get("openid"):
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
        return {"openid": openid, "nickname": self.nicknames.get(openid, "微信用户"), "sex": 0,
                "province": "", "city": "", "country": "", "headimgurl": "", "privilege": [],
                "unionid": f"union-{openid}"}
