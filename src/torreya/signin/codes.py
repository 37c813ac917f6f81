"""Phone + SMS one-time code (SPEC §5.1): the resident's way in, no password needed.

A code is 6 digits, valid 5 minutes, single use, burnt after 5 wrong tries, stored as an
HMAC. A new one may be asked for after 60 s, at most 10 a day per phone and 30 per
address. Every well-formed number gets the same answer and the same work, a text
included: the answer tells nobody whether a number has an account, and someone new can
prove their number and register (居民认证, signin/registrations.py).
The text goes through the gateway from the delivery worker, outside the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from torreya import i18n
from torreya.db import fetch, is_postgres, now
from torreya.errors import ConflictError, DomainError, TooManyAttemptsError
from torreya.i18n import gettext
from torreya.keys import derive_key
from torreya.models import Role, SmsCode, SmsMessage, SmsStatus, User
from torreya.settings import Settings
from torreya.signin import family
from torreya.signin.phones import normalize_phone

CODE_SECONDS = 300
RESEND_SECONDS = 60
MAX_WRONG = 5
PER_PHONE_PER_DAY = 10
PER_IP_PER_DAY = 30


class InvalidCodeError(DomainError):
    status = 401
    code = "invalid_code"
    message = ("That code is not right, has expired or was already used. Ask for a new "
               "code.")


class SmsUnavailableError(DomainError):
    status = 503
    code = "sms_unavailable"
    message = ("Text messages cannot be sent right now. Please try again later, or log in "
               "at the village committee.")


class NoAccountError(ConflictError):
    code = "no_account"
    message = ("No resident account uses this number yet. Ask your village committee to add "
               "your number.")


@dataclass(frozen=True)
class CodeSent:
    resend_after: int
    expires_in: int


def _digest(settings: Settings, phone: str, code: str) -> str:
    return hmac.new(derive_key(settings, "sms-code"), f"{phone}:{code}".encode(),
                    hashlib.sha256).hexdigest()


async def _gateway_down() -> bool:
    """Texts have failed in the last 10 minutes and none has gone out since."""
    since = now() - timedelta(minutes=10)
    failing = await SmsMessage.filter(created_at__gte=since, attempts__gte=1,
                                      status__in=[SmsStatus.PENDING, SmsStatus.FAILED]
                                      ).exclude(last_error="").exists()
    return failing and not await SmsMessage.filter(sent_at__gte=since).exists()


async def request_code(settings: Settings, *, phone: str, ip: str) -> CodeSent:
    """Make a code for the number and queue its text.

    Raises InvalidRequestError (not a mainland mobile), TooManyAttemptsError (too soon, or
    over a daily cap), SmsUnavailableError (the gateway is failing).
    """
    phone = normalize_phone(phone)
    if await _gateway_down():
        raise SmsUnavailableError()
    moment = now()
    code = f"{secrets.randbelow(10**6):06d}"
    async with in_transaction() as connection:
        if is_postgres(connection):  # concurrent requests for one number queue here
            await fetch(connection, "SELECT pg_advisory_xact_lock(hashtext(?))",
                        [f"sms:{phone}"])
        day = moment - timedelta(days=1)
        recent = await SmsCode.filter(phone=phone, created_at__gte=day).using_db(
            connection).order_by("-created_at").values_list("created_at", flat=True)
        if recent and moment - recent[0] < timedelta(seconds=RESEND_SECONDS):
            raise TooManyAttemptsError("Please wait a minute before asking for a new code.")
        by_address = await SmsCode.filter(ip=ip, created_at__gte=day).using_db(
            connection).count()
        if len(recent) >= PER_PHONE_PER_DAY or (ip and by_address >= PER_IP_PER_DAY):
            raise TooManyAttemptsError("Too many codes today. Please try again tomorrow, or "
                                       "ask your village committee.")
        await SmsCode.create(phone=phone, code_hash=_digest(settings, phone, code), ip=ip[:64],
                             created_at=moment,
                             expires_at=moment + timedelta(seconds=CODE_SECONDS),
                             using_db=connection)
        resident = await User.filter(phone=phone, role=Role.RESIDENT, is_active=True).using_db(
            connection).first()
        previous = i18n.current_language.set("zh-CN")  # texts are Chinese, whoever asked
        try:
            text = gettext("Your Torreya login code is %(code)s, valid for 5 minutes. "
                           "Do not tell anyone.", code=code)
        finally:
            i18n.current_language.reset(previous)
        # user_id 0: nobody has the number yet (a newcomer who will register).
        await SmsMessage.create(user_id=resident.id if resident else 0, phone=phone,
                                text=text, purpose="code", send_after=moment,
                                using_db=connection)
    return CodeSent(resend_after=RESEND_SECONDS, expires_in=CODE_SECONDS)


class ChooseAccountError(ConflictError):
    code = "choose_account"
    message = ("This number may act for several residents. Say which one with user_id "
               "(the code stays valid until it expires).")


async def _matching_code(settings: Settings, phone: str, code: str) -> SmsCode:
    """The live code of `phone` that `code` is; a wrong code costs every live one a try."""
    live = await SmsCode.filter(phone=phone, used_at=None, expires_at__gt=now(),
                                wrong_tries__lt=MAX_WRONG).order_by("-id").limit(5)
    digest = _digest(settings, phone, code.strip()) if code.strip().isdigit() else ""
    match = next((c for c in live if digest and hmac.compare_digest(c.code_hash, digest)),
                 None)
    if match is None:
        if live:  # every live code of the number pays for a wrong try
            await SmsCode.filter(id__in=[c.id for c in live]).update(
                wrong_tries=F("wrong_tries") + 1)
        raise InvalidCodeError()
    return match


async def _use(match: SmsCode) -> None:
    claimed = await SmsCode.filter(id=match.id, used_at=None,
                                   wrong_tries__lt=MAX_WRONG).update(used_at=now())
    if not claimed:  # a concurrent use won
        raise InvalidCodeError()


async def prove_phone(settings: Settings, *, phone: str, code: str) -> str:
    """The code is right for the number: it is used up and the (normalised) number is
    proven. Raises InvalidRequestError (malformed), InvalidCodeError."""
    phone = normalize_phone(phone)
    await _use(await _matching_code(settings, phone, code))
    return phone


async def verify_code(settings: Settings, *, phone: str, code: str,
                      user_id: int | None = None) -> tuple[User, object]:
    """For the API: the resident (and the family helper, if acting for someone else) this
    code lets in, the code used up. With several to choose from, `user_id` says which.

    Raises InvalidRequestError, InvalidCodeError, NoAccountError (the number is theirs, no
    resident has it), ChooseAccountError (several, none chosen: the code stays live).
    """
    phone = normalize_phone(phone)
    match = await _matching_code(settings, phone, code)
    choices = await family.choices_for(phone)
    if not choices:
        await _use(match)
        raise NoAccountError()
    chosen = [c for c in choices if user_id is None or c.user.id == user_id]
    if len(chosen) != 1:
        error = ChooseAccountError()
        error.details = {"accounts": [
            {"user_id": c.user.id, "display_name": c.user.display_name,
             "as_family_helper": c.helper is not None} for c in choices]}
        raise error
    await _use(match)
    return chosen[0].user, chosen[0].helper
