"""Optional two-factor login (TOTP, RFC 6238, through pyotp) for staff and admins: their
accounts move points and hand goods over. Once on, a login needs the password and the
6-digit code from the person's authenticator app; a code works once (its time step is
kept), and step-up for big actions takes the code as well as the password."""

from __future__ import annotations

import base64
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from tortoise.transactions import in_transaction

from torreya import audit
from torreya.accounts.permissions import rank
from torreya.errors import DomainError, ForbiddenError
from torreya.keys import derive_key
from torreya.models import Role, User
from torreya.security import release_login_attempt, reserve_login_attempt
from torreya.settings import Settings

ISSUER = "Torreya 平安积分"


class TotpRequiredError(DomainError):
    status = 401
    code = "totp_required"
    message = "Enter the 6-digit code from your authenticator app."


class InvalidTotpError(DomainError):
    status = 401
    code = "invalid_code"
    message = "That code is not right. Use the newest code in your authenticator app."


def _fernet(settings: Settings) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive_key(settings, "totp-secret")))


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def may_use(user: User) -> bool:
    return rank(user.role) >= rank(Role.STAFF)


def _secret_of(settings: Settings, user: User) -> str | None:
    if not user.totp_secret:
        return None
    try:
        return _fernet(settings).decrypt(user.totp_secret.encode()).decode()
    except InvalidToken:  # the secret key changed: the person sets TOTP up again
        return None


async def check(settings: Settings, *, user: User, code: str, ip: str) -> None:
    """Accept a current code once (throttled like a password). Raises InvalidTotpError."""
    secret = _secret_of(settings, user)
    reserved = await reserve_login_attempt(settings, username=f"totp:{user.username}", ip=ip)
    step = _matching_step(secret, code) if secret else None
    if step is None:
        await audit.record(user, "accounts:totp:fail", connection=None,
                           subject=f"user:{user.id}", village_id=user.village_id)
        raise InvalidTotpError()
    # A code works once: claim its time step (a replay, or a race, finds it taken).
    claimed = await User.filter(id=user.id, totp_last_step__lt=step).update(
        totp_last_step=step)
    if not claimed:
        raise InvalidTotpError()
    await release_login_attempt(username=f"totp:{user.username}", reserved=reserved)


def _matching_step(secret: str, code: str) -> int | None:
    code = code.strip()
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(datetime.now())
    for step in (now_step, now_step - 1, now_step + 1):  # one step of clock drift either way
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


async def enable(settings: Settings, *, user: User, secret: str, code: str) -> None:
    """Turn TOTP on after the person proved their app has the secret (and, the caller,
    that they are who they say: web.confirm_big_action; a stolen session must not put its
    own authenticator on the account)."""
    if not may_use(user):
        raise ForbiddenError()
    if _matching_step(secret, code) is None:
        raise InvalidTotpError()
    async with in_transaction() as connection:
        await User.filter(id=user.id).using_db(connection).update(
            totp_secret=_fernet(settings).encrypt(secret.encode()).decode(), totp_last_step=0)
        await audit.record(user, "accounts:totp:enable", connection=connection,
                           subject=f"user:{user.id}", village_id=user.village_id)


async def disable(settings: Settings, *, user: User) -> None:
    """Turn TOTP off (the caller has made the person confirm: web.confirm_big_action)."""
    async with in_transaction() as connection:
        await User.filter(id=user.id).using_db(connection).update(totp_secret=None)
        await audit.record(user, "accounts:totp:disable", connection=connection,
                           subject=f"user:{user.id}", village_id=user.village_id)
