"""The SMS gateway: one small interface, chosen by TORREYA_SMS_BACKEND (SPEC §5.1).

- `log`: the text goes to the server log (development and the demo only).
- `webhook`: POST JSON `{"phone": "+86…", "code": "123456" | null, "text": "…"}` to
  TORREYA_SMS_URL, for any gateway behind an adapter; any non-2xx or a timeout is an error.

Sending happens outside every database transaction (the worker, or a request's own code
after its transaction), with a timeout; a gateway that is down raises `SmsGatewayError`.
"""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from torreya.settings import ConfigurationError, Settings

log = logging.getLogger("torreya.sms")


class SmsGatewayError(Exception):
    """The gateway could not take the message now (down, timed out, refused)."""


class SmsGateway(Protocol):
    async def send(self, *, phone: str, text: str, code: str | None = None) -> None: ...


class LogGateway:
    async def send(self, *, phone: str, text: str, code: str | None = None) -> None:
        log.info("SMS to %s: %s", phone, text)


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


def gateway_for(settings: Settings) -> SmsGateway:
    if settings.SMS_BACKEND == "log":
        return LogGateway()
    if settings.SMS_BACKEND == "webhook":
        if not settings.SMS_URL:
            raise ConfigurationError("TORREYA_SMS_BACKEND=webhook needs TORREYA_SMS_URL")
        return WebhookGateway(settings.SMS_URL, timeout=settings.SMS_TIMEOUT_SECONDS)
    raise ConfigurationError(f"TORREYA_SMS_BACKEND must be log or webhook, not "
                             f"{settings.SMS_BACKEND!r}")
