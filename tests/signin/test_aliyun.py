"""The `aliyun` SMS backend against a local stand-in of Dysmsapi SendSms that behaves as
Aliyun documents it: it recomputes the RPC signature (its own implementation of the
documented steps), refuses a wrong one, and answers errors as `Code` in a 200 response."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from torreya.settings import ConfigurationError, Settings
from torreya.signin.gateway import AliyunGateway, SmsGatewayError, gateway_for

SECRET = "testsecret"
ENV = {"TORREYA_SMS_BACKEND": "aliyun", "TORREYA_ALIYUN_ACCESS_KEY_ID": "testid",
       "TORREYA_ALIYUN_ACCESS_KEY_SECRET": SECRET, "TORREYA_ALIYUN_SMS_SIGN_NAME": "古来平安",
       "TORREYA_ALIYUN_SMS_TEMPLATE_CODE": "SMS_100001",
       "TORREYA_ALIYUN_SMS_TEMPLATE_NOTICE": "SMS_100002", "TORREYA_SECRET_KEY": "x" * 40}


def _percent(text: str) -> str:
    # Aliyun: RFC 3986, then "+" → "%20", "*" → "%2A", "%7E" → "~"
    from urllib.parse import quote_plus

    return quote_plus(text).replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def _expected(params: dict) -> str:
    canonical = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(params.items()))
    to_sign = "GET&%2F&" + _percent(canonical)
    return base64.b64encode(hmac.new(f"{SECRET}&".encode(), to_sign.encode(),
                                     hashlib.sha1).digest()).decode()


@pytest.fixture
def dysmsapi():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            signature = params.pop("Signature", "")
            if signature != _expected(params):
                body = {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is "
                        "not matched with our calculation."}
                status = 400
            elif params["PhoneNumbers"] == "13900000000":
                body = {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控"}
                status = 200
            else:
                received.append(params)
                body = {"Code": "OK", "Message": "OK", "BizId": "9000", "RequestId": "r1"}
                status = 200
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", received
    server.shutdown()
    server.server_close()


def _gateway(endpoint: str, **over) -> AliyunGateway:
    settings = Settings.from_env({**ENV, "TORREYA_ALIYUN_SMS_ENDPOINT": endpoint, **over})
    gateway = gateway_for(settings)
    assert isinstance(gateway, AliyunGateway)
    return gateway


async def test_a_code_goes_with_the_code_template_signed(dysmsapi):
    endpoint, received = dysmsapi
    await _gateway(endpoint).send(phone="+8613800138000", text="您的验证码是123456",
                                  code="123456")
    [sent] = received
    assert sent["Action"] == "SendSms" and sent["Version"] == "2017-05-25"
    assert sent["PhoneNumbers"] == "13800138000" and sent["SignName"] == "古来平安"
    assert sent["TemplateCode"] == "SMS_100001"
    assert json.loads(sent["TemplateParam"]) == {"code": "123456"}


async def test_a_notice_goes_with_the_notice_template(dysmsapi):
    endpoint, received = dysmsapi
    text = "您的上报（安全隐患）已受理，奖励20香榧币。"
    await _gateway(endpoint).send(phone="+8613800138000", text=text)
    assert received[0]["TemplateCode"] == "SMS_100002"
    assert json.loads(received[0]["TemplateParam"]) == {"text": text}


async def test_an_error_code_in_a_200_answer_is_an_error(dysmsapi):
    endpoint, _received = dysmsapi
    with pytest.raises(SmsGatewayError, match="isv.BUSINESS_LIMIT_CONTROL"):
        await _gateway(endpoint).send(phone="+8613900000000", text="x", code="111111")


async def test_a_wrong_secret_is_refused_by_the_signature_check(dysmsapi):
    endpoint, received = dysmsapi
    gateway = _gateway(endpoint, TORREYA_ALIYUN_ACCESS_KEY_SECRET="not-the-secret")
    with pytest.raises(SmsGatewayError, match="SignatureDoesNotMatch"):
        await gateway.send(phone="+8613800138000", text="x", code="111111")
    assert received == []


def test_missing_credentials_are_named_at_start():
    env = {k: v for k, v in ENV.items() if k != "TORREYA_ALIYUN_SMS_TEMPLATE_CODE"}
    with pytest.raises(ConfigurationError, match="TORREYA_ALIYUN_SMS_TEMPLATE_CODE"):
        Settings.from_env(env)
