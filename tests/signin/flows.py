"""The web sign-in steps as a person's browser takes them, for the sign-in tests."""

from __future__ import annotations

import json

from tests.factories import csrf_from
from torreya.notifications import sender
from torreya.signin.gateway import WebhookGateway


async def texts_to(receiver, phone: str) -> list[dict]:
    """Run the SMS sender once; the texts the phone got so far."""
    await sender.send_due_sms(WebhookGateway(receiver.url, timeout=2.0))
    return [t for t in (json.loads(body) for _h, body in receiver.received)
            if t["phone"] == phone]


async def web_code_login(client, receiver, phone: str, *, next_url: str = "/"):
    """/login → number → the texted code → the answer to the code page (303, or the
    chooser)."""
    return await code_login_from(client, receiver, await client.get("/login"), phone,
                                 next_url=next_url)


async def code_login_from(client, receiver, page, phone: str, *, next_url: str = "/"):
    """The SMS login from a login page already shown (`page`, e.g. the one WeChat's first
    time shows), with whatever its form carries."""
    form = {"phone": phone, "csrf_token": csrf_from(page.text), "next": next_url}
    if 'name="wechat" value="1"' in page.text:
        form["wechat"] = "1"
    sent = await client.post("/login/sms", data=form)
    assert sent.status_code == 200, sent.text
    code = (await texts_to(receiver, phone))[-1]["code"]
    return await client.post("/login/sms/verify", data={
        "phone": phone, "code": code, "csrf_token": csrf_from(sent.text), "next": next_url})
