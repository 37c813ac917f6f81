"""The SMS gateway: one small interface, chosen by TORREYA_SMS_BACKEND (SPEC §5.1).

- `log`: the text goes to the server log (development and the demo only).
- `webhook`: POST JSON `{"phone": "+86…", "code": "123456" | null, "text": "…"}` to
  TORREYA_SMS_URL, for any gateway behind an adapter; any non-2xx or a timeout is an error.
- `aliyun`: Alibaba Cloud SMS (Dysmsapi `SendSms`, API version 2017-05-25), signed as its
  RPC API documents (HMAC-SHA1 over the sorted, percent-encoded query). Aliyun sends only
  approved templates: a code goes out with TORREYA_ALIYUN_SMS_TEMPLATE_CODE (`${code}`),
  anything else with TORREYA_ALIYUN_SMS_TEMPLATE_NOTICE (`${text}`). An answer whose
  `Code` is not `OK` is an error, though Aliyun sends it with HTTP 200.

Sending happens outside every database transaction (the worker, or a request's own code
after its transaction), with a timeout; a gateway that is down raises `SmsGatewayError`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

import httpx

from torreya.settings import ConfigurationError, Settings
from torreya.signin.phones import mask_phone

log = logging.getLogger("torreya.sms")


class SmsGatewayError(Exception):
    """The gateway could not take the message now (down, timed out, refused)."""


class SmsGateway(Protocol):
    async def send(self, *, phone: str, text: str, code: str | None = None) -> None: ...


class LogGateway:
    """Development and the demo: the text is printed on the server's terminal, where a demo
    resident reads their code. Not through the logging system: a log line never holds a
    code or a phone number (SPEC §4.11), and production logs go to collectors."""

    async def send(self, *, phone: str, text: str, code: str | None = None) -> None:
        print(f"[demo SMS, TORREYA_SMS_BACKEND=log] to {mask_phone(phone)}: {text}",
              file=sys.stderr, flush=True)


class WebhookGateway:
    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = httpx.Timeout(timeout, connect=min(5.0, timeout))

    async def send(self, *, phone: str, text: str, code: str | None = None) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http:
                answer = await http.post(self.url, json={"phone": phone, "code": code,
                                                         "text": text})
        except httpx.TimeoutException:
            raise SmsGatewayError("timeout") from None
        except httpx.HTTPError as exc:
            raise SmsGatewayError(f"{type(exc).__name__}: {exc}"[:200]) from None
        if not 200 <= answer.status_code < 300:
            raise SmsGatewayError(f"HTTP {answer.status_code}: {answer.text[:120]}")


def aliyun_signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    """Aliyun RPC signature v1.0: base64 HMAC-SHA1, keyed with `secret + "&"`, of
    `METHOD&%2F&` + the percent-encoded, sorted, percent-encoded query."""
    def encode(text: str) -> str:
        return quote(text, safe="-_.~")

    query = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{encode('/')}&{encode(query)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True, kw_only=True)
class AliyunConfig:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str
    template_notice: str
    endpoint: str = "https://dysmsapi.aliyuncs.com/"


class AliyunGateway:
    def __init__(self, config: AliyunConfig, *, timeout: float) -> None:
        self.config = config
        self.timeout = httpx.Timeout(timeout, connect=min(5.0, timeout))

    def request_params(self, *, phone: str, text: str, code: str | None) -> dict[str, str]:
        config = self.config
        params = {
            "AccessKeyId": config.access_key_id, "Action": "SendSms", "Format": "JSON",
            "PhoneNumbers": phone.removeprefix("+86"), "RegionId": "cn-hangzhou",
            "SignName": config.sign_name, "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
            "TemplateCode": config.template_code if code else config.template_notice,
            "TemplateParam": json.dumps({"code": code} if code else {"text": text},
                                        ensure_ascii=False, separators=(",", ":")),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        params["Signature"] = aliyun_signature(params, config.access_key_secret)
        return params

    async def send(self, *, phone: str, text: str, code: str | None = None) -> None:
        params = self.request_params(phone=phone, text=text, code=code)
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http:
                answer = await http.get(self.config.endpoint, params=params)
        except httpx.TimeoutException:
            raise SmsGatewayError("timeout") from None
        except httpx.HTTPError as exc:
            raise SmsGatewayError(f"{type(exc).__name__}: {exc}"[:200]) from None
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or body.get("Code") != "OK":
            raise SmsGatewayError(f"HTTP {answer.status_code} {body.get('Code', '')}: "
                                  f"{body.get('Message', answer.text[:80])}"[:200])


def gateway_for(settings: Settings) -> SmsGateway:
    if settings.SMS_BACKEND == "log":
        return LogGateway()
    if settings.SMS_BACKEND == "webhook":
        if not settings.SMS_URL:
            raise ConfigurationError("TORREYA_SMS_BACKEND=webhook needs TORREYA_SMS_URL")
        return WebhookGateway(settings.SMS_URL, timeout=settings.SMS_TIMEOUT_SECONDS)
    if settings.SMS_BACKEND == "aliyun":
        extra = settings.extra
        return AliyunGateway(AliyunConfig(
            access_key_id=extra["TORREYA_ALIYUN_ACCESS_KEY_ID"],
            access_key_secret=extra["TORREYA_ALIYUN_ACCESS_KEY_SECRET"],
            sign_name=extra["TORREYA_ALIYUN_SMS_SIGN_NAME"],
            template_code=extra["TORREYA_ALIYUN_SMS_TEMPLATE_CODE"],
            template_notice=extra["TORREYA_ALIYUN_SMS_TEMPLATE_NOTICE"],
            endpoint=extra.get("TORREYA_ALIYUN_SMS_ENDPOINT") or AliyunConfig.endpoint),
            timeout=settings.SMS_TIMEOUT_SECONDS)
    raise ConfigurationError(f"TORREYA_SMS_BACKEND must be log, webhook or aliyun, not "
                             f"{settings.SMS_BACKEND!r}")
