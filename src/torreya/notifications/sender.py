"""Sending queued text messages through the gateway, from the delivery worker.

Each message is leased before it is sent (several workers never send one twice while the
lease runs), sent outside any transaction, and recorded after. A gateway that fails is
tried again with backoff, then the message is marked failed with the gateway's answer.
Nothing is sent in the quiet hours: a message that comes due then waits for 08:00.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta

from torreya.db import now
from torreya.models import SmsMessage, SmsStatus, User
from torreya.notifications.texts import sms_send_time
from torreya.outbox.leases import lease
from torreya.signin.gateway import SmsGateway, SmsGatewayError

log = logging.getLogger("torreya.sms")

RETRY_DELAYS = (60, 300, 1800, 7200)  # then failed: 5 tries over about 2.5 hours


async def send_due_sms(gateway: SmsGateway, batch: int = 20) -> int:
    """Send the text messages that are due. Returns how many were handled."""
    claimed = await lease("sms_messages", "send_after", batch)
    await asyncio.gather(*[_send(gateway, sms_id) for sms_id in claimed])
    return len(claimed)


async def _send(gateway: SmsGateway, sms_id: int) -> None:
    sms = await SmsMessage.get(id=sms_id)
    # user_id 0: a text to someone without an account yet (a code, a registration refused).
    person = await User.get_or_none(id=sms.user_id) if sms.user_id else None
    if sms.user_id and (person is None or not person.is_active
                        or (not person.sms_notifications and sms.purpose != "code")):
        await SmsMessage.filter(id=sms.id).update(status=SmsStatus.CANCELLED)
        return
    moment = now()
    code = sms.purpose == "code"  # a sign-in code goes at once, day or night
    if not code and sms_send_time(moment) != moment:  # came due in the quiet hours
        await SmsMessage.filter(id=sms.id).update(send_after=sms_send_time(moment))
        return
    try:
        await gateway.send(phone=sms.phone, text=sms.text, code=_code_in(sms) if code else None)
    except SmsGatewayError as exc:
        attempts = sms.attempts + 1
        # A code is worth one more try only while it is fresh; a notice is tried for hours.
        failed = attempts > (1 if code else len(RETRY_DELAYS))
        log.warning("SMS %s not sent (try %s): %s", sms.id, attempts, exc)
        await SmsMessage.filter(id=sms.id).update(
            attempts=attempts, last_error=str(exc)[:200],
            status=SmsStatus.FAILED if failed else SmsStatus.PENDING,
            text=BLANKED if failed and code else sms.text,
            send_after=sms.send_after if failed else moment + timedelta(seconds=10)
            if code else sms_send_time(moment + timedelta(seconds=RETRY_DELAYS[attempts - 1])))
        return
    # A sign-in code is not kept once it has gone: only its HMAC is (sms_codes).
    await SmsMessage.filter(id=sms.id).update(status=SmsStatus.SENT, sent_at=now(),
                                              attempts=sms.attempts + 1, last_error="",
                                              text=BLANKED if code else sms.text)


BLANKED = "******"


def _code_in(sms: SmsMessage) -> str | None:
    """The 6 digits of a sign-in text, for gateways that take the code apart (SPEC §5.1)."""
    found = re.search(r"(?<!\d)(\d{6})(?!\d)", sms.text)
    return found.group(1) if found else None
